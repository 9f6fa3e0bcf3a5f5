// What the release tests share: the version from package.json (its one home), running
// test/release/render.sh into a directory of the test's own, and moving rendered objects into a test
// namespace the way a user wraps them.

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { repoRoot } from '../cluster/controlplane.ts';
import { kustomize, runOk, type Manifest, type Scratch } from '../kustomize/support.ts';

/** package.json's version: the one place the version lives. */
export const packageVersion = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

export interface Rendered {
  readonly dir: string;
  readonly notes: string;
  /** File name -> its text. */
  readonly files: ReadonlyMap<string, string>;
  remove(): void;
}

/** Runs test/release/render.sh VERSION into a temporary directory, with the environment given. */
export async function renderRelease(version: string, env: Readonly<Record<string, string>> = {}): Promise<Rendered> {
  const dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-release-'));
  const out = join(dir, 'release');
  const notes = join(dir, 'notes.md');
  await runOk(join(repoRoot, 'test', 'release', 'render.sh'), [version], { env: { ...process.env, ...env, OUT: out, NOTES: notes } });
  const files = new Map(
    readdirSync(out)
      .sort()
      .map((name) => [name, readFileSync(join(out, name), 'utf8')] as const),
  );
  return { dir: out, notes: readFileSync(notes, 'utf8'), files, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A rendered file moved into `namespace` (its Namespace object, every namespaced object and every
 * ServiceAccount subject of a binding), by kustomize's NamespaceTransformer over a copy of it.
 */
export async function renderedInNamespace(scratch: Scratch, name: string, text: string, namespace: string): Promise<Manifest[]> {
  const dir = scratch.kustomization(name, {
    resources: ['release.yaml'],
    transformers: [
      stringify({
        apiVersion: 'builtin',
        kind: 'NamespaceTransformer',
        metadata: { name: 'namespace', namespace },
        setRoleBindingSubjects: 'allServiceAccounts',
        unsetOnly: false,
      }),
    ],
  });
  writeFileSync(join(dir, 'release.yaml'), text);
  return kustomize(dir);
}

/** Every container image of a workload's Pod template (Deployment, CronJob), init containers too. */
export function imagesOf(object: Manifest): string[] {
  const spec = object['spec'] as Record<string, unknown> | undefined;
  const template =
    object.kind === 'Deployment'
      ? (spec?.['template'] as { spec?: PodSpecImages } | undefined)
      : object.kind === 'CronJob'
        ? (spec?.['jobTemplate'] as { spec?: { template?: { spec?: PodSpecImages } } } | undefined)?.spec?.template
        : undefined;
  const pod = template?.spec;
  return [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])].map((c) => c.image);
}

interface PodSpecImages {
  containers?: { image: string }[];
  initContainers?: { image: string }[];
}

/** The labels of a workload's Pod template, if it has one. */
export function podTemplateLabels(object: Manifest): Record<string, string> | undefined {
  const spec = object['spec'] as Record<string, unknown> | undefined;
  if (object.kind === 'Deployment') return (spec?.['template'] as { metadata?: { labels?: Record<string, string> } } | undefined)?.metadata?.labels ?? {};
  if (object.kind === 'CronJob') {
    const job = spec?.['jobTemplate'] as { spec?: { template?: { metadata?: { labels?: Record<string, string> } } } } | undefined;
    return job?.spec?.template?.metadata?.labels ?? {};
  }
  return undefined;
}
