// The admission webhook's cost (part of `make bench`): the latency it adds to a Pod creation, in a
// namespace that asks for credentials and in one that does not, and the controller's CPU per 1,000
// admissions. On a private control plane; the controller runs as the image runs it, with --webhook,
// and the API server reaches it on loopback.
//
// Phases, each a run of Pod creations one after another (as a ReplicaSet controller makes them):
//   warm-up; baseline without the webhook configuration (opted-in and plain namespace); the same with
//   it. Added latency = with - without, per quantile.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { shareConnections } from '../../src/kube/connections.ts';
import type { SpawnedServer } from '../aws/control-client.ts';
import { freePorts, startControlPlane } from '../cluster/controlplane.ts';
import { controllerKeys } from '../support/controller.ts';
import { processCost } from './proc.ts';
import { percentile } from './report.ts';

export interface WebhookBenchSpec {
  readonly dir: string;
  readonly controllerEntry: string;
  readonly controllerNodeArgs: readonly string[];
  /** Environment for the controller beyond the test's (the image's NODE_COMPILE_CACHE). */
  readonly controllerEnv: Readonly<Record<string, string>>;
  readonly aws: SpawnedServer;
  /** Pod creations per phase and namespace. */
  readonly pods: number;
  readonly log: (message: string) => void;
}

export interface Quantiles {
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface WebhookBenchResult {
  readonly pods: number;
  readonly without: { readonly optedIn: Quantiles; readonly plain: Quantiles };
  readonly with: { readonly optedIn: Quantiles; readonly plain: Quantiles };
  /** with - without. */
  readonly added: { readonly optedIn: Quantiles; readonly plain: Quantiles };
  /** The controller's CPU seconds per 1,000 admissions (opted-in Pods, each mutated). */
  readonly cpuSecondsPer1000: number;
  /** Pods created with the webhook that did not get the Secret (must be 0). */
  readonly missed: number;
}

const controllerNamespace = 'kube-ecrlogin';
const server = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;

export async function runWebhookBench(spec: WebhookBenchSpec): Promise<WebhookBenchResult> {
  const { log } = spec;
  mkdirSync(spec.dir, { recursive: true });
  log(`webhook: starting a private control plane in ${join(spec.dir, 'cluster')}`);
  const plane = await startControlPlane({ dir: join(spec.dir, 'cluster') });
  let controller: ChildProcess | undefined;
  try {
    const admin = shareConnections(plane.adminConfig());
    const core = admin.makeApiClient(k8s.CoreV1Api);
    const admission = admin.makeApiClient(k8s.AdmissionregistrationV1Api);
    await core.createNamespace({ body: { metadata: { name: controllerNamespace } } });
    const optedIn = 'wh-opted';
    const plain = 'wh-plain';
    await core.createNamespace({ body: { metadata: { name: optedIn, annotations: { 'ecr-login/server': server } } } });
    await core.createNamespace({ body: { metadata: { name: plain } } });
    for (const namespace of [optedIn, plain]) await waitFor(`${namespace}/default`, () => core.readNamespacedServiceAccount({ namespace, name: 'default' }));

    const [port = 0] = await freePorts(1);
    const configuration: k8s.V1MutatingWebhookConfiguration = {
      metadata: { name: 'kube-ecrlogin' },
      webhooks: [
        {
          name: 'pull-secrets.ecr-login.kube-ecrlogin.io',
          admissionReviewVersions: ['v1'],
          clientConfig: { url: `https://127.0.0.1:${port}/mutate-pods` },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }],
          failurePolicy: 'Ignore',
          sideEffects: 'None',
          timeoutSeconds: 3,
          reinvocationPolicy: 'IfNeeded',
          namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', controllerNamespace] }] },
        },
      ],
    };
    await admission.createMutatingWebhookConfiguration({ body: configuration });
    const kubeconfig = plane.writeKubeconfig(plane.adminConfig(), join(spec.dir, 'controller.kubeconfig'));
    const logFile = openSync(join(spec.dir, 'controller.log'), 'w');
    controller = spawn(
      process.execPath,
      [
        ...spec.controllerNodeArgs,
        spec.controllerEntry,
        'run',
        '--namespace',
        controllerNamespace,
        '--metrics-bind-address',
        '0',
        '--health-probe-bind-address',
        '0',
        '--webhook',
        '--webhook-bind-address',
        `127.0.0.1:${port}`,
        '--webhook-cert-hosts',
        '127.0.0.1',
      ],
      {
        env: {
          ...process.env,
          ...spec.controllerEnv,
          KUBECONFIG: kubeconfig,
          AWS_ENDPOINT_URL: spec.aws.endpoint,
          AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
          AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
          AWS_REGION: 'us-east-1',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        stdio: ['ignore', logFile, logFile],
      },
    );
    closeSync(logFile);
    const pid = controller.pid;

    const create = async (namespace: string, imagePullSecrets?: k8s.V1LocalObjectReference[]): Promise<{ ms: number; pod: k8s.V1Pod }> => {
      const started = process.hrtime.bigint();
      const pod = await core.createNamespacedPod({
        namespace,
        body: {
          metadata: { generateName: 'p-' },
          spec: { containers: [{ name: 'c', image: `${server}/app:1` }], ...(imagePullSecrets !== undefined ? { imagePullSecrets } : {}) },
        },
      });
      return { ms: Number(process.hrtime.bigint() - started) / 1e6, pod };
    };
    // Pods that name a Secret of their own, so that what they end with is the webhook's doing.
    const own = [{ name: 'mine' }];
    const phase = async (namespace: string, count: number): Promise<{ latencies: number[]; missed: number }> => {
      const latencies: number[] = [];
      let missed = 0;
      for (let i = 0; i < count; i++) {
        const { ms, pod } = await create(namespace, own);
        latencies.push(ms);
        if (namespace === optedIn && !(pod.spec?.imagePullSecrets ?? []).some((ref) => ref.name === 'ecr-login')) missed++;
      }
      // Pods pile up in etcd (no scheduler runs): remove them, so that each phase starts alike.
      await core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 });
      return { latencies, missed };
    };
    const quantiles = (latencies: readonly number[]): Quantiles => ({ p50Ms: round(percentile(latencies, 0.5)), p99Ms: round(percentile(latencies, 0.99)) });

    log('webhook: waiting for the controller to serve with a trusted certificate');
    await waitFor(
      'the webhook at work',
      async () => {
        const { pod } = await create(optedIn, own);
        if (!(pod.spec?.imagePullSecrets ?? []).some((ref) => ref.name === 'ecr-login')) throw new Error('not mutated yet');
      },
      90_000,
    );

    log(`webhook: warm-up, then ${spec.pods} Pod creations per phase and namespace`);
    await phase(optedIn, Math.min(200, spec.pods));
    await phase(plain, Math.min(200, spec.pods));
    const cpuBefore = pid === undefined ? 0 : processCost(pid).cpuSeconds;
    const withOpted = await phase(optedIn, spec.pods);
    const cpuAfter = pid === undefined ? 0 : processCost(pid).cpuSeconds;
    const withPlain = await phase(plain, spec.pods);

    // Without: the same, with the webhook configuration gone (the API server stops calling at once).
    await admission.deleteMutatingWebhookConfiguration({ name: 'kube-ecrlogin' });
    await sleep(2_000);
    const withoutOpted = await phase(optedIn, spec.pods);
    const withoutPlain = await phase(plain, spec.pods);

    const result: WebhookBenchResult = {
      pods: spec.pods,
      with: { optedIn: quantiles(withOpted.latencies), plain: quantiles(withPlain.latencies) },
      without: { optedIn: quantiles(withoutOpted.latencies), plain: quantiles(withoutPlain.latencies) },
      added: {
        optedIn: subtract(quantiles(withOpted.latencies), quantiles(withoutOpted.latencies)),
        plain: subtract(quantiles(withPlain.latencies), quantiles(withoutPlain.latencies)),
      },
      cpuSecondsPer1000: round(((cpuAfter - cpuBefore) / spec.pods) * 1000, 3),
      missed: withOpted.missed,
    };
    writeFileSync(join(spec.dir, 'webhook.json'), JSON.stringify(result, null, 2) + '\n');
    return result;
  } finally {
    controller?.kill('SIGTERM');
    if (controller !== undefined && controller.exitCode === null) await new Promise((resolve) => controller?.once('exit', resolve));
    await plane.stop();
  }
}

