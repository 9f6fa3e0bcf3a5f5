// Runs the real controller in this test process against the shared control plane and an AWS test
// endpoint. Each harness serves only namespaces carrying its own label, so test files running at
// the same time never reconcile each other's namespaces.

import { after, before } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { start as startAws, type AwsTestServer, type StartOptions } from '../aws/server.ts';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { run, type Running } from '../../src/app.ts';
import { parseOptions, type Options } from '../../src/config/options.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { cluster } from './cluster.ts';
import { eventually } from './eventually.ts';

/** The controller's own AWS identity in tests: static keys, as the original kube-ecrlogin used. */
export const controllerKeys = {
  accessKeyId: 'AKIACONTROLLER000001',
  secretAccessKey: 'controller-secret-key-for-tests-only',
  arn: 'arn:aws:iam::111122223333:user/kube-ecrlogin',
};

/** Points the AWS SDK in this process at a test endpoint, with the controller's static keys. */
export function useAwsEndpoint(endpoint: string): void {
  process.env['AWS_ENDPOINT_URL'] = endpoint;
  process.env['AWS_ACCESS_KEY_ID'] = controllerKeys.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = controllerKeys.secretAccessKey;
  process.env['AWS_REGION'] = 'us-east-1';
  delete process.env['AWS_SESSION_TOKEN'];
  delete process.env['AWS_PROFILE'];
  process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
}

export interface TestController {
  readonly running: Running;
  readonly options: Options;
  /** The controller's own namespace (ConfigMap, Lease, Events). */
  readonly namespace: string;
  /** The label every namespace it serves must carry. */
  readonly label: { readonly key: string; readonly value: string };
  readonly logs: string[];
  readonly metrics: Metrics;
  /** The Kubernetes user the controller acts as (for counting its writes in the audit log). */
  readonly user: string;
  stop(): Promise<void>;
}

export interface StartTestController {
  /** Extra flags, e.g. ['--backoff-base', '100ms']. */
  readonly args?: readonly string[];
  /** config.yaml for the policy ConfigMap (none: no ConfigMap). */
  readonly config?: string;
  /**
   * The identity the controller talks to Kubernetes as. Default: a ServiceAccount `controller` in its
   * namespace bound to cluster-admin, so that its writes can be told apart in the audit log.
   */
  readonly kubeConfig?: k8s.KubeConfig;
  readonly user?: string;
  /** Reuse a namespace and label (to restart a controller over the same objects). */
  readonly reuse?: { namespace: string; label: { key: string; value: string } };
  /** How old a Namespace must be before a missing ServiceAccount it names is reported, ms (default 30 s). */
  readonly pendingGraceMs?: number;
  /** The deadline of one reconcile, ms (default: as in production, minutes). */
  readonly reconcileTimeoutMs?: number;
  /** Runs after the controller's namespace and ServiceAccount exist, before it starts. */
  readonly prepare?: (namespace: string) => Promise<void>;
}

export async function startTestController(options: StartTestController = {}): Promise<TestController> {
  const plane = cluster();
  const admin = plane.adminConfig();
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const id = randomBytes(3).toString('hex');
  const label = options.reuse?.label ?? { key: 'kube-ecrlogin.test/run', value: id };
  const namespace = options.reuse?.namespace ?? `ecrlogin-system-${id}`;
  if (options.reuse === undefined) {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'controller' } } });
    await admin.makeApiClient(k8s.RbacAuthorizationV1Api).createClusterRoleBinding({
      body: {
        metadata: { name: `${namespace}-controller` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: 'controller', namespace }],
      },
    });
  }
  await options.prepare?.(namespace);
  const kubeConfig = options.kubeConfig ?? (await plane.serviceAccountConfig(namespace, 'controller'));
  const user = options.user ?? `system:serviceaccount:${namespace}:controller`;
  if (options.config !== undefined) {
    await core
      .createNamespacedConfigMap({ namespace, body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': options.config } } })
      .catch(async (error: unknown) => {
        if (!(error instanceof k8s.ApiException) || error.code !== 409) throw error;
        await core.replaceNamespacedConfigMap({
          namespace,
          name: 'kube-ecrlogin-config',
          body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': options.config ?? '' } },
        });
      });
  }
  const parsed = parseOptions(
    [
      'run',
      '--namespace',
      namespace,
      '--namespace-selector',
      `${label.key}=${label.value}`,
      '--metrics-bind-address',
      '0',
      '--health-probe-bind-address',
      '0',
      '--backoff-base',
      '200ms',
      '--backoff-max',
      '5s',
      '--aws-retries',
      '1',
      '--shutdown-timeout',
      '10s',
      '--log-level',
      'debug',
      ...(options.args ?? []),
    ],
    { env: {}, hostname: `test-${id}` },
  );
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  const running = await run(parsed, {
    kubeConfig,
    log: createLogger({ level: 'debug', stream }),
    metrics,
    awsRetryMinDelayMs: 20,
    ...(options.pendingGraceMs !== undefined ? { pendingGraceMs: options.pendingGraceMs } : {}),
    ...(options.reconcileTimeoutMs !== undefined ? { reconcileTimeoutMs: options.reconcileTimeoutMs } : {}),
  });
  // The controller asks STS who it is beside its cache sync, not before it: wait for the answer (or
  // the warning that there is none), so that tests counting AWS calls start from a quiet server.
  await eventually('the controller to log its AWS identity', () => {
    if (!logs.some((line) => line.includes('"AWS identity"') || line.includes('Could not determine the AWS identity'))) {
      throw new Error('no AWS identity line yet');
    }
    return Promise.resolve();
  });
  return {
    running,
    options: parsed,
    namespace,
    label,
    logs,
    metrics,
    user,
    stop: async () => {
      await running.stop();
    },
  };
}

/** Creates a namespace served by the controller, with annotations and labels. */
export async function createServedNamespace(
  controller: TestController,
  name: string,
  annotations: Record<string, string> = {},
  labels: Record<string, string> = {},
): Promise<k8s.V1Namespace> {
  const core = cluster().adminConfig().makeApiClient(k8s.CoreV1Api);
  return core.createNamespace({
    body: { metadata: { name, annotations, labels: { ...labels, [controller.label.key]: controller.label.value } } },
  });
}

/** The AWS test server and a controller using it, started before a suite's tests and stopped after. */
export interface AwsAndController {
  readonly aws: AwsTestServer;
  readonly controller: TestController;
}

/**
 * Registers before/after hooks in the calling describe(): starts the AWS test server (with the
 * controller's static keys) and a test controller pointed at it.
 */
export function withAwsAndController(options: StartTestController & { readonly aws?: StartOptions } = {}): AwsAndController {
  let aws: AwsTestServer | undefined;
  let controller: TestController | undefined;
  before(async () => {
    aws = await startAws(options.aws);
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    controller = await startTestController(options);
  });
  after(async () => {
    await controller?.stop();
    await aws?.close();
  });
  return {
    get aws(): AwsTestServer {
      if (aws === undefined) throw new Error('the AWS test server starts in before()');
      return aws;
    },
    get controller(): TestController {
      if (controller === undefined) throw new Error('the controller starts in before()');
      return controller;
    },
  };
}
