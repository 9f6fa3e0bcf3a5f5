// Argo CD's application controller and repo server, built from the Argo CD module by argocd/build.sh,
// run as processes on this machine against a control plane, with Redis from Debian (redis-server) on a
// loopback port. The controller logs in as a user of its own (so that the audit log tells its writes
// apart) and treats https://kubernetes.default.svc as the control plane (ARGOCD_FAKE_IN_CLUSTER with
// its kubeconfig, since it runs outside a Pod). The repo server renders kustomize with kubectl's
// built-in kustomize behind a two-command shim (`kustomize build`, `kustomize version`): no kustomize
// binary is at hand, and Argo CD only runs those two here (the Applications use no `kustomize edit`
// options: their patches are written into the kustomization by Argo CD itself).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { freePorts, type ControlPlane, type StaticUser } from '../cluster/controlplane.ts';
import { crdDir } from '../kustomize/support.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** The application controller's user in the control plane's token file: cluster-admin, as Argo CD installs it. */
export const argocdUsers: readonly StaticUser[] = [{ name: 'argocd-application-controller', groups: ['system:masters'] }];

/** The version argocd/build.sh builds, read from it. */
export function argocdVersion(): string {
  const match = /^version=(v[0-9.]+)$/m.exec(readFileSync(join(here, 'argocd', 'build.sh'), 'utf8'));
  if (match?.[1] === undefined) throw new Error('no version in argocd/build.sh');
  return match[1];
}

/** Builds (or finds in the cache) Argo CD and returns the directory that holds it. */
export function ensureArgocdBinaries(): string {
  const out = execFileSync(join(here, 'argocd', 'build.sh'), [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').at(-1) ?? '';
}

/** Application and AppProject CRDs from ../shared/crds (the same schemas as the built version's). */
export const argocdCrdFiles = (): string[] => ['argocd-applications.yaml', 'argocd-appprojects.yaml'].map((file) => join(crdDir, file));

/** Where redis-server is, or undefined: Debian's package `redis-server` (test/gitops/argocd/install-redis.sh). */
export function redisServer(): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':').concat(['/usr/bin', '/usr/sbin'])) {
    try {
      execFileSync(join(dir, 'redis-server'), ['--version'], { stdio: 'ignore' });
      return join(dir, 'redis-server');
    } catch {
      // not there
    }
  }
  return undefined;
}

export interface Argocd {
  /** Each process's log file. */
  readonly logs: Readonly<Record<'application-controller' | 'repo-server' | 'redis', string>>;
  stop(): Promise<void>;
}

export interface StartArgocd {
  readonly plane: ControlPlane;
  /** Directory for kubeconfigs, Argo CD's config and temporary files, logs. */
  readonly dir: string;
  /** Argo CD's namespace; created here with its settings and the `default` AppProject. */
  readonly namespace: string;
  /** Where ensureArgocdBinaries() put it. */
  readonly bin: string;
  /** The application controller's reconciliation period (--app-resync), seconds. */
  readonly resyncSeconds: number;
  /** More environment for the repo server only (e.g. HTTPS_PROXY, which the helm it runs inherits). */
  readonly repoServerEnv?: Readonly<Record<string, string>>;
}

const labels = { 'app.kubernetes.io/part-of': 'argocd' };

