// A real local Kubernetes control plane for tests, demos and benchmarks: etcd, kube-apiserver and
// kube-controller-manager, built from the Go module proxy by build.sh, on free loopback ports.
//
// State lives in one directory (binaries' data, keys, logs, audit log, kubeconfigs, state.json), so that
// another process (a test file, `make dev-down`) can attach to a running control plane or stop it.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');

/** A user known to the apiserver's static token file. */
export interface StaticUser {
  readonly name: string;
  readonly groups: readonly string[];
}

/** Users every control plane knows, besides `admin` (system:masters). */
export const defaultUsers: readonly StaticUser[] = [
  { name: 'kube-ecrlogin', groups: [] },
  { name: 'tenant-a', groups: ['tenants'] },
  { name: 'tenant-b', groups: ['tenants'] },
  { name: 'gitops', groups: [] },
  { name: 'nobody', groups: [] },
];

/** What state.json records: enough for another process to use or stop the control plane. */
export interface ControlPlaneState {
  readonly dir: string;
  readonly server: string;
  readonly etcdUrl: string;
  readonly caFile: string;
  readonly issuer: string;
  readonly adminKubeconfig: string;
  readonly auditLog: string;
  readonly tokens: Readonly<Record<string, string>>;
  readonly pids: Readonly<Record<string, number>>;
  readonly ports: Readonly<Record<string, number>>;
  /** How each component was started (binary, arguments, log file), so that restart() starts it the same way. */
  readonly launches?: Readonly<Record<string, Launch>>;
  /** The Kubernetes minor it runs. */
  readonly minor?: KubeMinor;
}

/** One component's command line. */
export interface Launch {
  readonly bin: string;
  readonly args: readonly string[];
  readonly log: string;
}

/** The components restart() knows. */
export type Component = 'etcd' | 'kube-apiserver' | 'kube-controller-manager';

/** One line of the apiserver's audit log, the fields we read. */
export interface AuditEvent {
  readonly verb: string;
  readonly user: { readonly username: string; readonly groups?: string[] };
  readonly impersonatedUser?: { readonly username: string };
  readonly objectRef?: {
    readonly resource?: string;
    readonly subresource?: string;
    readonly namespace?: string;
    readonly name?: string;
    readonly apiGroup?: string;
  };
  readonly responseStatus?: { readonly code?: number };
  readonly requestReceivedTimestamp: string;
  readonly stageTimestamp: string;
  readonly userAgent?: string;
  /** Pod creations only: the object as sent, and as stored after admission. */
  readonly requestObject?: unknown;
  readonly responseObject?: unknown;
}

export interface AuditQuery {
  readonly user?: string;
  readonly namespace?: string;
  readonly namespacePrefix?: string;
  readonly resource?: string;
  readonly verbs?: readonly string[];
  readonly since?: Date;
  /** Only requests that succeeded (2xx). Default true. */
  readonly succeeded?: boolean;
}

export const writeVerbs: readonly string[] = ['create', 'update', 'patch', 'delete', 'deletecollection', 'apply'];

export interface StartOptions {
  /** Directory for all state; created, and wiped first. */
  readonly dir: string;
  readonly users?: readonly StaticUser[];
  /** Leave the processes running when this process exits (make dev-up). */
  readonly detached?: boolean;
  /** Echo progress to stderr. */
  readonly verbose?: boolean;
  /** The Kubernetes minor (default: KUBE_VERSION, else the newest). */
  readonly minor?: KubeMinor;
}

export class ControlPlane {
  state: ControlPlaneState;

  constructor(state: ControlPlaneState) {
    this.state = state;
  }

  get server(): string {
    return this.state.server;
  }

  get issuer(): string {
    return this.state.issuer;
  }

  /** The Kubernetes minor this control plane runs. */
  get minor(): KubeMinor {
    return this.state.minor ?? kubeMinor();
  }

  get caPem(): string {
    return readFileSync(this.state.caFile, 'utf8');
  }

  /** An admin (system:masters) KubeConfig. */
  adminConfig(): k8s.KubeConfig {
    return this.configForToken('admin', this.tokenOf('admin'));
  }

