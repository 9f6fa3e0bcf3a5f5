// Everyday mistakes that used to pass without a word (issue 15), each explained where its author looks:
// a misspelt ecr-login/* key, a ServiceAccount named but absent, and a metric series that outlived its
// Secret (the alert that never cleared).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { diagnose } from '../../src/doctor.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { core, eventsFor, namespaceEvents, pullSecretNames, readSecret } from '../support/objects.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';

describe('mistakes that are no longer silent', () => {
  let aws: AwsTestServer;
  let controller: TestController;

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    // A ServiceAccount a Namespace names and lacks is reported once the Namespace is a second old.
    controller = await startTestController({ pendingGraceMs: 1_000 });
  });

  after(async () => {
    await controller.stop();
    await aws.close();
  });

  it('a misspelt key on a Namespace gets a Warning naming the key and the one it meant, and the doctor lists it', async () => {
    const ns = uniqueName('typo');
    await createServedNamespace(controller, ns, { 'ecr-login/servers': east });
    await eventually('the UnknownAnnotation Event, in the namespace', async () => {
      const found = (await namespaceEvents(ns)).find((e) => e.reason === 'UnknownAnnotation');
      assert.equal(found?.message, 'annotation ecr-login/servers (did you mean ecr-login/server?) is not one kube-ecrlogin reads; it is ignored');
    });
    const report = await diagnose(controller.options, { kubeConfig: cluster().adminConfig() });
    const row = report.objects.find((o) => o.object === `Namespace/${ns}`);
    assert.equal(row?.status, 'unknown annotation');
    assert.match(row?.detail ?? '', /did you mean ecr-login\/server\?/);
  });

  it('a misspelt key on a ServiceAccount gets a Warning on it; the rest of its request is still served', async () => {
    const ns = uniqueName('typo-sa');
    await createServedNamespace(controller, ns);
    await core().createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'builder', annotations: { 'ecr-login/server': east, 'ecr-login/role_arn': 'arn:aws:iam::111122223333:role/x' } } },
    });
    await eventually('the UnknownAnnotation Event on the ServiceAccount', async () => {
      const found = (await eventsFor(ns, 'ServiceAccount', 'builder')).find((e) => e.reason === 'UnknownAnnotation');
      assert.match(found?.message ?? '', /ecr-login\/role_arn \(did you mean ecr-login\/role-arn\?\)/);
    });
    await eventually('its Secret all the same', () => readSecret(ns, 'ecr-login-builder'));
  });

  it('a ServiceAccount named in ecr-login/service-accounts that does not exist is reported as pending, and served once it appears', async () => {
    const ns = uniqueName('pending');
    await createServedNamespace(controller, ns, { 'ecr-login/server': east, 'ecr-login/service-accounts': 'deployer' });
    await eventually('the ServiceAccountPending Event', async () => {
      const found = (await namespaceEvents(ns)).find((e) => e.reason === 'ServiceAccountPending');
      assert.equal(found?.message, 'ServiceAccount deployer named in ecr-login/service-accounts does not exist (yet): it gets the Secret when it appears');
    });
    const pending = await diagnose(controller.options, { kubeConfig: cluster().adminConfig() });
    assert.equal(pending.objects.find((o) => o.object === `Namespace/${ns}`)?.status, 'pending');
    await core().createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'deployer' } } });
    await eventually('the entry on the new ServiceAccount', async () => {
      assert.deepEqual(pullSecretNames(await core().readNamespacedServiceAccount({ namespace: ns, name: 'deployer' })), ['ecr-login']);
    });
    const ref = { kind: 'Namespace', name: ns } as const;
    await eventually('the pending warning cleared', () => {
      assert.equal(controller.running.parts.events.active(ref, 'ServiceAccountPending'), false);
      return Promise.resolve();
    });
    const served = await diagnose(controller.options, { kubeConfig: cluster().adminConfig() });
    assert.equal(served.objects.find((o) => o.object === `Namespace/${ns}`)?.status, 'ok');
  });

  it('a refresh that failed before any Secret existed stops alerting once nothing asks for it, and when the namespace goes', async () => {
    const series = async (ns: string): Promise<{ secret: string; value: number }[]> =>
      (await controller.metrics.lastRefreshFailure.get()).values
        .filter((v) => v.labels.namespace === ns)
        .map((v) => ({ secret: String(v.labels.secret), value: v.value }));
    // A role the AWS test server lets nobody assume: denied before the first Secret.
    const denied = 'arn:aws:iam::111122223333:role/nobody-may';
    aws.setRole({ roleArn: denied, trustedPrincipals: ['arn:aws:iam::999999999999:user/someone-else'] });
    const first = uniqueName('alert');
    await createServedNamespace(controller, first, { 'ecr-login/server': east, 'ecr-login/role-arn': denied });
    await eventually('the failing series', async () => {
      assert.deepEqual(await series(first), [{ secret: 'ecr-login', value: 1 }]);
    });
    await core().patchNamespace(
      { name: first, body: [{ op: 'remove', path: '/metadata/annotations/ecr-login~1server' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await eventually('no series once nothing asks', async () => {
      assert.deepEqual(await series(first), []);
    });

    const second = uniqueName('alert');
    await createServedNamespace(controller, second, { 'ecr-login/server': east, 'ecr-login/role-arn': denied });
    await eventually('the failing series', async () => {
      assert.deepEqual(await series(second), [{ secret: 'ecr-login', value: 1 }]);
    });
    await core().deleteNamespace({ name: second });
    await eventually(
      'no series once the namespace is gone',
      async () => {
        assert.deepEqual(await series(second), []);
      },
      { timeoutMs: 60_000 },
    );
  });
});
