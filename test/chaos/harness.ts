// The world a chaos run acts on, and the processes it disturbs: annotated namespaces (two regions,
// an assumed role on some, ServiceAccount annotations on others), things we do not own (decoy Secrets,
// a Secret that takes our name, imagePullSecrets entries put there by others, a namespace we must not
// touch), the AWS test server as its own process, a TCP proxy between the controller and
// kube-apiserver, the controller replicas, and the invariant sampler.

import * as k8s from '@kubernetes/client-node';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnAwsTestServer, type SpawnedServer } from '../aws/control-client.ts';
import { freePorts, type ControlPlane } from '../cluster/controlplane.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { Sampler, type Expectations, type Target } from './invariants.ts';
import { startProxy, type TcpProxy } from './proxy.ts';
import { Replica, type LogLine } from './replicas.ts';

export const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
export const west = '444455556666.dkr.ecr.eu-west-1.amazonaws.com';
export const pullRole = 'arn:aws:iam::111122223333:role/chaos-pull';

/** Compressed time and the controller's flags. */
export interface ChaosSettings {
  readonly tokenLifetimeSeconds: number;
  /** refresh.margin, percent of the token's lifetime. */
  readonly marginPercent: number;
  /** refresh.jitter, percent of the margin. */
  readonly jitterPercent: number;
  readonly minIntervalSeconds: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly awsTimeoutMs: number;
  readonly awsRetries: number;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  /** Annotated namespaces. */
  readonly namespaces: number;
  readonly replicas: number;
}

export const fullSettings: ChaosSettings = {
  tokenLifetimeSeconds: 60,
  marginPercent: 50,
  jitterPercent: 10,
  minIntervalSeconds: 2,
  backoffBaseMs: 1_000,
  backoffMaxMs: 10_000,
  awsTimeoutMs: 3_000,
  awsRetries: 2,
  // The defaults (15 s, 10 s, 2 s) hand over well within the default backoff cap (5 m); compressed in
  // proportion, a new leader still takes over within the compressed cap.
  leaseDurationMs: 6_000,
  renewDeadlineMs: 4_000,
  retryPeriodMs: 1_000,
  namespaces: 20,
  replicas: 2,
};

export interface StartChaos {
  readonly plane: ControlPlane;
  /** Where kubeconfig and logs go. */
  readonly dir: string;
  /** Prefix of every name created; also the value of the label the controller serves. */
  readonly prefix: string;
  readonly settings: ChaosSettings;
  /** On a shared control plane: read per namespace, not cluster-wide, and less often. */
  readonly shared?: boolean;
  readonly log?: (message: string) => void;
}

export interface Chaos {
  readonly plane: ControlPlane;
  readonly settings: ChaosSettings;
  readonly aws: SpawnedServer;
  readonly proxy: TcpProxy;
  readonly replicas: readonly Replica[];
  readonly sampler: Sampler;
  readonly expectations: Expectations;
  readonly core: k8s.CoreV1Api;
  readonly prefix: string;
  readonly label: { readonly key: string; readonly value: string };
  readonly systemNamespace: string;
  readonly log: (message: string) => void;
  /** The replica holding the Lease now, if any. */
  leader(): Promise<Replica | undefined>;
  /** Resolves just before the next refresh of any Secret is due (leadMs ahead). */
  beforeNextRefresh(leadMs: number): Promise<void>;
  /** Resolves at the first "Applied Secret" a replica logs from now on (a refresh is under way). */
  refreshUnderWay(replica?: Replica): Promise<void>;
  /** Creates an annotated namespace whose Secret must appear for convergence; returns its removal. */
  probe(name: string): Promise<() => Promise<void>>;
  stop(): Promise<void>;
}

const jsonPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);

