// A Secret's life: quiet in steady state, refreshed in place near expiry, resumed without rewrites
// after a restart (the Secrets a start-up creates announced in one Event), and cleaned up (only what
// we added) when the annotation goes.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { core, decodeDockerConfig, eventsFor, namespaceEvents, pullSecretNames, readSecret, secretAbsent } from '../support/objects.ts';

/** Short-lived tokens and a 1 s floor between refreshes, so refreshes happen within a test. */
const fastRefresh = 'refresh:\n  margin: 50%\n  jitter: 10%\n  minInterval: 1s\n';
const host = (region: string): string => `111122223333.dkr.ecr.${region}.amazonaws.com`;

/** Settled: the Secret exists and the default ServiceAccount lists it. */
async function settled(namespace: string): Promise<void> {
  await eventually('the Secret and the entry', async () => {
    await readSecret(namespace, 'ecr-login');
    const sa = await core().readNamespacedServiceAccount({ namespace, name: 'default' });
    assert.ok(pullSecretNames(sa).includes('ecr-login'));
  });
}

describe('a managed Secret over time', () => {
  let aws: AwsTestServer;
  let controller: TestController;

  before(async () => {
    aws = await start({ tokenLifetimeSeconds: 12 * 3600 });
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    controller = await startTestController({ config: fastRefresh, args: ['--resync-period', '1s'] });
  });

  after(async () => {
    await controller.stop();
    await aws.close();
  });

  it('makes no writes at all in a steady-state window, resyncs included', async () => {
    const namespaces = [uniqueName('steady'), uniqueName('steady')];
    for (const ns of namespaces) await createServedNamespace(controller, ns, { 'ecr-login/server': host('us-east-2') });
    for (const ns of namespaces) await settled(ns);
    // Let the last events settle, then watch a window spanning several 1 s resyncs.
    await eventually('no write for a second', () => {
      const last = cluster().writes({ user: controller.user }).at(-1);
      assert.ok(last === undefined || Date.now() - Date.parse(last.stageTimestamp) > 1_000);
      return Promise.resolve();
    });
    const windowStart = new Date();
    const callsBefore = aws.count({ api: 'GetAuthorizationToken' });
    const passes = (ns: string): number => controller.running.parts.controller.lastResults.get(ns)?.count ?? 0;
    const start = namespaces.map(passes);
    await eventually(
      'three resync passes over both namespaces',
      () => {
        namespaces.forEach((ns, i) => assert.ok(passes(ns) >= (start[i] ?? 0) + 3));
        return Promise.resolve();
      },
      { timeoutMs: 20_000 },
    );
    const writes = cluster().writes({ user: controller.user, since: windowStart });
    assert.deepEqual(
      writes.map((w) => `${w.verb} ${w.objectRef?.resource ?? ''}/${w.objectRef?.name ?? ''}`),
      [],
    );
    assert.equal(aws.count({ api: 'GetAuthorizationToken' }), callsBefore, 'no AWS call either');
  });

  it('answers a resync of an unchanged namespace from its last reconcile, and reconciles in full on any change', async () => {
    const ns = uniqueName('settled');
    await createServedNamespace(controller, ns, { 'ecr-login/server': host('us-east-2') });
    await settled(ns);
    const last = (): { settled?: true; count: number } | undefined => controller.running.parts.controller.lastResults.get(ns);
    const answeredFromLast = async (what: string): Promise<void> => {
      const count = last()?.count ?? 0;
      await eventually(`${what}: a resync answered from the last reconcile`, () => {
        const result = last();
        assert.ok(result !== undefined && result.count > count && result.settled === true, JSON.stringify(result));
        return Promise.resolve();
      });
    };
    await answeredFromLast('unchanged');

    // Each input, changed by someone else, is seen at once: a ServiceAccount, a Secret, the Namespace.
    const api = core();
    await api.patchNamespacedServiceAccount(
      { namespace: ns, name: 'default', body: [{ op: 'remove', path: '/imagePullSecrets' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await settled(ns);
    await answeredFromLast('after the entry was restored');

    const before = await readSecret(ns, 'ecr-login');
    await api.deleteNamespacedSecret({ namespace: ns, name: 'ecr-login' });
    await eventually('the Secret again', async () => assert.notEqual((await readSecret(ns, 'ecr-login')).metadata?.uid, before.metadata?.uid));
    await answeredFromLast('after the Secret was created again');

    await api.patchNamespace(
      { name: ns, body: { metadata: { annotations: { 'ecr-login/server': `${host('us-east-2')},${host('eu-west-3')}` } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually('both registries in the Secret', async () =>
      assert.deepEqual(Object.keys(decodeDockerConfig(await readSecret(ns, 'ecr-login'))).sort(), [host('eu-west-3'), host('us-east-2')]),
    );
    await answeredFromLast('after the annotation changed');
  });

  it('refreshes a Secret near expiry in place: same uid, new token', async () => {
    aws.setTokenLifetime(8);
    const ns = uniqueName('refresh');
    await createServedNamespace(controller, ns, { 'ecr-login/server': host('ca-central-1') });
    const first = await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    const refreshed = await eventually(
      'a refresh',
      async () => {
        const secret = await readSecret(ns, 'ecr-login');
        assert.notEqual(secret.data?.['.dockerconfigjson'], first.data?.['.dockerconfigjson']);
        return secret;
      },
      { timeoutMs: 20_000 },
    );
    aws.setTokenLifetime(12 * 3600);
    assert.equal(refreshed.metadata?.uid, first.metadata?.uid, 'updated in place, never recreated');
    const before = Date.parse(first.metadata?.annotations?.['ecr-login/expires-at'] ?? '');
    const afterRefresh = Date.parse(refreshed.metadata?.annotations?.['ecr-login/expires-at'] ?? '');
    assert.ok(afterRefresh > before, 'the expiry moved forward');
    // It was refreshed before the old token expired (margin: half of its 8 s lifetime).
    const writes = cluster().writes({ user: controller.user, namespace: ns, resource: 'secrets' });
    const applied = writes.find((w) => w.verb === 'patch');
    assert.ok(applied, 'written with a patch (Server-Side Apply)');
    assert.ok(Date.parse(applied.requestReceivedTimestamp) < before, 'refreshed before the old token expired');
    assert.equal(writes.filter((w) => w.verb === 'delete').length, 0, 'never deleted');
  });

  it('removes only what it added when the annotation goes', async () => {
    const ns = uniqueName('cleanup');
    await createServedNamespace(controller, ns, { 'ecr-login/server': host('us-east-2'), 'ecr-login/service-accounts': '*' });
    const api = core();
    await api.createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'app' }, imagePullSecrets: [{ name: 'dockerhub' }] },
    });
    // Declared in Git: this one lists our Secret itself, and must get no write at all.
    await api.createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'gitops' }, imagePullSecrets: [{ name: 'ecr-login' }, { name: 'quay' }] },
    });
    await eventually('the entries', async () => {
      const app = await api.readNamespacedServiceAccount({ namespace: ns, name: 'app' });
      assert.deepEqual(pullSecretNames(app), ['dockerhub', 'ecr-login']);
    });
    await eventually('the default ServiceAccount entry', async () => {
      const sa = await api.readNamespacedServiceAccount({ namespace: ns, name: 'default' });
      assert.deepEqual(pullSecretNames(sa), ['ecr-login']);
    });
    assert.equal(
      cluster()
        .writes({ user: controller.user, namespace: ns, resource: 'serviceaccounts' })
        .filter((w) => w.objectRef?.name === 'gitops').length,
      0,
    );

    await api.patchNamespace(
      { name: ns, body: [{ op: 'remove', path: '/metadata/annotations/ecr-login~1server' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await eventually('the Secret to go', () => secretAbsent(ns, 'ecr-login'));
    await eventually('our entries to go', async () => {
      const app = await api.readNamespacedServiceAccount({ namespace: ns, name: 'app' });
      assert.deepEqual(pullSecretNames(app), ['dockerhub']);
      assert.equal(app.metadata?.annotations?.['ecr-login/pull-secrets'], undefined);
      const sa = await api.readNamespacedServiceAccount({ namespace: ns, name: 'default' });
      assert.deepEqual(pullSecretNames(sa), []);
    });
    const gitops = await api.readNamespacedServiceAccount({ namespace: ns, name: 'gitops' });
    assert.deepEqual(pullSecretNames(gitops), ['ecr-login', 'quay'], 'an entry we did not add stays');
    assert.equal(
      cluster()
        .writes({ user: controller.user, namespace: ns, resource: 'serviceaccounts' })
        .filter((w) => w.objectRef?.name === 'gitops').length,
      0,
    );
  });

  it('resumes after a restart without rewriting unchanged Secrets', async () => {
    const ns = uniqueName('restart');
    await createServedNamespace(controller, ns, { 'ecr-login/server': `${host('us-east-2')},${host('eu-north-1')}` });
    await settled(ns);
    const before = await readSecret(ns, 'ecr-login');
    await controller.stop();
    const restartedAt = new Date();
    const callsBefore = aws.count({ api: 'GetAuthorizationToken' });
    controller = await startTestController({
      config: fastRefresh,
      args: ['--resync-period', '1s'],
      reuse: { namespace: controller.namespace, label: controller.label },
    });
    await eventually('the restarted controller to reconcile the namespace', () => {
      const result = controller.running.parts.controller.lastResults.get(ns);
      assert.ok(result && result.at > restartedAt.getTime());
      return Promise.resolve();
    });
    const afterRestart = await readSecret(ns, 'ecr-login');
    assert.equal(afterRestart.metadata?.resourceVersion, before.metadata?.resourceVersion);
    assert.deepEqual(cluster().writes({ user: controller.user, namespace: ns, since: restartedAt }), []);
    assert.equal(aws.count({ api: 'GetAuthorizationToken' }), callsBefore, 'no new token needed');
    assert.deepEqual(Object.keys(decodeDockerConfig(afterRestart)).sort(), [host('eu-north-1'), host('us-east-2')]);
  });

  it('announces the Secrets its first pass after start-up creates in one Event, and a later one in its namespace', async () => {
    await controller.stop();
    const waiting = [uniqueName('first-pass'), uniqueName('first-pass')];
    for (const ns of waiting) await createServedNamespace(controller, ns, { 'ecr-login/server': host('us-east-2') });
    controller = await startTestController({
      config: fastRefresh,
      args: ['--resync-period', '1s'],
      reuse: { namespace: controller.namespace, label: controller.label },
    });
    for (const ns of waiting) await settled(ns);
    const summary = await eventually('the first pass Event on the config ConfigMap', async () => {
      const events = (await eventsFor(controller.namespace, 'ConfigMap', 'kube-ecrlogin-config')).filter((e) => e.reason === 'CredentialsIssued');
      assert.equal(events.length, 1, events.map((e) => e.message).join('; '));
      return events[0];
    });
    assert.equal(summary?.type, 'Normal');
    assert.match(summary?.message ?? '', /^Created 2 Secrets in 2 namespaces in the first pass after start-up, without an Event in each: /);
    for (const ns of waiting) assert.ok(summary?.message?.includes(ns), `${summary?.message ?? ''} names ${ns}`);

    const later = uniqueName('after-first-pass');
    await createServedNamespace(controller, later, { 'ecr-login/server': host('us-east-2') });
    await settled(later);
    await eventually("the later namespace's own Event", async () => {
      assert.deepEqual(
        (await namespaceEvents(later)).map((e) => e.reason),
        ['CredentialsIssued'],
      );
    });
    for (const ns of waiting)
      assert.deepEqual(
        (await namespaceEvents(ns)).map((e) => e.reason),
        [],
        `no Event in ${ns}`,
      );
  });

  it('lets a namespace be deleted without errors or writes', async () => {
    const ns = uniqueName('deleted');
    await createServedNamespace(controller, ns, { 'ecr-login/server': host('us-east-2') });
    await settled(ns);
    const deletedAt = new Date();
    await core().deleteNamespace({ name: ns });
    await eventually(
      'the namespace to be gone',
      async () => {
        try {
          await core().readNamespace({ name: ns });
        } catch (error) {
          if (error instanceof k8s.ApiException && error.code === 404) return;
          throw error;
        }
        throw new Error('still there');
      },
      { timeoutMs: 60_000 },
    );
    assert.deepEqual(cluster().writes({ user: controller.user, namespace: ns, since: deletedAt }), []);
    const errors = controller.logs.filter((line) => line.includes(ns) && /"level":"(warn|error)"/.test(line));
    assert.deepEqual(errors, []);
  });
});
