// Flux's source-controller and kustomize-controller, built from their Go modules by flux/build.sh, run
// as processes on this machine against a control plane: each logs in as a user of its own (so that the
// audit log tells their writes apart), watches every namespace, serves health and metrics on loopback,
// and source-controller serves its artifacts on a loopback port that kustomize-controller downloads from.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts, type ControlPlane, type StaticUser } from '../cluster/controlplane.ts';
import { crdDir } from '../kustomize/support.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** The Flux controllers' users in the control plane's token file: cluster-admin, as Flux installs them. */
export const fluxUsers: readonly StaticUser[] = [
  { name: 'flux-source-controller', groups: ['system:masters'] },
  { name: 'flux-kustomize-controller', groups: ['system:masters'] },
];

/** The versions flux/build.sh builds, read from it (one place to change them). */
export function fluxVersions(): { sourceController: string; kustomizeController: string } {
  const script = readFileSync(join(here, 'flux', 'build.sh'), 'utf8');
  const version = (name: string): string => {
    const match = new RegExp(`^${name}=(v[0-9.]+)$`, 'm').exec(script);
    if (match?.[1] === undefined) throw new Error(`no ${name} in flux/build.sh`);
    return match[1];
  };
  return { sourceController: version('source_version'), kustomizeController: version('kustomize_version') };
}

/** Builds (or finds in the cache) both controllers and returns the directory that holds them. */
export function ensureFluxBinaries(): string {
  const out = execFileSync(join(here, 'flux', 'build.sh'), [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').at(-1) ?? '';
}

/**
 * The CRD files the controllers need: the three ../shared/crds holds (GitRepository, Kustomization,
 * OCIRepository: the same text as v1.9.6's), and the rest (Bucket, HelmChart, HelmRepository,
 * ExternalArtifact, which both controllers watch) from the built version's module.
 */
export function fluxCrdFiles(bin: string): string[] {
  const shared = {
    gitrepositories: 'flux-gitrepositories.yaml',
    kustomizations: 'flux-kustomizations.yaml',
    ocirepositories: 'flux-ocirepositories.yaml',
  } as Record<string, string>;
  const files: string[] = Object.values(shared).map((file) => join(crdDir, file));
  for (const file of readdirSync(join(bin, 'crds')).sort()) {
    const plural = /_([a-z]+)\.yaml$/.exec(file)?.[1] ?? '';
    if (shared[plural] === undefined) files.push(join(bin, 'crds', file));
  }
  return files;
}

export interface Flux {
  /** source-controller's artifact server, http://127.0.0.1:PORT. */
  readonly storage: string;
  /** Each controller's log file. */
  readonly logs: Readonly<Record<'source-controller' | 'kustomize-controller', string>>;
  stop(): Promise<void>;
}

export interface StartFlux {
  readonly plane: ControlPlane;
  /** Directory for kubeconfigs, artifacts and logs. */
  readonly dir: string;
  /** The namespace Flux runs in (RUNTIME_NAMESPACE). */
  readonly namespace: string;
  /** Where ensureFluxBinaries() put them. */
  readonly bin: string;
}

/** Starts source-controller and kustomize-controller and waits until both report ready. */
export async function startFlux(options: StartFlux): Promise<Flux> {
  const { plane, dir, bin } = options;
  for (const sub of ['logs', 'artifacts']) mkdirSync(join(dir, sub), { recursive: true });
  const [storagePort = 0, sourceHealth = 0, sourceMetrics = 0, kustomizeHealth = 0, kustomizeMetrics = 0] = await freePorts(5);
  const storage = `127.0.0.1:${storagePort}`;
  const children: ChildProcess[] = [];
  const logs = {
    'source-controller': join(dir, 'logs', 'source-controller.log'),
    'kustomize-controller': join(dir, 'logs', 'kustomize-controller.log'),
  };

  const launch = (name: 'source-controller' | 'kustomize-controller', healthPort: number, args: readonly string[]): void => {
    const kubeconfig = plane.writeKubeconfig(plane.userConfig(`flux-${name}`), join(dir, `${name}.kubeconfig`));
    const out = openSync(logs[name], 'a');
    const child = spawn(
      join(bin, name),
      [
        '--watch-all-namespaces=true',
        '--enable-leader-election=false',
        `--health-addr=127.0.0.1:${healthPort}`,
        '--log-level=debug',
        '--log-encoding=json',
        ...args,
      ],
      {
        // As in its Pod: the runtime namespace, and nothing of this process's environment.
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, KUBECONFIG: kubeconfig, RUNTIME_NAMESPACE: options.namespace },
        stdio: ['ignore', out, out],
      },
    );
    closeSync(out);
    children.push(child);
  };
  // Should this process end without after() (a crash, a kill), take them along.
  const killAll = (): void => {
    for (const child of children) child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stop = async (): Promise<void> => {
    process.removeListener('exit', killAll);
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  };

  try {
    launch('source-controller', sourceHealth, [
      `--metrics-addr=127.0.0.1:${sourceMetrics}`,
      `--storage-path=${join(dir, 'artifacts')}`,
      `--storage-addr=${storage}`,
      `--storage-adv-addr=${storage}`,
    ]);
    launch('kustomize-controller', kustomizeHealth, [`--metrics-addr=127.0.0.1:${kustomizeMetrics}`, '--no-remote-bases=true']);
    for (const [name, port] of [
      ['source-controller', sourceHealth],
      ['kustomize-controller', kustomizeHealth],
    ] as const) {
      await waitReady(name, `http://127.0.0.1:${port}/readyz`, children, logs[name]);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { storage: `http://${storage}`, logs, stop };
}

async function waitReady(name: string, url: string, children: readonly ChildProcess[], log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const exited = children.find((child) => child.exitCode !== null || child.signalCode !== null);
    if (exited !== undefined)
      throw new Error(`a Flux controller exited (${String(exited.exitCode ?? exited.signalCode)}); log ${log}:\n${readFileSync(log, 'utf8').slice(-2000)}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${name} did not become ready at ${url}; log ${log}:\n${readFileSync(log, 'utf8').slice(-2000)}`);
}
