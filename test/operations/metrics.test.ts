// /metrics of a real `kube-ecrlogin run` process, scraped and parsed: every named series is there with
// the right type and values that agree with the world (the Secret's own expiry, the AWS test server's
// call count, the apiserver's audit log), labels stay bounded, and no credential appears.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { decodeDockerConfig, eventsFor, namespaceEvents, readSecret } from '../support/objects.ts';
import {
  admin,
  createConfig,
  createInstall,
  createServedNamespaces,
  ecrHost,
  httpGet,
  parseMetrics,
  scrape,
  serviceAccount,
  spawnController,
  stopController,
  type ControllerProcess,
  type Install,
  type Scrape,
} from './support.ts';

const config = (minInterval: string): string => `refresh:
  minInterval: ${minInterval}
rules:
  - name: restricted-to-us
    namespaces:
      names: ["met-denied-*"]
    registries:
      - region: "us-*"
  - name: everyone
    namespaces:
      names: ["*"]
`;

/** Every series kube-ecrlogin exports, with its type. */
const series: Record<string, string> = {
  kube_ecrlogin_secret_expiry_timestamp_seconds: 'gauge',
  kube_ecrlogin_secret_refresh_failing: 'gauge',
  kube_ecrlogin_refresh_total: 'counter',
  kube_ecrlogin_aws_requests_total: 'counter',
  kube_ecrlogin_kubernetes_writes_total: 'counter',
  kube_ecrlogin_reconcile_duration_seconds: 'histogram',
  kube_ecrlogin_workqueue_depth: 'gauge',
  kube_ecrlogin_workqueue_scheduled: 'gauge',
  kube_ecrlogin_leader: 'gauge',
  kube_ecrlogin_policy_denials_total: 'counter',
  kube_ecrlogin_config_reloads_total: 'counter',
  kube_ecrlogin_config_last_reload_successful: 'gauge',
  kube_ecrlogin_managed_secrets: 'gauge',
};

/** The only label names kube-ecrlogin's own series may carry. */
const allowedLabels = new Set(['namespace', 'secret', 'outcome', 'api', 'result', 'verb', 'resource', 'rule', 'le']);

