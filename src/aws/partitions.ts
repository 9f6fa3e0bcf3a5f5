// The AWS SDK's own partition table (the one its endpoint rules resolve with), asked one region at a
// time: which partition a region belongs to and that partition's DNS suffixes. Nothing here copies
// the table, so a region AWS adds arrives with an SDK upgrade, and the regions accepted are exactly
// those the SDK can build endpoints for.

import { partition } from '@aws-sdk/core/client';

export interface Partition {
  /** aws, aws-cn, aws-us-gov, aws-eusc, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f. */
  readonly name: string;
  /** The suffix of its regional endpoints and registry hosts, e.g. amazonaws.com.cn. */
  readonly dnsSuffix: string;
  /** The suffix of its dual-stack API endpoints, e.g. api.aws. */
  readonly dualStackDnsSuffix: string;
}

const cache = new Map<string, Partition | undefined>();
const cacheLimit = 256;

/**
 * The partition of a region the SDK's table lists, or undefined for anything else: a region it does
 * not list (us-east-7, us-east1, nowhere-9, us_east_1), and a partition's pseudo-region
 * (aws-global, aws-cn-global). The SDK's `partition()` never fails: for an unlisted name it answers
 * with the partition whose pattern matches, or `aws`. A listed region is told apart by the region
 * data the table merges into the answer (every region there has a description).
 */
export function regionPartition(region: string): Partition | undefined {
  if (cache.has(region)) return cache.get(region);
  const info = partition(region) as ReturnType<typeof partition> & { readonly description?: unknown };
  const listed = typeof info.description === 'string' && region !== `${info.name}-global`;
  const found = listed ? { name: info.name, dnsSuffix: info.dnsSuffix, dualStackDnsSuffix: info.dualStackDnsSuffix } : undefined;
  // Bounded: annotation values are tenant input.
  if (cache.size >= cacheLimit) cache.clear();
  cache.set(region, found);
  return found;
}