  /** A KubeConfig for a user of the static token file. */
  userConfig(name: string): k8s.KubeConfig {
    return this.configForToken(name, this.tokenOf(name));
  }

  /** A KubeConfig authenticating as a ServiceAccount, with a fresh TokenRequest token. */
  async serviceAccountConfig(namespace: string, name: string, expirationSeconds = 3600): Promise<k8s.KubeConfig> {
    const token = await this.requestToken(namespace, name, { expirationSeconds });
    return this.configForToken(`system:serviceaccount:${namespace}:${name}`, token);
  }

  /** Mints a ServiceAccount token with the TokenRequest API. */
  async requestToken(
    namespace: string,
    name: string,
    options: { audiences?: string[]; expirationSeconds?: number } = {},
  ): Promise<string> {
    const core = this.adminConfig().makeApiClient(k8s.CoreV1Api);
    const spec: k8s.AuthenticationV1TokenRequest['spec'] = { audiences: options.audiences ?? [] };
    if (options.expirationSeconds !== undefined) spec.expirationSeconds = options.expirationSeconds;
    const response = await core.createNamespacedServiceAccountToken({
      namespace,
      name,
      body: { spec },
    });
    const token = response.status?.token;
    if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
    return token;
  }

  /** Writes a kubeconfig file for a KubeConfig made here, and returns its path. */
  writeKubeconfig(config: k8s.KubeConfig, file: string): string {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, config.exportConfig(), { mode: 0o600 });
    return file;
  }

  tokenOf(user: string): string {
    const token = this.state.tokens[user];
    if (token === undefined) throw new Error(`user ${user} is not in the control plane's token file`);
    return token;
  }

  configForToken(user: string, token: string): k8s.KubeConfig {
    const config = new k8s.KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'local', server: this.state.server, caData: Buffer.from(this.caPem).toString('base64') }],
      users: [{ name: user, token }],
      contexts: [{ name: 'local', cluster: 'local', user }],
      currentContext: 'local',
    });
    return config;
  }

  /** Audit log events matching a query, in log order. */
  auditEvents(query: AuditQuery = {}): AuditEvent[] {
    const text = existsSync(this.state.auditLog) ? readFileSync(this.state.auditLog, 'utf8') : '';
    const events: AuditEvent[] = [];
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let event: AuditEvent;
      try {
        event = JSON.parse(line) as AuditEvent;
      } catch {
        continue; // a line being written right now
      }
      if (matches(event, query)) events.push(event);
    }
    return events;
  }

  /** Write requests (create/update/patch/delete) matching a query. */
  writes(query: Omit<AuditQuery, 'verbs'> = {}): AuditEvent[] {
    return this.auditEvents({ ...query, verbs: writeVerbs });
  }

  /**
   * Waits until the audit log has caught up with the writes answered before this call. The apiserver
   * logs a request once it has answered it, so a write already seen through the API can be missing
   * from the log for a moment. This makes a write of its own now (a dry-run create, which changes
   * nothing) and waits for its line: the earlier writes' lines were already on their way.
   */
  async auditCaughtUp(timeoutMs = 10_000): Promise<void> {
    const name = `audit-barrier-${randomBytes(4).toString('hex')}`;
    await this.adminConfig().makeApiClient(k8s.CoreV1Api).createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name } }, dryRun: 'All' });
    const deadline = Date.now() + timeoutMs;
    while (!this.auditEvents({ resource: 'configmaps', namespace: 'default', verbs: ['create'] }).some((event) => event.objectRef?.name === name)) {
      if (Date.now() > deadline) throw new Error(`the audit log did not show ${name} within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** Process ids by component, for tests that restart one. */
  get pids(): Readonly<Record<string, number>> {
    return this.state.pids;
  }

  async stop(): Promise<void> {
    await stopProcesses(this.state.pids);
  }

  /**
   * Stops one component and starts it again with the same binary, arguments, data directory and ports,
   * then waits until it serves. For chaos runs on a private control plane: never the shared one.
   */
  async restart(component: Component, options: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number } = {}): Promise<void> {
    await this.stopComponent(component, options.signal);
    if (options.downMs !== undefined && options.downMs > 0) await sleep(options.downMs);
    await this.startComponent(component);
  }

  /** Stops one component (SIGTERM, then SIGKILL after 10 s; or SIGKILL at once) and waits for its exit. */
  async stopComponent(component: Component, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const pid = this.state.pids[component];
    if (pid === undefined || !alive(pid)) return;
    process.kill(pid, signal);
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await sleep(20);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    while (alive(pid)) await sleep(20);
  }

  /** Starts one component as it was started first (its pid in state.json is kept current), and waits until it serves. */
  async startComponent(component: Component): Promise<void> {
    const launch = this.state.launches?.[component];
    if (launch === undefined) throw new Error(`no launch record for ${component}: was this control plane started by this version?`);
    const out = openSync(launch.log, 'a');
    const child = spawn(launch.bin, [...launch.args], { stdio: ['ignore', out, out] });
    closeSync(out);
    if (child.pid === undefined) throw new Error(`could not start ${component}`);
    child.unref();
    this.state = { ...this.state, pids: { ...this.state.pids, [component]: child.pid } };
    const file = join(this.state.dir, 'state.json');
    if (existsSync(file)) writeFileSync(file, JSON.stringify(this.state, null, 2) + '\n');
    if (component === 'etcd') {
      await waitFor('etcd', async () => (await fetch(`${this.state.etcdUrl}/health`)).ok, 30_000);
    } else if (component === 'kube-apiserver') {
      await waitFor('kube-apiserver /readyz', async () => (await httpsGet(`${this.server}/readyz`, this.caPem, this.tokenOf('admin'))).status === 200, 90_000);
    }
  }
}

function matches(event: AuditEvent, query: AuditQuery): boolean {
  const user = event.impersonatedUser?.username ?? event.user.username;
  if (query.user !== undefined && user !== query.user) return false;
  if (query.verbs !== undefined && !query.verbs.includes(event.verb)) return false;
  if (query.resource !== undefined && event.objectRef?.resource !== query.resource) return false;
  if (query.namespace !== undefined && event.objectRef?.namespace !== query.namespace) return false;
  if (query.namespacePrefix !== undefined && !(event.objectRef?.namespace ?? '').startsWith(query.namespacePrefix)) {
    return false;
  }
  if (query.since !== undefined && new Date(event.requestReceivedTimestamp) < query.since) return false;
  const code = event.responseStatus?.code ?? 0;
  if ((query.succeeded ?? true) && (code < 200 || code >= 300)) return false;
  return true;
}

/** The Kubernetes minors the project is tested on; KUBE_VERSION picks one (default: the newest). */
export const kubeMinors = ['1.34', '1.37'] as const;
export type KubeMinor = (typeof kubeMinors)[number];

/** The minor KUBE_VERSION names (1.34 or 1.37, with or without a leading v), or the newest. */
export function kubeMinor(value = process.env['KUBE_VERSION']): KubeMinor {
  const wanted = (value ?? '').replace(/^v/, '');
  if (wanted === '') return '1.37';
  const found = kubeMinors.find((minor) => minor === wanted);
  if (found === undefined) throw new Error(`KUBE_VERSION=${value ?? ''} is not one of the tested minors: ${kubeMinors.join(', ')}`);
  return found;
}

/** Builds (or finds in the cache) the binaries of a minor and returns their directory. */
export function ensureBinaries(minor: KubeMinor = kubeMinor(), extra: readonly string[] = []): string {
  const out = execFileSync(join(here, 'build.sh'), [...extra], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, KUBE_VERSION: minor },
  });
  return out.trim().split('\n').at(-1) ?? '';
}

/** Starts a control plane in options.dir and waits until it serves and its controllers work. */
export async function startControlPlane(options: StartOptions): Promise<ControlPlane> {
  const minor = options.minor ?? kubeMinor();
  const bin = ensureBinaries(minor);
  const dir = resolve(options.dir);
  rmSync(dir, { recursive: true, force: true });
  for (const sub of ['etcd', 'pki', 'logs']) mkdirSync(join(dir, sub), { recursive: true });
  const log = (message: string): void => {
    if (options.verbose) process.stderr.write(`control plane: ${message}\n`);
  };

  const [etcdPort = 0, peerPort = 0, apiPort = 0] = await freePorts(3);
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const server = `https://127.0.0.1:${apiPort}`;

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'pki', 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(join(dir, 'pki', 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));

  const users = [{ name: 'admin', groups: ['system:masters'] }, ...(options.users ?? defaultUsers)];
  const tokens: Record<string, string> = {};
  const tokenLines = users.map((user) => {
    const token = randomBytes(24).toString('hex');
    tokens[user.name] = token;
    return `${token},${user.name},${user.name}-uid,"${user.groups.join(',')}"`;
  });
  writeFileSync(join(dir, 'pki', 'tokens.csv'), tokenLines.join('\n') + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'audit-policy.yaml'), auditPolicy);
  const auditLog = join(dir, 'audit.log');

  const children: ChildProcess[] = [];
  const pids: Record<string, number> = {};
  const launches: Record<string, Launch> = {};
  const launch = (name: string, args: string[]): ChildProcess => {
    launches[name] = { bin: join(bin, name), args, log: join(dir, 'logs', `${name}.log`) };
    const out = openSync(join(dir, 'logs', `${name}.log`), 'a');
    const child = spawn(join(bin, name), args, {
      stdio: ['ignore', out, out],
      detached: options.detached ?? false,
    });
    closeSync(out);
    if (child.pid === undefined) throw new Error(`could not start ${name}`);
    pids[name] = child.pid;
    children.push(child);
    if (options.detached) child.unref();
    return child;
  };
  const killAll = (): void => {
    for (const child of children) child.kill('SIGKILL');
  };
  if (!options.detached) process.once('exit', killAll);

  try {
    log(`etcd on ${etcdUrl}`);
    launch('etcd', [
      '--name=test',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=test=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitFor('etcd', async () => (await fetch(`${etcdUrl}/health`)).ok, 30_000);

    log(`kube-apiserver on ${server}`);
    launch('kube-apiserver', apiserverArgs({ dir, etcdUrl, apiPort, server, auditLog }));
    const caFile = join(dir, 'pki', 'apiserver.crt');
    const adminToken = tokens['admin'] ?? '';
    await waitFor('kube-apiserver /readyz', async () => {
      if (!existsSync(caFile)) return false;
      return (await httpsGet(`${server}/readyz`, readFileSync(caFile, 'utf8'), adminToken)).status === 200;
    }, 90_000);

    const state: ControlPlaneState = {
      dir,
      server,
      etcdUrl,
      caFile,
      issuer: server,
      adminKubeconfig: join(dir, 'admin.kubeconfig'),
      auditLog,
      tokens,
      pids,
      ports: { etcd: etcdPort, etcdPeer: peerPort, apiserver: apiPort },
      launches,
      minor,
    };
    const plane = new ControlPlane(state);
    plane.writeKubeconfig(plane.adminConfig(), state.adminKubeconfig);

    log('kube-controller-manager');
    launch('kube-controller-manager', [
      `--kubeconfig=${state.adminKubeconfig}`,
      `--controllers=${controllers.join(',')}`,
      `--root-ca-file=${caFile}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--concurrent-namespace-syncs=10',
      '--concurrent-gc-syncs=20',
      '--v=1',
    ]);
    await allowAnonymousIssuerDiscovery(plane);
    await waitFor('the default ServiceAccount', async () => {
      const core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
      try {
        await core.readNamespacedServiceAccount({ namespace: 'default', name: 'default' });
        return true;
      } catch {
        return false;
      }
    }, 60_000);

    writeFileSync(join(dir, 'state.json'), JSON.stringify(state, null, 2) + '\n');
    log('ready');
    if (!options.detached) process.removeListener('exit', killAll);
    return plane;
  } catch (error) {
    killAll();
    throw new Error(`control plane failed to start (logs in ${join(dir, 'logs')}): ${String(error)}`, {
      cause: error,
    });
  }
}

/** Attaches to a control plane that another process started in dir. */
export function attachControlPlane(dir: string): ControlPlane {
  const file = join(resolve(dir), 'state.json');
  if (!existsSync(file)) throw new Error(`no control plane state in ${file}: is it running?`);
  return new ControlPlane(JSON.parse(readFileSync(file, 'utf8')) as ControlPlaneState);
}

/** Stops the control plane recorded in dir, if any. */
export async function stopControlPlaneIn(dir: string): Promise<void> {
  const file = join(resolve(dir), 'state.json');
  if (!existsSync(file)) return;
  await attachControlPlane(dir).stop();
  rmSync(file);
}

/**
 * kube-controller-manager's controllers: what a namespace, its ServiceAccounts and garbage collection
 * need, and the workload controllers, so that Pods are made the way a cluster makes them (a Deployment
 * applied with its Namespace is where admission matters). No scheduler runs: Pods stay Pending.
 */
const controllers = [
  'namespace-controller',
  'serviceaccount-controller',
  'garbage-collector-controller',
  'root-ca-certificate-publisher-controller',
  'clusterrole-aggregation-controller',
  'deployment-controller',
  'replicaset-controller',
  'statefulset-controller',
  'daemonset-controller',
  'job-controller',
  'cronjob-controller',
];

interface ApiserverPaths {
  readonly dir: string;
  readonly etcdUrl: string;
  readonly apiPort: number;
  readonly server: string;
  readonly auditLog: string;
}

function apiserverArgs(p: ApiserverPaths): string[] {
  return [
    `--etcd-servers=${p.etcdUrl}`,
    `--secure-port=${p.apiPort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    // 1.37 refuses a loopback advertise address for the `kubernetes` Service's endpoints; nothing here
    // reaches the apiserver through that Service.
    '--endpoint-reconciler-type=none',
    `--cert-dir=${join(p.dir, 'pki')}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    `--service-account-issuer=${p.server}`,
    `--service-account-key-file=${join(p.dir, 'pki', 'sa.pub')}`,
    `--service-account-signing-key-file=${join(p.dir, 'pki', 'sa.key')}`,
    '--authorization-mode=RBAC',
    `--token-auth-file=${join(p.dir, 'pki', 'tokens.csv')}`,
    `--audit-policy-file=${join(p.dir, 'audit-policy.yaml')}`,
    `--audit-log-path=${p.auditLog}`,
    '--audit-log-format=json',
    '--audit-log-mode=blocking',
    '--audit-log-maxsize=0',
    '--profiling=false',
    '--shutdown-delay-duration=0s',
    '--event-ttl=1h',
    '--v=1',
  ];
}

// Every write at Metadata level (who, what, when, result); reads are not logged. Pod creations also
// with their request and response bodies: what admission changed shows as the difference.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: RequestResponse
    verbs: [create]
    resources: [{group: "", resources: [pods]}]
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
`;

async function allowAnonymousIssuerDiscovery(plane: ControlPlane): Promise<void> {
  // As on EKS, the issuer's discovery document and keys are public, so that STS can fetch them.
  const rbac = plane.adminConfig().makeApiClient(k8s.RbacAuthorizationV1Api);
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: 'service-account-issuer-discovery-public' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:service-account-issuer-discovery' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }],
    },
  });
}

async function stopProcesses(pids: Readonly<Record<string, number>>): Promise<void> {
  // Reverse start order: controller-manager, apiserver, then etcd.
  const order = ['kube-controller-manager', 'kube-apiserver', 'etcd'];
  for (const name of order) {
    const pid = pids[name];
    if (pid === undefined || !alive(pid)) continue;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Free TCP ports on 127.0.0.1 (held open together so that they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  const ports: number[] = [];
  for (const server of servers) {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    ports.push(address.port);
  }
  await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
  return ports;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** A GET over https with a custom CA; fetch() has no per-request CA option. */
export function httpsGet(url: string, ca: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const req = httpsRequest(url, { ca, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}
