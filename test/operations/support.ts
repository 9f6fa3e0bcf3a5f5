// Helpers for the operations tests: the controller as its own process (as a Deployment runs it), its
// own ServiceAccounts, the Lease, HTTP probes and a Prometheus text-format parser.

import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { PolicyRule } from '../../src/kube/permissions.ts';
import { freePorts, repoRoot } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { controllerKeys } from '../support/controller.ts';

export const cli = join(repoRoot, 'src', 'cli.ts');

export function admin(): { core: k8s.CoreV1Api; rbac: k8s.RbacAuthorizationV1Api; coordination: k8s.CoordinationV1Api } {
  const config = cluster().adminConfig();
  return {
    core: config.makeApiClient(k8s.CoreV1Api),
    rbac: config.makeApiClient(k8s.RbacAuthorizationV1Api),
    coordination: config.makeApiClient(k8s.CoordinationV1Api),
  };
}

/** A controller namespace and the label of the namespaces it serves, unique to one test. */
export interface Install {
  readonly namespace: string;
  readonly label: { readonly key: string; readonly value: string };
  readonly selector: string;
}

export async function createInstall(prefix = 'ops'): Promise<Install> {
  const namespace = uniqueName(`${prefix}-system`);
  await admin().core.createNamespace({ body: { metadata: { name: namespace } } });
  const label = { key: 'kube-ecrlogin.test/ops', value: uniqueName(prefix) };
  return { namespace, label, selector: `${label.key}=${label.value}` };
}

/**
 * A ServiceAccount in the install's namespace bound to cluster-admin (or to nothing), and a kubeconfig
 * file for it. Its user name tells its writes apart in the audit log.
 */
export async function serviceAccount(
  install: Install,
  name: string,
  options: { clusterAdmin?: boolean } = {},
): Promise<{ user: string; kubeconfig: string; config: k8s.KubeConfig }> {
  const { core } = admin();
  await core.createNamespacedServiceAccount({ namespace: install.namespace, body: { metadata: { name } } });
  if (options.clusterAdmin ?? true) await bindClusterRole(install, name, 'cluster-admin');
  const plane = cluster();
  const config = await plane.serviceAccountConfig(install.namespace, name);
  const kubeconfig = plane.writeKubeconfig(config, join(plane.state.dir, 'ops', `${install.namespace}-${name}.kubeconfig`));
  return { user: `system:serviceaccount:${install.namespace}:${name}`, kubeconfig, config };
}

export async function bindClusterRole(install: Install, serviceAccountName: string, clusterRole: string): Promise<string> {
  const name = `${install.namespace}-${serviceAccountName}-${clusterRole}`.slice(0, 253);
  await admin().rbac.createClusterRoleBinding({
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccountName, namespace: install.namespace }],
    },
  });
  return name;
}

/** Namespaces served by the install, annotated; resolves once their default ServiceAccounts exist. */
export async function createServedNamespaces(install: Install, names: readonly string[], annotations: (name: string) => Record<string, string>): Promise<void> {
  const { core } = admin();
  await Promise.all(
    names.map((name) =>
      core.createNamespace({ body: { metadata: { name, annotations: annotations(name), labels: { [install.label.key]: install.label.value } } } }),
    ),
  );
}

/** Rules from src/kube/permissions.ts as the RBAC API takes them. */
export function policyRules(rules: readonly PolicyRule[]): k8s.V1PolicyRule[] {
  return rules.map((rule) => ({
    apiGroups: [...rule.apiGroups],
    resources: [...rule.resources],
    verbs: [...rule.verbs],
    ...(rule.resourceNames !== undefined ? { resourceNames: [...rule.resourceNames] } : {}),
  }));
}

export async function createConfig(install: Install, config: string): Promise<void> {
  await admin().core.createNamespacedConfigMap({
    namespace: install.namespace,
    body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': config } },
  });
}

export async function readLease(install: Install, name = 'kube-ecrlogin'): Promise<k8s.V1Lease | undefined> {
  try {
    return await admin().coordination.readNamespacedLease({ namespace: install.namespace, name });
  } catch (error) {
    if (error instanceof k8s.ApiException && error.code === 404) return undefined;
    throw error;
  }
}