/** Creates Argo CD's namespace and settings, starts Redis, the repo server and the application controller, and waits until they are healthy. */
export async function startArgocd(options: StartArgocd): Promise<Argocd> {
  const { plane, dir, bin, namespace } = options;
  const redis = redisServer();
  if (redis === undefined) throw new Error('redis-server is not installed (test/gitops/argocd/install-redis.sh)');
  for (const sub of ['logs', 'bin', 'home', 'tmp', 'config/ssh', 'config/tls', 'config/gpg/source', 'config/gpg/keys', 'plugins'])
    mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, 'config', 'ssh', 'ssh_known_hosts'), '');
  const shim = join(dir, 'bin', 'kustomize');
  writeFileSync(
    shim,
    `#!/bin/sh
# kustomize for Argo CD's repo server: kubectl's built-in kustomize (build and version only).
case "$1" in
  build) shift; exec kubectl kustomize "$@" ;;
  version) kubectl version --client -o json | sed -n 's/.*"kustomizeVersion": *"\\([^"]*\\)".*/{kustomize\\/\\1  }/p'; exit 0 ;;
  *) echo "kustomize shim: only build and version, not: $*" >&2; exit 1 ;;
esac
`,
  );
  chmodSync(shim, 0o755);

  const core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'argocd-cm', labels }, data: {} } });
  await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'argocd-rbac-cm', labels }, data: {} } });
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: 'argocd-secret', labels }, stringData: { 'server.secretkey': randomBytes(24).toString('hex') } },
  });
  // What argocd-server creates at its start: the `default` project, which allows everything.
  await plane
    .adminConfig()
    .makeApiClient(k8s.CustomObjectsApi)
    .createNamespacedCustomObject({
      group: 'argoproj.io',
      version: 'v1alpha1',
      namespace,
      plural: 'appprojects',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'AppProject',
        metadata: { name: 'default', namespace },
        spec: { sourceRepos: ['*'], destinations: [{ server: '*', namespace: '*' }], clusterResourceWhitelist: [{ group: '*', kind: '*' }] },
      },
    });

  const [redisPort = 0, repoPort = 0, repoMetrics = 0, controllerMetrics = 0] = await freePorts(4);
  const logs = {
    'application-controller': join(dir, 'logs', 'application-controller.log'),
    'repo-server': join(dir, 'logs', 'repo-server.log'),
    redis: join(dir, 'logs', 'redis.log'),
  };
  const kubeconfig = plane.writeKubeconfig(plane.userConfig('argocd-application-controller'), join(dir, 'application-controller.kubeconfig'));
  const env = {
    // The kustomize shim, and Argo CD's own wrapper scripts beside its binary.
    PATH: `${join(dir, 'bin')}:${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
    HOME: join(dir, 'home'),
    TMPDIR: join(dir, 'tmp'),
    ARGOCD_APP_CONF_PATH: join(dir, 'config'),
    ARGOCD_SSH_DATA_PATH: join(dir, 'config', 'ssh'),
    ARGOCD_TLS_DATA_PATH: join(dir, 'config', 'tls'),
    ARGOCD_GPG_DATA_PATH: join(dir, 'config', 'gpg', 'source'),
    ARGOCD_GNUPGHOME: join(dir, 'config', 'gpg', 'keys'),
    ARGOCD_GPG_ENABLED: 'false',
    ARGOCD_PLUGINSOCKFILEPATH: join(dir, 'plugins'),
  };
  const children: ChildProcess[] = [];
  const launch = (name: keyof typeof logs, command: string, args: readonly string[], extra: Record<string, string> = {}): void => {
    const out = openSync(logs[name], 'a');
    children.push(spawn(command, args, { env: { ...env, ...extra }, stdio: ['ignore', out, out] }));
    closeSync(out);
  };
  // Should this process end without after() (a crash, a kill), take them along.
  const killAll = (): void => {
    for (const child of children) child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stop = async (): Promise<void> => {
    process.removeListener('exit', killAll);
    for (const child of [...children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };

  try {
    launch('redis', redis, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', join(dir, 'tmp')]);
    launch(
      'repo-server',
      join(bin, 'argocd-repo-server'),
      [
        '--address=127.0.0.1',
        `--port=${repoPort}`,
        '--metrics-address=127.0.0.1',
        `--metrics-port=${repoMetrics}`,
        '--disable-tls',
        // Its default names a file of the Pod's; with --disable-tls it must be empty.
        '--client-ca-path=',
        `--redis=127.0.0.1:${redisPort}`,
        // How long `main` resolves to the same commit: short, as the engines' intervals here.
        '--revision-cache-expiration=2s',
        '--loglevel=debug',
      ],
      options.repoServerEnv,
    );
    await waitHealthy('argocd-repo-server', `http://127.0.0.1:${repoMetrics}/healthz`, children, logs['repo-server']);
    launch(
      'application-controller',
      join(bin, 'argocd-application-controller'),
      [
        `--kubeconfig=${kubeconfig}`,
        `--namespace=${namespace}`,
        `--repo-server=127.0.0.1:${repoPort}`,
        '--repo-server-plaintext',
        `--redis=127.0.0.1:${redisPort}`,
        `--metrics-port=${controllerMetrics}`,
        `--app-resync=${options.resyncSeconds}`,
        '--app-resync-jitter=0',
        '--status-processors=4',
        '--operation-processors=4',
        '--loglevel=debug',
      ],
      { KUBECONFIG: kubeconfig, ARGOCD_FAKE_IN_CLUSTER: 'true' },
    );
    await waitHealthy('argocd-application-controller', `http://127.0.0.1:${controllerMetrics}/healthz`, children, logs['application-controller']);
  } catch (error) {
    await stop();
    throw error;
  }
  return { logs, stop };
}

async function waitHealthy(name: string, url: string, children: readonly ChildProcess[], log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const exited = children.find((child) => child.exitCode !== null || child.signalCode !== null);
    if (exited !== undefined)
      throw new Error(
        `an Argo CD process exited (${String(exited.exitCode ?? exited.signalCode)}) while starting ${name}; log ${log}:\n${readFileSync(log, 'utf8').slice(-2000)}`,
      );
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${name} did not become healthy at ${url}; log ${log}:\n${readFileSync(log, 'utf8').slice(-2000)}`);
}
