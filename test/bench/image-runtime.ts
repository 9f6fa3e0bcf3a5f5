// The controller as the container image runs it, so that the benchmark and the Dockerfile's test
// measure and run what ships: the one-file bundle of `npm run bundle` beside package.json, and the
// Node.js flags of the Dockerfile's NODE_OPTIONS, with a heap share (`--max-old-space-size-percentage`,
// which Node resolves against the container's memory limit) resolved against the base Deployment's
// memory limit, since the benchmark runs in no container.

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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

/** The bundle's path in the image, relative to /app (package.json beside dist/, as cli.ts reads it). */
export const bundlePath = 'dist/kube-ecrlogin.mjs';

/** Node's compile cache of the bundle in the image, relative to /app (the Dockerfile's NODE_COMPILE_CACHE). */
export const compileCachePath = 'compile-cache';

/** The environment the Dockerfile gives Node for a bundle built by buildImageApp: its compile cache. */
export function imageEnv(bundle: string): Record<string, string> {
  return { NODE_COMPILE_CACHE: join(dirname(dirname(bundle)), compileCachePath) };
}

/** The esbuild arguments of package.json's `bundle` script (its double-quoted words unquoted). */
export function bundleScriptArgs(packageJson: string): string[] {
  const script = (JSON.parse(packageJson) as { scripts?: Record<string, string> }).scripts?.['bundle'];
  if (script === undefined) throw new Error('package.json has no bundle script');
  const words = (script.match(/"[^"]*"|\S+/g) ?? []).map((word) => word.replace(/^"(.*)"$/, '$1'));
  if (words[0] !== 'esbuild') throw new Error(`the bundle script runs ${String(words[0])}, not esbuild`);
  return words.slice(1);
}

/**
 * Builds the image's /app into `app`: `npm run bundle` with its output there instead of dist/,
 * package.json, and the compile cache that one run of `--version` with the image's Node flags leaves
 * (as the Dockerfile's runtime stage makes it). Returns the bundle's path.
 */
export function buildImageApp(app: string, root = repoRoot, extraArgs: readonly string[] = []): string {
  const packageJson = readFileSync(join(root, 'package.json'), 'utf8');
  const outfile = join(app, bundlePath);
  const args = bundleScriptArgs(packageJson).map((arg) => (arg.startsWith('--outfile=') ? `--outfile=${outfile}` : arg));
  mkdirSync(join(app, 'dist'), { recursive: true });
  execFileSync(join(root, 'node_modules', '.bin', 'esbuild'), [...args, ...extraArgs, '--log-level=warning'], { cwd: root, stdio: 'inherit' });
  copyFileSync(join(root, 'package.json'), join(app, 'package.json'));
  execFileSync(process.execPath, [...imageRuntime(root).nodeArgs, outfile, '--version'], {
    env: { ...process.env, NODE_OPTIONS: '', ...imageEnv(outfile) },
    stdio: 'ignore',
  });
  return outfile;
}