export async function startChaos(options: StartChaos): Promise<Chaos> {
  const { plane, dir, prefix, settings } = options;
  const log = options.log ?? ((): void => undefined);
  mkdirSync(dir, { recursive: true });
  const admin = plane.adminConfig();
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const label = { key: 'chaos.kube-ecrlogin.test/run', value: prefix };
  const labels = { [label.key]: label.value };
  const systemNamespace = `${prefix}-system`;
  const marginMs = (settings.tokenLifetimeSeconds * 1000 * settings.marginPercent) / 100;

  // The controller's namespace, identity (cluster-admin, so that RBAC is not what is under test) and config.
  await core.createNamespace({ body: { metadata: { name: systemNamespace } } });
  await core.createNamespacedServiceAccount({ namespace: systemNamespace, body: { metadata: { name: 'controller' } } });
  await admin.makeApiClient(k8s.RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: `${prefix}-controller` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: 'controller', namespace: systemNamespace }],
    },
  });
  await core.createNamespacedConfigMap({
    namespace: systemNamespace,
    body: {
      metadata: { name: 'kube-ecrlogin-config' },
      data: {
        'config.yaml': `refresh:\n  margin: ${settings.marginPercent}%\n  jitter: ${settings.jitterPercent}%\n  minInterval: ${settings.minIntervalSeconds}s\n`,
      },
    },
  });

  // The world.
  const targets: Target[] = [];
  const expectations: {
    targets: Target[];
    ours: { namespace: string; serviceAccount: string; names: string[] }[];
    theirs: { namespace: string; serviceAccount: string; names: string[] }[];
    decoySecrets: { namespace: string; name: string }[];
    decoyServiceAccounts: { namespace: string; name: string }[];
  } = { targets, ours: [], theirs: [], decoySecrets: [], decoyServiceAccounts: [] };
  const theirEntries = [{ name: 'dockerhub' }, { name: 'gitops-pull' }];
  for (let i = 0; i < settings.namespaces; i++) {
    const namespace = `${prefix}-${String(i).padStart(2, '0')}`;
    const hosts = [[east, west], [east], [west]][i % 3] ?? [east];
    const annotations: Record<string, string> = {
      'ecr-login/server': hosts.join(', '),
      'ecr-login/service-accounts': 'default,builder',
      ...(i % 5 === 4 ? { 'ecr-login/role-arn': pullRole } : {}),
    };
    await core.createNamespace({ body: { metadata: { name: namespace, labels, annotations } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'builder' }, imagePullSecrets: theirEntries } });
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'decoy' }, type: 'Opaque', stringData: { token: 'not ours' } } });
    targets.push({ namespace, secret: 'ecr-login', hosts });
    expectations.ours.push({ namespace, serviceAccount: 'default', names: ['ecr-login'] }, { namespace, serviceAccount: 'builder', names: ['ecr-login'] });
    expectations.theirs.push({ namespace, serviceAccount: 'builder', names: theirEntries.map((e) => e.name) });
    expectations.decoySecrets.push({ namespace, name: 'decoy' });
    if (i % 4 === 0) {
      await core.createNamespacedServiceAccount({
        namespace,
        body: { metadata: { name: 'puller', annotations: { 'ecr-login/server': west } }, imagePullSecrets: [{ name: 'mirror' }] },
      });
      targets.push({ namespace, secret: 'ecr-login-puller', hosts: [west] });
      expectations.ours.push({ namespace, serviceAccount: 'puller', names: ['ecr-login-puller'] });
      expectations.theirs.push({ namespace, serviceAccount: 'puller', names: ['mirror'] });
    }
  }
  // A Secret that takes the name an annotation asks for: never touched.
  const conflict = `${prefix}-conflict`;
  await core.createNamespace({ body: { metadata: { name: conflict, labels } } });
  await core.createNamespacedSecret({ namespace: conflict, body: { metadata: { name: 'taken' }, type: 'Opaque', stringData: { token: 'someone else' } } });
  await core.patchNamespace(
    { name: conflict, body: [{ op: 'add', path: '/metadata/annotations', value: { 'ecr-login/server': east, 'ecr-login/secret-name': 'taken' } }] },
    jsonPatch,
  );
  expectations.decoySecrets.push({ namespace: conflict, name: 'taken' });
  // A served namespace without annotations: nothing in it is ours to touch.
  const quiet = `${prefix}-quiet`;
  await core.createNamespace({ body: { metadata: { name: quiet, labels } } });
  await core.createNamespacedServiceAccount({ namespace: quiet, body: { metadata: { name: 'builder' }, imagePullSecrets: theirEntries } });
  await core.createNamespacedSecret({
    namespace: quiet,
    body: { metadata: { name: 'regcred' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': '{"auths":{}}' } },
  });
  expectations.decoySecrets.push({ namespace: quiet, name: 'regcred' });
  expectations.decoyServiceAccounts.push({ namespace: quiet, name: 'builder' });
  log(`created ${settings.namespaces} annotated namespaces (${targets.length} Secrets expected), a conflict and a quiet namespace`);

  // AWS, the proxy, the controller's kubeconfig through it.
  const aws = await spawnAwsTestServer(['--token-lifetime-seconds', String(settings.tokenLifetimeSeconds)]);
  await aws.control.trust({ users: [controllerKeys] });
  const apiserver = new URL(plane.server);
  const proxy = await startProxy({ host: apiserver.hostname, port: Number(apiserver.port) });
  const token = await plane.requestToken(systemNamespace, 'controller', { expirationSeconds: 6 * 3600 });
  const kubeconfig = new k8s.KubeConfig();
  kubeconfig.loadFromOptions({
    clusters: [{ name: 'via-proxy', server: proxy.url, caData: Buffer.from(plane.caPem).toString('base64') }],
    users: [{ name: 'controller', token }],
    contexts: [{ name: 'via-proxy', cluster: 'via-proxy', user: 'controller' }],
    currentContext: 'via-proxy',
  });
  const kubeconfigFile = plane.writeKubeconfig(kubeconfig, join(dir, 'kubeconfig'));

  const ports = await freePorts(settings.replicas);
  const seconds = (ms: number): string => `${ms / 1000}s`;
  const replicas = ports.map(
    (port, i) =>
      new Replica({
        name: `${prefix}-${'abcdefgh'[i] ?? String(i)}`,
        logFile: join(dir, 'logs', `replica-${'abcdefgh'[i] ?? String(i)}.log`),
        args: [
          '--namespace',
          systemNamespace,
          '--namespace-selector',
          `${label.key}=${label.value}`,
          '--leader-elect',
          '--lease-duration',
          seconds(settings.leaseDurationMs),
          '--renew-deadline',
          seconds(settings.renewDeadlineMs),
          '--retry-period',
          seconds(settings.retryPeriodMs),
          '--metrics-bind-address',
          `127.0.0.1:${port}`,
          '--health-probe-bind-address',
          '0',
          '--backoff-base',
          `${settings.backoffBaseMs}ms`,
          '--backoff-max',
          `${settings.backoffMaxMs}ms`,
          '--aws-timeout',
          `${settings.awsTimeoutMs}ms`,
          '--aws-retries',
          String(settings.awsRetries),
          '--resync-period',
          '1m',
          '--shutdown-timeout',
          '5s',
          '--log-level',
          'info',
        ],
        env: {
          KUBECONFIG: kubeconfigFile,
          AWS_ENDPOINT_URL: aws.endpoint,
          AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
          AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
          AWS_REGION: 'us-east-1',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
      }),
  );
  const sampler = new Sampler({
    core,
    expectations,
    timing: { marginMs, graceMs: 3_000 },
    perNamespace: options.shared ?? false,
    intervalMs: options.shared === true ? 500 : 300,
    rss: () => Object.fromEntries(replicas.map((r) => [r.name, r.rss()])),
  });
  // The decoys' resourceVersions are recorded before any controller runs.
  await eventually(
    'the decoys',
    async () => {
      await sampler.start();
    },
    { timeoutMs: 30_000 },
  );
  for (const replica of replicas) replica.start();
  log(`started ${replicas.length} controller replicas with --leader-elect, through the proxy at ${proxy.url}`);

  const coordination = admin.makeApiClient(k8s.CoordinationV1Api);
  const chaos: Chaos = {
    plane,
    settings,
    aws,
    proxy,
    replicas,
    sampler,
    expectations,
    core,
    prefix,
    label,
    systemNamespace,
    log,
    async leader() {
      try {
        const lease = await coordination.readNamespacedLease({ namespace: systemNamespace, name: 'kube-ecrlogin' });
        return replicas.find((r) => r.name === lease.spec?.holderIdentity && r.pid !== undefined);
      } catch {
        return undefined;
      }
    },
    async beforeNextRefresh(leadMs) {
      const jitter = settings.jitterPercent / 100;
      for (;;) {
        const next = sampler.nextRefreshAt(jitter);
        const wait = next === undefined ? -1 : next - leadMs - Date.now();
        if (wait >= 0) {
          await sleep(wait);
          return;
        }
        await sleep(500);
      }
    },
    refreshUnderWay(replica) {
      return new Promise((resolve) => {
        const offs = (replica === undefined ? replicas : [replica]).map((r) =>
          r.onLog((line: LogLine) => {
            if (line.message !== 'Applied Secret') return;
            for (const off of offs) off();
            resolve();
          }),
        );
      });
    },
    async probe(name) {
      const namespace = `${prefix}-probe-${name}`.slice(0, 63).replace(/-+$/, '');
      await eventually(
        `probe namespace ${namespace}`,
        async () => {
          try {
            await core.createNamespace({ body: { metadata: { name: namespace, labels, annotations: { 'ecr-login/server': east } } } });
          } catch (error) {
            if (!(error instanceof k8s.ApiException && error.code === 409)) throw error;
          }
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      sampler.addProbe({ namespace, secret: 'ecr-login', hosts: [east] });
      return async () => {
        sampler.removeProbe(namespace);
        await core.deleteNamespace({ name: namespace }).catch(() => undefined);
      };
    },
    async stop() {
      await sampler.stop();
      await Promise.all(replicas.map((r) => r.stop()));
      await aws.close();
      await proxy.close();
    },
  };
  return chaos;
}

/** Deletes what startChaos created (for a shared control plane). */
export async function removeChaos(plane: ControlPlane, prefix: string): Promise<void> {
  const admin = plane.adminConfig();
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const namespaces = await core.listNamespace({ labelSelector: `chaos.kube-ecrlogin.test/run=${prefix}` });
  const names = [`${prefix}-system`, ...namespaces.items.map((ns) => ns.metadata?.name ?? '')];
  await Promise.all(names.map((name) => core.deleteNamespace({ name }).catch(() => undefined)));
  await admin
    .makeApiClient(k8s.RbacAuthorizationV1Api)
    .deleteClusterRoleBinding({ name: `${prefix}-controller` })
    .catch(() => undefined);
}