export interface ControllerProcess {
  readonly identity: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly metricsUrl: string;
  readonly healthUrl: string;
  /** stderr (the JSON log) and stdout, as written so far. */
  output(): string;
  /** Log lines with this msg. */
  logged(message: string): Record<string, unknown>[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

export interface SpawnOptions {
  readonly install: Install;
  /** POD_NAME: the Lease holder identity. */
  readonly identity: string;
  readonly kubeconfig: string;
  readonly awsEndpoint: string;
  readonly args?: readonly string[];
  readonly env?: Record<string, string>;
}

/** `kube-ecrlogin run` as its own process, with the install's namespace and selector. */
export async function spawnController(options: SpawnOptions): Promise<ControllerProcess> {
  const [metricsPort, healthPort] = await freePorts(2);
  const args = [
    cli,
    'run',
    '--namespace',
    options.install.namespace,
    '--namespace-selector',
    options.install.selector,
    '--metrics-bind-address',
    `127.0.0.1:${metricsPort}`,
    '--health-probe-bind-address',
    `127.0.0.1:${healthPort}`,
    '--backoff-base',
    '200ms',
    '--backoff-max',
    '5s',
    '--aws-retries',
    '1',
    '--log-level',
    'debug',
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '/tmp',
      KUBECONFIG: options.kubeconfig,
      POD_NAME: options.identity,
      AWS_ENDPOINT_URL: options.awsEndpoint,
      AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  if (child.pid === undefined) throw new Error('the controller process did not start');
  return {
    identity: options.identity,
    child,
    pid: child.pid,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    healthUrl: `http://127.0.0.1:${healthPort}`,
    output: () => output,
    logged: (message) =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        })
        .filter((entry) => entry['message'] === message),
    exited,
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Stops a controller process if it still runs (SIGKILL after 15 s of SIGTERM). */
export async function stopController(controller: ControllerProcess | undefined): Promise<void> {
  if (controller === undefined || controller.child.exitCode !== null || controller.child.signalCode !== null) return;
  controller.kill('SIGTERM');
  const timer = setTimeout(() => controller.kill('SIGKILL'), 15_000);
  await controller.exited;
  clearTimeout(timer);
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

export function httpGet(url: string, method = 'GET'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, contentType: res.headers['content-type'] ?? '' }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Scrape {
  readonly samples: readonly Sample[];
  /** Metric family -> TYPE. */
  readonly types: ReadonlyMap<string, string>;
  readonly help: ReadonlyMap<string, string>;
  /** Samples of a series name whose labels include these. */
  find(name: string, labels?: Record<string, string>): Sample[];
  /** The one sample of name with these labels; throws when there is not exactly one. */
  value(name: string, labels?: Record<string, string>): number;
  /** Sum over the samples of name with these labels (0 when none). */
  sum(name: string, labels?: Record<string, string>): number;
}

/** Parses the Prometheus text exposition format (0.0.4), strictly: a malformed line throws. */
export function parseMetrics(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta !== null) {
      (meta[1] === 'TYPE' ? types : help).set(meta[2] ?? '', meta[3] ?? '');
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$/.exec(line);
    if (match === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = match[3] ?? '';
    const pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
    let at = 0;
    while (at < body.length) {
      pair.lastIndex = at;
      const found = pair.exec(body);
      if (found === null) throw new Error(`malformed labels in ${JSON.stringify(line)}`);
      labels[found[1] ?? ''] = (found[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      at = pair.lastIndex;
    }
    // As Prometheus reads it (Go's ParseFloat): NaN and Inf in any case; prom-client writes "Nan".
    const raw = (match[4] ?? '').toLowerCase();
    const value = raw === 'nan' ? Number.NaN : raw === '+inf' || raw === 'inf' ? Infinity : raw === '-inf' ? -Infinity : Number(raw);
    if (raw !== 'nan' && Number.isNaN(value)) throw new Error(`not a number in ${JSON.stringify(line)}`);
    samples.push({ name: match[1] ?? '', labels, value });
  }
  const find = (name: string, labels: Record<string, string> = {}): Sample[] =>
    samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  return {
    samples,
    types,
    help,
    find,
    value(name, labels = {}) {
      const found = find(name, labels);
      if (found.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
      return found[0]?.value ?? Number.NaN;
    },
    sum: (name, labels = {}) => find(name, labels).reduce((total, sample) => total + sample.value, 0),
  };
}

export async function scrape(url: string): Promise<Scrape> {
  const answer = await httpGet(url);
  if (answer.status !== 200) throw new Error(`GET ${url}: HTTP ${answer.status}`);
  return parseMetrics(answer.body);
}

export const ecrHost = (region: string, account = '111122223333'): string => `${account}.dkr.ecr.${region}.amazonaws.com`;