function subtract(a: Quantiles, b: Quantiles): Quantiles {
  return { p50Ms: round(a.p50Ms - b.p50Ms), p99Ms: round(a.p99Ms - b.p99Ms) };
}

async function waitFor<T>(what: string, check: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    await sleep(250);
  }
}

/** The report's section: a table, and the target. */
export function renderWebhookMarkdown(result: WebhookBenchResult): string {
  const row = (label: string, q: { optedIn: Quantiles; plain: Quantiles }): string =>
    `| ${label} | ${q.optedIn.p50Ms} | ${q.optedIn.p99Ms} | ${q.plain.p50Ms} | ${q.plain.p99Ms} |`;
  return [
    `### Admission webhook: ${result.pods} Pod creations per phase`,
    '',
    '| Pod create latency, ms | opted-in p50 | opted-in p99 | plain p50 | plain p99 |',
    '| --- | --- | --- | --- | --- |',
    row('without the webhook', result.without),
    row('with the webhook', result.with),
    row('**added**', result.added),
    '',
    `Controller CPU per 1,000 admissions: ${result.cpuSecondsPer1000} s. Pods admitted without the Secret: ${result.missed}. ` +
      `Target: added p99 under 10 ms: ${result.added.optedIn.p99Ms < 10 && result.added.plain.p99Ms < 10 ? 'met' : 'MISSED'}.`,
    '',
  ].join('\n');
}
