// The Node.js flags the container image runs the controller with, so that the benchmark measures
// the controller as it runs in a Pod: NODE_OPTIONS from the Dockerfile, with a heap share
// (`--max-old-space-size-percentage`, which Node resolves against the container's memory limit)
// resolved against the base Deployment's memory limit, since the benchmark runs in no container.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../cluster/controlplane.ts';

export interface ImageRuntime {
  /** Flags for `node`, in the order NODE_OPTIONS gives them. */
  readonly nodeArgs: readonly string[];
  /** The base Deployment's memory limit, in MiB. */
  readonly memoryLimitMiB: number;
}

/** NODE_OPTIONS of the Dockerfile's ENV instruction. */
export function dockerfileNodeOptions(dockerfile: string): string[] {
  const match = /\bNODE_OPTIONS=(?:"([^"]*)"|(\S+))/.exec(dockerfile);
  if (match === null) throw new Error('the Dockerfile sets no NODE_OPTIONS');
  return (match[1] ?? match[2] ?? '').split(/\s+/).filter((arg) => arg !== '');
}

/** A Kubernetes memory quantity (binary or decimal suffix) in MiB. */
export function quantityMiB(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(quantity);
  if (match === null) throw new Error(`unsupported memory quantity ${JSON.stringify(quantity)}`);
  const factor: Record<string, number> = { Ki: 1 / 1024, Mi: 1, Gi: 1024, K: 1e3 / 2 ** 20, M: 1e6 / 2 ** 20, G: 1e9 / 2 ** 20 };
  return Number(match[1]) * (factor[match[2] ?? ''] ?? 1 / 2 ** 20);
}

/** The controller container's memory limit in a Deployment manifest, in MiB. */
export function deploymentMemoryLimitMiB(manifest: string): number {
  for (const doc of parseAllDocuments(manifest)) {
    const object = doc.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: { resources?: { limits?: { memory?: string } } }[] } } } };
    const limit = object.kind === 'Deployment' ? object.spec?.template?.spec?.containers?.[0]?.resources?.limits?.memory : undefined;
    if (limit !== undefined) return quantityMiB(limit);
  }
  throw new Error('no Deployment with a memory limit');
}

/** NODE_OPTIONS with `--max-old-space-size-percentage=P` turned into `--max-old-space-size` of P% of the limit. */
export function resolveHeapShare(nodeArgs: readonly string[], memoryLimitMiB: number): string[] {
  return nodeArgs.map((arg) => {
    const match = /^--max-old-space-size-percentage=(\d+(?:\.\d+)?)%?$/.exec(arg);
    return match === null ? arg : `--max-old-space-size=${Math.floor((memoryLimitMiB * Number(match[1])) / 100)}`;
  });
}

export function imageRuntime(root = repoRoot): ImageRuntime {
  const memoryLimitMiB = deploymentMemoryLimitMiB(readFileSync(join(root, 'kustomize', 'base', 'deployment.yaml'), 'utf8'));
  const nodeArgs = resolveHeapShare(dockerfileNodeOptions(readFileSync(join(root, 'Dockerfile'), 'utf8')), memoryLimitMiB);
  return { nodeArgs, memoryLimitMiB };
}
