// Least privilege, proven: the ClusterRole and Role are pinned rule by rule, and the real controller,
// logged in as the manifests' own ServiceAccount with nothing but the manifests' RBAC, does its whole
// job (policy ConfigMap, Lease, Secrets, imagePullSecrets, Events) while the API server refuses it
// TokenRequest until the keyless-tenants component grants it. Then the seed-compatible overlay as a
// drop-in for the original: its CronJob's command, run as its ServiceAccount, writes `regcred`.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { once } from '../../src/app.ts';
import { parseOptions } from '../../src/config/options.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import * as permissions from '../../src/kube/permissions.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { decodeDockerConfig, namespaceEvents, pullSecretNames, readSecret } from '../support/objects.ts';
import {
  apply,
  cleanUp,
  containerOf,
  core,
  expandArgs,
  find,
  installController,
  isolateClusterScoped,
  kustomize,
  kustomizeRoot,
  inNamespace,
  Scratch,
  type InstalledController,
} from './support.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';

/** The rules kube-ecrlogin needs (src/controller/controller.ts, src/kube/api.ts, src/kube/events.ts). */
const clusterRules = [
  { apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['list', 'watch', 'patch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];
/** In its own namespace (src/config/source.ts, src/status.ts, src/leader.ts). */
const namespaceRules = [
  { apiGroups: [''], resources: ['configmaps'], resourceNames: ['kube-ecrlogin-config'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['configmaps'], resourceNames: ['kube-ecrlogin-status'], verbs: ['create', 'patch', 'get'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['kube-ecrlogin'], verbs: ['get', 'update'] },
];
/** Only with the admission-policy component: its parameter ConfigMap (src/admission/publisher.ts). */
const admissionParamsRules = [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['kube-ecrlogin-admission'], verbs: ['create', 'patch'] }];
/** Only with the admission-webhook component: its TLS Secret and caBundle (src/admission/keeper.ts). */
const webhookRules = [
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
  { apiGroups: [''], resources: ['secrets'], resourceNames: ['kube-ecrlogin-webhook-tls'], verbs: ['get', 'update'] },
];
const webhookClusterRules = [
  { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['kube-ecrlogin'], verbs: ['get', 'patch'] },
];
/** Only with the keyless-tenants component (src/kube/api.ts requestToken). */
const keylessRules = [{ apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] }];

describe('RBAC', () => {
  let scratch: Scratch;
  let aws: AwsTestServer;
  const created: { kind: string; name: string }[] = [];

  before(async () => {
    scratch = new Scratch();
    aws = await start();
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
  });

  after(async () => {
    await aws.close();
    scratch.remove();
    await cleanUp(created);
  });

  it('pins the rules here and in src/kube/permissions.ts alike: widening them is a visible decision', () => {
    assert.deepEqual(permissions.clusterRules, clusterRules);
    assert.deepEqual(permissions.namespaceRules, namespaceRules);
    assert.deepEqual(permissions.keylessRules, keylessRules);
  });

  it('grants exactly the pinned rules', async () => {
    const base = await kustomize(join(kustomizeRoot, 'base'));
    assert.deepEqual(find(base, 'ClusterRole', 'kube-ecrlogin')['rules'], clusterRules);
    assert.deepEqual(find(base, 'Role', 'kube-ecrlogin')['rules'], namespaceRules);
    const keyless = await kustomize(scratch.kustomization('keyless', { resources: ['kustomize/base'], components: ['kustomize/components/keyless-tenants'] }));
    assert.deepEqual(find(keyless, 'ClusterRole', 'kube-ecrlogin-keyless-tenants')['rules'], keylessRules);
    const admission = await kustomize(
      scratch.kustomization('admission', { resources: ['kustomize/base'], components: ['kustomize/components/admission-policy'] }),
    );
    assert.deepEqual(find(admission, 'Role', 'kube-ecrlogin-admission-params')['rules'], admissionParamsRules);
    assert.deepEqual(permissions.admissionParamsRules('kube-ecrlogin-admission'), admissionParamsRules);
    const webhook = await kustomize(
      scratch.kustomization('webhook', { resources: ['kustomize/base'], components: ['kustomize/components/admission-webhook'] }),
    );
    assert.deepEqual(find(webhook, 'Role', 'kube-ecrlogin-webhook')['rules'], webhookRules);
    assert.deepEqual(find(webhook, 'ClusterRole', 'kube-ecrlogin-webhook')['rules'], webhookClusterRules);
    assert.deepEqual(permissions.webhookRules('kube-ecrlogin-webhook-tls'), webhookRules);
    assert.deepEqual(permissions.webhookClusterRules('kube-ecrlogin'), webhookClusterRules);
    const roles = (objects: readonly { kind: string }[]): number => objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').length;
    assert.equal(roles(base), 2, 'no other role in the base');
    for (const overlay of ['default', 'seed-compatible']) {
      const objects = await kustomize(join(kustomizeRoot, 'overlays', overlay));
      assert.deepEqual(find(objects, 'ClusterRole', 'kube-ecrlogin')['rules'], clusterRules, overlay);
      assert.deepEqual(find(objects, 'Role', 'kube-ecrlogin')['rules'], namespaceRules, overlay);
      assert.equal(roles(objects), 2, `no other role in ${overlay}`);
    }
  });

  describe('the controller as the base ServiceAccount', () => {
    let installed: InstalledController;
    let controller: TestController;
    const since = new Date();

    before(async () => {
      const suffix = uniqueName('lp');
      installed = await installController(scratch, { namespace: suffix, suffix });
      created.push(...installed.created);
      controller = await startTestController({
        kubeConfig: installed.kubeConfig,
        args: ['--namespace', installed.namespace, '--leader-elect', '--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '1s'],
      });
      created.push({ kind: 'Namespace', name: controller.namespace });
    });

    after(async () => {
      await controller.stop();
    });

    it('reads its policy ConfigMap through the Role limited to that name', () => {
      const loaded = controller.logs.find((line) => line.includes('Loaded config'));
      assert.ok(loaded, 'the ConfigMap was listed and read');
      assert.match(loaded, new RegExp(installed.namespace));
    });

    it('takes and renews the Lease the Role names', async () => {
      const coordination = cluster().adminConfig().makeApiClient(k8s.CoordinationV1Api);
      const first = await eventually('the Lease', async () => {
        const lease = await coordination.readNamespacedLease({ namespace: installed.namespace, name: 'kube-ecrlogin' });
        assert.equal(lease.spec?.holderIdentity, controller.options.instance);
        return lease;
      });
      await eventually('a renewal', async () => {
        const lease = await coordination.readNamespacedLease({ namespace: installed.namespace, name: 'kube-ecrlogin' });
        assert.notEqual(lease.metadata?.resourceVersion, first.metadata?.resourceVersion);
      });
      const writes = cluster().writes({ user: installed.user, resource: 'leases', namespace: installed.namespace });
      assert.deepEqual([...new Set(writes.map((w) => w.verb))].sort(), ['create', 'update']);
    });

    it('publishes its status in the ConfigMap the Role names, which the doctor may read as it', async () => {
      const read = (): Promise<k8s.V1ConfigMap> =>
        installed.kubeConfig.makeApiClient(k8s.CoreV1Api).readNamespacedConfigMap({ namespace: installed.namespace, name: 'kube-ecrlogin-status' });
      const status = await eventually('the status ConfigMap', read);
      assert.match(status.data?.['status.json'] ?? '', new RegExp(`"instance": "${controller.options.instance}"`));
      const writes = cluster().writes({ user: installed.user, resource: 'configmaps', namespace: installed.namespace });
      assert.deepEqual([...new Set(writes.map((w) => `${w.verb} ${w.objectRef?.name ?? ''}`))], ['patch kube-ecrlogin-status']);
    });

    it('serves an annotated namespace: Secret, imagePullSecrets entry and Events', async () => {
      const ns = uniqueName('lp-tenant');
      created.push({ kind: 'Namespace', name: ns });
      await createServedNamespace(controller, ns, { 'ecr-login/server': east });
      const secret = await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
      assert.deepEqual(Object.keys(decodeDockerConfig(secret)), [east]);
      await eventually('the imagePullSecrets entry', async () => {
        const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'default' });
        assert.deepEqual(pullSecretNames(sa), ['ecr-login']);
      });
      await eventually('the Namespace Event in default', async () => {
        const events = await namespaceEvents(ns);
        assert.ok(
          events.some((e) => e.reason === 'CredentialsIssued'),
          events.map((e) => e.reason).join(),
        );
      });
      const writes = cluster().writes({ user: installed.user, namespace: ns });
      assert.ok(writes.some((w) => w.objectRef?.resource === 'secrets' && w.verb === 'create'));
      assert.ok(writes.some((w) => w.objectRef?.resource === 'serviceaccounts' && w.verb === 'patch'));
    });

    it('is refused TokenRequest without the keyless-tenants component', async () => {
      const ns = uniqueName('lp-keyless');
      created.push({ kind: 'Namespace', name: ns });
      await createServedNamespace(controller, ns, {
        'ecr-login/server': east,
        'ecr-login/identity': 'service-account',
        'ecr-login/role-arn': 'arn:aws:iam::111122223333:role/tenant-pull',
      });
      await eventually('a refused TokenRequest', () => {
        const refused = cluster()
          .auditEvents({ user: installed.user, namespace: ns, resource: 'serviceaccounts', verbs: ['create'], succeeded: false })
          .filter((e) => e.objectRef?.subresource === 'token');
        assert.equal(refused[0]?.responseStatus?.code, 403);
        return Promise.resolve();
      });
      await eventually('the RefreshFailed Event', async () => {
        const events = await namespaceEvents(ns);
        const failed = events.find((e) => e.reason === 'RefreshFailed');
        assert.match(failed?.message ?? '', /TokenRequest|token/i);
        assert.match(failed?.message ?? '', /403|forbidden/i);
      });
    });

    it('is granted TokenRequest by the keyless-tenants component', async () => {
      const suffix = installed.namespace;
      const rendered = await kustomize(inNamespace(scratch, 'keyless-grant', installed.namespace, 'base', ['components/keyless-tenants']));
      const grant = isolateClusterScoped(rendered, suffix).filter((o) => o.metadata.name.startsWith('kube-ecrlogin-keyless-tenants'));
      assert.deepEqual(grant.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding']);
      await apply(grant);
      created.push(...grant.map((o) => ({ kind: o.kind, name: o.metadata.name })));
      const ns = uniqueName('lp-keyless-ok');
      created.push({ kind: 'Namespace', name: ns });
      await createServedNamespace(controller, ns, {
        'ecr-login/server': east,
        'ecr-login/identity': 'service-account',
        'ecr-login/role-arn': 'arn:aws:iam::111122223333:role/tenant-pull',
      });
      await eventually('a TokenRequest that succeeds', () => {
        const minted = cluster()
          .auditEvents({ user: installed.user, namespace: ns, resource: 'serviceaccounts', verbs: ['create'] })
          .filter((e) => e.objectRef?.subresource === 'token');
        assert.ok(minted.length > 0);
        return Promise.resolve();
      });
    });

    it('was refused nothing else it tried to write', () => {
      const refused = cluster()
        .auditEvents({ user: installed.user, since, succeeded: false, verbs: ['create', 'update', 'patch', 'delete'] })
        .filter((e) => e.responseStatus?.code === 403)
        .map((e) => `${e.verb} ${e.objectRef?.resource ?? ''}/${e.objectRef?.subresource ?? ''}`);
      assert.ok(refused.length > 0, 'the TokenRequests above were refused');
      assert.deepEqual([...new Set(refused)], ['create serviceaccounts/token']);
    });
  });

  describe('seed-compatible, as a drop-in for the original', () => {
    let installed: InstalledController;
    const label = { key: 'kube-ecrlogin.test/run', value: uniqueName('seed') };
    let env: Record<string, string>;
    let args: string[];
    const logs: string[] = [];

    /** What the CronJob's Pod does: `kube-ecrlogin once` with its args and environment, as its ServiceAccount. */
    const runOnce = () =>
      once(parseOptions([...args, '--namespace-selector', `${label.key}=${label.value}`, '--aws-retries', '1'], { env, hostname: 'job-pod' }), {
        kubeConfig: installed.kubeConfig,
        log: createLogger({
          level: 'debug',
          stream: new Writable({
            write(chunk: Buffer, _encoding, done) {
              logs.push(chunk.toString());
              done();
            },
          }),
        }),
        metrics: new Metrics({ defaultMetrics: false }),
        awsRetryMinDelayMs: 20,
      });

    before(async () => {
      const namespace = label.value;
      installed = await installController(scratch, {
        namespace,
        suffix: namespace,
        source: 'overlays/seed-compatible',
        labels: { [label.key]: label.value },
        extraKinds: ['CronJob'],
      });
      created.push(...installed.created);
      // The original's Secret, with the original's keys.
      await core().createNamespacedSecret({
        namespace,
        body: {
          metadata: { name: 'kube-ecrlogin-aws' },
          stringData: {
            AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
            AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
            AWS_DEFAULT_REGION: 'us-east-1',
            AWS_ECR_SERVER: east,
          },
        },
      });
      // The CronJob as the API server stored it, and its Pod's environment as the kubelet builds it.
      const cronJob = await cluster().adminConfig().makeApiClient(k8s.BatchV1Api).readNamespacedCronJob({ namespace, name: 'kube-ecrlogin' });
      const container = cronJob.spec?.jobTemplate.spec?.template.spec?.containers[0];
      assert.ok(container);
      assert.equal(cronJob.spec?.schedule, '0 */4 * * *');
      assert.equal(container.envFrom?.[0]?.secretRef?.name, 'kube-ecrlogin-aws');
      const secret = await core().readNamespacedSecret({ namespace, name: 'kube-ecrlogin-aws' });
      env = {
        ...Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')])),
        POD_NAMESPACE: namespace,
        POD_NAME: 'kube-ecrlogin-29000000-abcde',
      };
      args = expandArgs(container.args ?? [], env);
      assert.deepEqual(containerOf(find(installed.objects, 'CronJob')).args, container.args);
    });

    const dockerRegistrySecret = (auths: Record<string, { username: string; password: string }>): k8s.V1Secret => ({
      metadata: { name: 'regcred' },
      type: 'kubernetes.io/dockerconfigjson',
      data: {
        '.dockerconfigjson': Buffer.from(
          JSON.stringify({
            auths: Object.fromEntries(
              Object.entries(auths).map(([host, login]) => [host, { ...login, auth: Buffer.from(`${login.username}:${login.password}`).toString('base64') }]),
            ),
          }),
        ).toString('base64'),
      },
    });

    it("leaves a regcred that is not the original's alone (another registry), and fails the run", async () => {
      const namespace = installed.namespace;
      const theirs = await core().createNamespacedSecret({
        namespace,
        body: dockerRegistrySecret({ 'https://index.docker.io/v1/': { username: 'someone', password: 'hub-token' } }),
      });
      const summary = await runOnce();
      assert.deepEqual(
        summary.failed.map((f) => f.namespace),
        [namespace],
      );
      const after = await readSecret(namespace, 'regcred');
      assert.equal(after.metadata?.resourceVersion, theirs.metadata?.resourceVersion, 'untouched');
      await core().deleteNamespacedSecret({ namespace, name: 'regcred' });
    });

    it("adopts the original's regcred in place: same object, new token, never deleted", async () => {
      const namespace = installed.namespace;
      // What the original's `kubectl create secret docker-registry regcred --docker-server=$AWS_ECR_SERVER` made.
      const before = await core().createNamespacedSecret({
        namespace,
        body: dockerRegistrySecret({ [east]: { username: 'AWS', password: 'old-password' } }),
      });
      const summary = await runOnce();
      assert.deepEqual(summary.failed, []);
      const secret = await readSecret(namespace, 'regcred');
      assert.equal(secret.metadata?.uid, before.metadata?.uid, 'the same Secret');
      assert.equal(secret.metadata?.labels?.['app.kubernetes.io/managed-by'], 'kube-ecrlogin', 'managed from now on');
      assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
      const auths = decodeDockerConfig(secret);
      assert.deepEqual(Object.keys(auths), [east]);
      assert.notEqual(auths[east]?.password, 'old-password');
      const deletes = cluster()
        .writes({ user: installed.user, namespace, resource: 'secrets' })
        .filter((w) => w.verb === 'delete');
      assert.deepEqual(deletes, [], 'no window without credentials');
    });

    it('writes nothing on a second run while the token is fresh', async () => {
      const summary = await runOnce();
      assert.deepEqual(summary.failed, []);
      assert.equal(summary.writes, 0);
    });
  });
});