describe('/metrics', () => {
  let aws: AwsTestServer;
  let install: Install;
  let controller: ControllerProcess;
  let user: string;
  const ns = {
    good: uniqueName('met-good'),
    failing: uniqueName('met-failing'),
    denied: uniqueName('met-denied'),
    invalid: uniqueName('met-invalid'),
  };

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    aws.faults.set({ api: 'GetAuthorizationToken', region: 'eu-south-1', kind: 'accessDenied' });
    install = await createInstall('met');
    await createConfig(install, config('1s'));
    const account = await serviceAccount(install, 'controller');
    user = account.user;
    const hosts: Record<string, string> = {
      [ns.good]: ecrHost('us-east-1'),
      [ns.failing]: ecrHost('eu-south-1'),
      [ns.denied]: ecrHost('eu-west-1'),
      [ns.invalid]: 'docker.io',
    };
    await createServedNamespaces(install, Object.values(ns), (name) => ({ 'ecr-login/server': hosts[name] ?? '' }));
    controller = await spawnController({ install, identity: 'metrics-0', kubeconfig: account.kubeconfig, awsEndpoint: aws.endpoint, args: ['--leader-elect'] });
    await eventually('the four namespaces reconciled', async () => {
      await readSecret(ns.good, 'ecr-login');
      const reasons = async (name: string): Promise<string[]> => (await namespaceEvents(name)).map((e) => e.reason ?? '');
      assert.ok((await reasons(ns.failing)).includes('RefreshFailed'));
      assert.ok((await reasons(ns.denied)).includes('PolicyDenied'));
      assert.ok((await reasons(ns.invalid)).includes('InvalidAnnotation'));
    });
  });

  after(async () => {
    await stopController(controller);
    await aws.close();
  });

  it('serves the Prometheus text format with every named series, typed and documented', async () => {
    const answer = await httpGet(controller.metricsUrl);
    assert.equal(answer.status, 200);
    assert.match(answer.contentType, /^text\/plain; version=0\.0\.4/);
    const metrics = parseMetrics(answer.body);
    for (const [name, type] of Object.entries(series)) {
      assert.equal(metrics.types.get(name), type, `${name} is a ${type}`);
      assert.ok((metrics.help.get(name) ?? '').length > 10, `${name} has a help text`);
    }
    assert.ok(metrics.find('process_cpu_seconds_total').length === 1, 'with the process metrics');
    assert.ok(metrics.find('nodejs_eventloop_lag_seconds').length === 1, 'and the Node.js runtime metrics');
  });

  it("reports each managed Secret's token expiry as the Secret records it", async () => {
    const metrics = await scrape(controller.metricsUrl);
    const secret = await readSecret(ns.good, 'ecr-login');
    const expiresAt = Date.parse(secret.metadata?.annotations?.['ecr-login/expires-at'] ?? '');
    assert.equal(metrics.value('kube_ecrlogin_secret_expiry_timestamp_seconds', { namespace: ns.good, secret: 'ecr-login' }), expiresAt / 1000);
    const hoursLeft = (expiresAt - Date.now()) / 3_600_000;
    assert.ok(hoursLeft > 11 && hoursLeft <= 12, `a 12-hour token (${hoursLeft.toFixed(2)} h left)`);
    assert.deepEqual(
      metrics.find('kube_ecrlogin_secret_expiry_timestamp_seconds').map((s) => s.labels['namespace']),
      [ns.good],
      'only Secrets that exist have an expiry',
    );
    assert.equal(metrics.value('kube_ecrlogin_managed_secrets'), 1);
  });

  it('counts refresh outcomes, and flags the Secret that cannot be refreshed', async () => {
    const metrics = await scrape(controller.metricsUrl);
    assert.equal(metrics.value('kube_ecrlogin_refresh_total', { outcome: 'issued' }), 1, 'one Secret created');
    assert.ok(metrics.value('kube_ecrlogin_refresh_total', { outcome: 'failed' }) >= 1);
    assert.equal(metrics.value('kube_ecrlogin_secret_refresh_failing', { namespace: ns.failing, secret: 'ecr-login' }), 1);
    assert.equal(metrics.value('kube_ecrlogin_secret_refresh_failing', { namespace: ns.good, secret: 'ecr-login' }), 0);
    for (const sample of metrics.find('kube_ecrlogin_refresh_total')) {
      assert.ok(['issued', 'refreshed', 'unchanged', 'failed'].includes(sample.labels['outcome'] ?? ''), JSON.stringify(sample.labels));
    }
  });

  it('counts AWS calls by API and result, exactly as many as the AWS test server answered', async () => {
    // The failing namespace keeps retrying: compare between two of its calls.
    await eventually('metrics and the AWS test server agree', async () => {
      const metrics = await scrape(controller.metricsUrl);
      const calls = (region?: string): number => aws.count({ api: 'GetAuthorizationToken', ...(region !== undefined ? { region } : {}) });
      assert.equal(metrics.sum('kube_ecrlogin_aws_requests_total', { api: 'GetAuthorizationToken' }), calls());
      assert.equal(metrics.value('kube_ecrlogin_aws_requests_total', { api: 'GetAuthorizationToken', result: 'success' }), calls('us-east-1'));
      assert.equal(metrics.value('kube_ecrlogin_aws_requests_total', { api: 'GetAuthorizationToken', result: 'denied' }), calls('eu-south-1'));
      assert.ok(calls('eu-south-1') >= 1);
    });
  });

  it('counts Kubernetes writes by verb and resource, as many as the audit log shows', async () => {
    const plane = cluster();
    // Server-Side Apply is a patch in the audit log.
    const audited = (verb: string, resource: string): number => plane.writes({ user, resource }).filter((w) => w.verb === verb).length;
    const metrics = await eventually('metrics and audit log agree', async () => {
      const scraped = await scrape(controller.metricsUrl);
      const counted = (verb: string, resource: string): number => scraped.sum('kube_ecrlogin_kubernetes_writes_total', { verb, resource, result: 'success' });
      assert.equal(counted('create', 'secrets'), audited('create', 'secrets'));
      assert.equal(counted('apply', 'secrets') + counted('patch', 'secrets'), audited('patch', 'secrets'));
      assert.equal(counted('patch', 'serviceaccounts'), audited('patch', 'serviceaccounts'));
      assert.equal(counted('create', 'events'), audited('create', 'events'));
      return scraped;
    });
    assert.equal(metrics.value('kube_ecrlogin_kubernetes_writes_total', { verb: 'create', resource: 'secrets', result: 'success' }), 1);
    assert.equal(metrics.value('kube_ecrlogin_kubernetes_writes_total', { verb: 'patch', resource: 'serviceaccounts', result: 'success' }), 1);
    assert.ok(metrics.value('kube_ecrlogin_kubernetes_writes_total', { verb: 'create', resource: 'events', result: 'success' }) >= 3);
    await eventually('a Lease renewal counted', async () => {
      const scraped = await scrape(controller.metricsUrl);
      assert.ok(scraped.sum('kube_ecrlogin_kubernetes_writes_total', { verb: 'update', resource: 'leases', result: 'success' }) >= 1);
    });
  });

  it('has a reconcile duration histogram with consistent buckets', async () => {
    const metrics = await scrape(controller.metricsUrl);
    for (const result of ['success', 'error']) {
      const buckets = metrics.find('kube_ecrlogin_reconcile_duration_seconds_bucket', { result });
      assert.ok(buckets.length > 5, `${result}: buckets`);
      const counts = buckets.map((b) => b.value);
      assert.deepEqual(
        counts,
        [...counts].sort((a, b) => a - b),
        'cumulative',
      );
      const count = metrics.value('kube_ecrlogin_reconcile_duration_seconds_count', { result });
      assert.ok(count >= 1);
      assert.equal(buckets.find((b) => b.labels['le'] === '+Inf')?.value, count);
      const sum = metrics.value('kube_ecrlogin_reconcile_duration_seconds_sum', { result });
      assert.ok(sum > 0 && sum / count < 5, `mean ${sum / count} s`);
    }
  });

  it('reports queue depth, leader status and policy denials by rule', async () => {
    await eventually('an empty queue', async () => {
      const metrics = await scrape(controller.metricsUrl);
      assert.equal(metrics.value('kube_ecrlogin_workqueue_depth'), 0);
    });
    const metrics = await scrape(controller.metricsUrl);
    assert.ok(metrics.value('kube_ecrlogin_workqueue_scheduled') >= 1, 'refreshes and retries are scheduled');
    assert.equal(metrics.value('kube_ecrlogin_leader'), 1);
    assert.equal(metrics.value('kube_ecrlogin_policy_denials_total', { rule: 'restricted-to-us' }), 1);
    assert.equal(metrics.find('kube_ecrlogin_policy_denials_total').length, 1);
  });

  it('reports the config reload status: 0 while an invalid ConfigMap is ignored, 1 once a valid one loads', async () => {
    const { core } = admin();
    const replace = (text: string): Promise<unknown> =>
      core.replaceNamespacedConfigMap({
        namespace: install.namespace,
        name: 'kube-ecrlogin-config',
        body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': text } },
      });
    const before = await scrape(controller.metricsUrl);
    assert.equal(before.value('kube_ecrlogin_config_last_reload_successful'), 1);
    await replace(config('never'));
    const failed = await eventually('the failed reload counted', async () => {
      const metrics = await scrape(controller.metricsUrl);
      assert.equal(metrics.value('kube_ecrlogin_config_last_reload_successful'), 0);
      return metrics;
    });
    assert.equal(failed.value('kube_ecrlogin_config_reloads_total', { result: 'failure' }), 1);
    assert.ok((await eventsFor(install.namespace, 'ConfigMap', 'kube-ecrlogin-config')).some((e) => e.reason === 'ConfigInvalid'));
    await replace(config('2s'));
    const reloaded = await eventually('the good reload counted', async () => {
      const metrics = await scrape(controller.metricsUrl);
      assert.equal(metrics.value('kube_ecrlogin_config_last_reload_successful'), 1);
      return metrics;
    });
    assert.equal(reloaded.value('kube_ecrlogin_config_reloads_total', { result: 'success' }), 1);
  });

  it('keeps labels bounded (namespace and Secret names at most) and never exposes a credential', async () => {
    const answer = await httpGet(controller.metricsUrl);
    const metrics: Scrape = parseMetrics(answer.body);
    const own = metrics.samples.filter((sample) => sample.name.startsWith('kube_ecrlogin_'));
    assert.ok(own.length > 20);
    const namespaces = new Set(Object.values(ns));
    for (const sample of own) {
      for (const [label, value] of Object.entries(sample.labels)) {
        assert.ok(allowedLabels.has(label), `${sample.name} has label ${label}`);
        if (label === 'namespace') assert.ok(namespaces.has(value), `${sample.name}: namespace ${value} is one this controller serves`);
        assert.ok(value.length <= 253, `${sample.name}{${label}} is a name, not a payload`);
      }
    }
    const { password } = Object.values(decodeDockerConfig(await readSecret(ns.good, 'ecr-login')))[0] ?? { password: '' };
    assert.ok(password.length > 20);
    for (const secret of [
      password,
      Buffer.from(`AWS:${password}`).toString('base64'),
      controllerKeys.secretAccessKey,
      controllerKeys.accessKeyId,
      'arn:aws:',
    ]) {
      assert.ok(!answer.body.includes(secret), `the metrics do not contain ${secret.slice(0, 8)}...`);
    }
  });

  // Last: it takes the good namespace's grant away and deletes the failing namespace.
  it("drops a grant's labelled series when the grant goes: a renamed Secret, a removed annotation, a deleted namespace", async () => {
    const { core } = admin();
    // The per-grant series, labelled namespace and secret: every other labelled series is by outcome,
    // API, verb, resource, result or policy rule, not by grant.
    const perGrant = ['kube_ecrlogin_secret_expiry_timestamp_seconds', 'kube_ecrlogin_secret_refresh_failing'];
    const of = (metrics: Scrape, namespace: string): string[] =>
      perGrant.flatMap((name) => metrics.find(name, { namespace }).map((s) => `${name}{${s.labels['secret'] ?? ''}}=${s.value}`)).sort();
    const before = await scrape(controller.metricsUrl);
    const expiresAt = before.value('kube_ecrlogin_secret_expiry_timestamp_seconds', { namespace: ns.good, secret: 'ecr-login' });
    assert.deepEqual(of(before, ns.good), [
      `kube_ecrlogin_secret_expiry_timestamp_seconds{ecr-login}=${expiresAt}`,
      'kube_ecrlogin_secret_refresh_failing{ecr-login}=0',
    ]);
    assert.deepEqual(of(before, ns.failing), ['kube_ecrlogin_secret_refresh_failing{ecr-login}=1']);

    // The Secret's name changes: the old name's series go, the new name's come.
    await core.patchNamespace(
      { name: ns.good, body: { metadata: { annotations: { 'ecr-login/secret-name': 'renamed' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const renamed = await eventually('the series of the renamed Secret only', async () => {
      const secret = await readSecret(ns.good, 'renamed');
      const metrics = await scrape(controller.metricsUrl);
      const at = Date.parse(secret.metadata?.annotations?.['ecr-login/expires-at'] ?? '') / 1000;
      assert.deepEqual(of(metrics, ns.good), [
        `kube_ecrlogin_secret_expiry_timestamp_seconds{renamed}=${at}`,
        'kube_ecrlogin_secret_refresh_failing{renamed}=0',
      ]);
      return metrics;
    });
    assert.deepEqual(of(renamed, ns.failing), ['kube_ecrlogin_secret_refresh_failing{ecr-login}=1'], 'another namespace keeps its series');

    // The annotation goes: nothing asks for a Secret in that namespace, and it has no series.
    await core.patchNamespace(
      { name: ns.good, body: [{ op: 'remove', path: '/metadata/annotations/ecr-login~1server' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await eventually('no series for the namespace without the annotation', async () => {
      assert.deepEqual(of(await scrape(controller.metricsUrl), ns.good), []);
    });

    // The failing namespace is deleted: its alert clears.
    await core.deleteNamespace({ name: ns.failing });
    await eventually(
      'no series for the deleted namespace',
      async () => {
        assert.deepEqual(of(await scrape(controller.metricsUrl), ns.failing), []);
      },
      { timeoutMs: 60_000 },
    );
    const after = await scrape(controller.metricsUrl);
    assert.deepEqual(
      perGrant.flatMap((name) => after.find(name)),
      [],
      'no per-grant series left at all',
    );
  });
});
