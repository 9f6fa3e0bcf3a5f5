// ECR registry hosts. Private registries: the pattern amazon-ecr-credential-helper (ecr-login/api/client.go)
// and the kubelet's ecr-credential-provider accept, anchored at both ends so that a host such as
// 123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example is rejected, and then checked against the
// AWS SDK's partition table: the region must exist and belong to the partition of the host's domain.
// ECR Public: public.ecr.aws and its dual-stack twin ecr-public.aws.com. Hosts are case-insensitive
// (DNS is) and are written lower-case.

import { ecrPublicRegion, type EcrEndpoint } from './aws/api.ts';
import { regionPartition } from './aws/partitions.ts';
import type { Result } from './result.ts';
import { quote } from './validation.ts';

export interface RegistryHost {
  /** The host, lower-case: the key of the Secret's `auths` entry. */
  readonly host: string;
  readonly kind: 'private' | 'public';
  /** The registry's 12-digit account; empty for ECR Public, which has no account of its own. */
  readonly account: string;
  /**
   * The registry's region; for ECR Public, which serves every region from one API, the name
   * `ecr-public`. Policy rules match it, and a Secret holds one token per value.
   */
  readonly region: string;
  /** A FIPS host (dkr.ecr-fips, dkr-ecr-fips): its token comes from the FIPS endpoint. */
  readonly fips: boolean;
  /** A dual-stack host (on.aws, on.amazonwebservices.com.cn, ecr-public.aws.com): its token comes from the dual-stack endpoint. */
  readonly dualStack: boolean;
  /** The domain after the region (amazonaws.com, amazonaws.com.cn, on.aws, ...); the host itself for ECR Public. */
  readonly domain: string;
  /** The AWS partition: aws, aws-cn, aws-us-gov, aws-eusc, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f. */
  readonly partition: string;
}

/** The region of ECR Public hosts: what policy rules name it by. */
export const ecrPublicName = 'ecr-public';

const ecrHost =
  /^(\d{12})\.dkr[.-]ecr(-fips)?\.([a-z0-9][a-z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;

/** ECR Public's registry hosts, and whether each is the dual-stack one. */
const publicHosts: ReadonlyMap<string, boolean> = new Map([
  ['public.ecr.aws', false],
  ['ecr-public.aws.com', true],
]);

/**
 * A registry host as kube-ecrlogin compares it: trimmed, in lower case, without an https:// scheme or
 * a trailing slash. ASCII only, as DNS: a full Unicode lower-casing would turn some non-ASCII letters
 * (the Kelvin sign) into ASCII ones.
 */
export function normalizeHost(input: string): string {
  return input
    .trim()
    .replace(/[A-Z]/g, (letter) => letter.toLowerCase())
    .replace(/^https:\/\//, '')
    .replace(/\/$/, '');
}

/**
 * Parses one registry host. Accepts a bare host, or one written with an https:// scheme and no path
 * (as `docker login` and ECR's proxyEndpoint print it), in any case; anything else is an error that
 * says why.
 */
export function parseRegistryHost(input: string): Result<RegistryHost> {
  if (input.trim() === '') return { ok: false, error: 'empty registry host' };
  const host = normalizeHost(input);
  const shown = quote(input);
  if (host.length > 253) return { ok: false, error: `registry host ${shown} is longer than 253 characters` };
  const dualStackPublic = publicHosts.get(host);
  if (dualStackPublic !== undefined) {
    return {
      ok: true,
      value: { host, kind: 'public', account: '', region: ecrPublicName, fips: false, dualStack: dualStackPublic, domain: host, partition: 'aws' },
    };
  }
  const match = ecrHost.exec(host);
  if (match === null) {
    return {
      ok: false,
      error: `${shown} is not a private ECR registry host (expected <12-digit account>.dkr.ecr.<region>.amazonaws.com or another ECR partition's domain) nor ECR Public (public.ecr.aws)`,
    };
  }
  const [, account = '', fips, region = '', domain = ''] = match;
  const dualStack = domain.startsWith('on.');
  const partition = regionPartition(region);
  if (partition === undefined) {
    return {
      ok: false,
      error: `${shown}: ${quote(region)} is not an AWS region: no partition in the AWS SDK's partition data lists it (a region newer than this build of kube-ecrlogin needs an upgrade)`,
    };
  }
  // Registry hosts live under the partition's DNS suffix; dual-stack ones under on.<suffix> where its
  // dual-stack API lives under api.<suffix> (on.aws and api.aws, on.amazonwebservices.com.cn and api.amazonwebservices.com.cn).
  const expected = dualStack ? `on.${partition.dualStackDnsSuffix.replace(/^api\./, '')}` : partition.dnsSuffix;
  if (domain !== expected) {
    return {
      ok: false,
      error: `${shown}: region ${region} belongs to partition ${partition.name}, whose ${dualStack ? 'dual-stack ' : ''}registries are under ${expected}, not ${domain}`,
    };
  }
  return {
    ok: true,
    value: { host, kind: 'private', account, region, fips: fips !== undefined, dualStack, domain, partition: partition.name },
  };
}

/** Where a registry's token comes from. */
export function tokenEndpoint(registry: RegistryHost): EcrEndpoint {
  return registry.kind === 'public'
    ? { service: 'ecr-public', region: ecrPublicRegion, fips: false, dualStack: registry.dualStack }
    : { service: 'ecr', region: registry.region, fips: registry.fips, dualStack: registry.dualStack };
}

/**
 * The tokens one Secret needs, by registry region (ECR Public's is `ecr-public`): a token serves every
 * registry of its region. When a Secret lists a region's FIPS or dual-stack host beside its plain one,
 * the one token comes from the FIPS (or dual-stack) endpoint, which serves both.
 */
export function tokenEndpoints(registries: readonly RegistryHost[]): Map<string, EcrEndpoint> {
  const endpoints = new Map<string, EcrEndpoint>();
  for (const registry of registries) {
    const endpoint = tokenEndpoint(registry);
    const known = endpoints.get(registry.region);
    endpoints.set(
      registry.region,
      known === undefined ? endpoint : { ...known, fips: known.fips || endpoint.fips, dualStack: known.dualStack || endpoint.dualStack },
    );
  }
  return endpoints;
}
