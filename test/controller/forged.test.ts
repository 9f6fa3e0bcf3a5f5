// What a tenant can forge, and what it must not get them (issue 14, items 1, 3, 4, 5): a tenant who can
// edit their own Namespace's and ServiceAccounts' annotations and create Secrets in their namespace.
// Each test failed on the controller before its fix; the collision of two ServiceAccounts on one name
// was added later, and fails with intents.ts's SecretConflict check switched off.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { core, eventsFor, pullSecretNames, readSecret } from '../support/objects.ts';
import { createInstall, createServedNamespaces, spawnController, stopController, serviceAccount, type ControllerProcess } from '../operations/support.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const managed = { 'app.kubernetes.io/managed-by': 'kube-ecrlogin' };

describe('forged input', () => {
  let aws: AwsTestServer;
  let controller: TestController;

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    controller = await startTestController();
  });

  after(async () => {
    await controller.stop();
    await aws.close();
  });

  it('a labelled Secret whose owner names another namespace is reported in its own namespace once and left alone', async () => {
    const ns = uniqueName('forge-owner');
    await createServedNamespace(controller, ns);
    const since = new Date();
    await core().createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: 'lure', labels: managed, annotations: { 'ecr-login/owner': 'ServiceAccount/kube-system/default', 'ecr-login/spec-hash': 'x' } },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
      },
    });
    await eventually('the ForeignSecret Event on the Secret, in its namespace', async () => {
      const events = await eventsFor(ns, 'Secret', 'lure');
      assert.equal(events.filter((e) => e.reason === 'ForeignSecret').length, 1);
    });
    assert.ok((await readSecret(ns, 'lure')).metadata?.uid, 'not deleted');
    const elsewhere = await core().listNamespacedEvent({ namespace: 'kube-system', fieldSelector: 'source=kube-ecrlogin' });
    assert.deepEqual(
      elsewhere.items.filter((e) => new Date(e.metadata.creationTimestamp ?? 0) >= since),
      [],
      'nothing said in kube-system',
    );
    const writes = cluster()
      .writes({ user: controller.user, since })
      .filter((w) => w.objectRef?.namespace !== ns && w.objectRef?.resource !== 'events');
    assert.deepEqual(
      writes.map((w) => `${w.verb} ${w.objectRef?.resource} ${w.objectRef?.namespace}`),
      [],
      'no write outside the namespace',
    );
  });

  it('a labelled Secret it did not write is never deleted, though nothing asks for it', async () => {
    const ns = uniqueName('forge-label');
    await createServedNamespace(controller, ns);
    await core().createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'team-secret', labels: managed, annotations: { 'ecr-login/owner': `Namespace/${ns}` } }, type: 'Opaque', data: { a: 'Yg==' } },
    });
    await eventually('the ForeignSecret Event', async () => {
      assert.equal((await eventsFor(ns, 'Secret', 'team-secret')).filter((e) => e.reason === 'ForeignSecret').length, 1);
    });
    assert.ok((await readSecret(ns, 'team-secret')).metadata?.uid, 'not deleted');
  });

  it('a forged ecr-login/pull-secrets record never removes an entry that names no Secret of ours', async () => {
    const ns = uniqueName('forge-record');
    await createServedNamespace(controller, ns);
    await eventually('the default ServiceAccount', () => core().readNamespacedServiceAccount({ namespace: ns, name: 'default' }));
    await core().createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'app', annotations: { 'ecr-login/pull-secrets': 'platform-pull' } }, imagePullSecrets: [{ name: 'platform-pull' }] },
    });
    // Give the controller its chances: several reconciles of the namespace after the ServiceAccount.
    const passes = (): number => controller.running.parts.controller.lastResults.get(ns)?.count ?? 0;
    const before_ = passes();
    controller.running.parts.controller.enqueue(ns);
    await eventually('two more reconciles', () => {
      assert.ok(passes() >= before_ + 1);
      return Promise.resolve();
    });
    const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'app' });
    assert.deepEqual(pullSecretNames(sa), ['platform-pull']);
  });

  it('moves a Secret from a ServiceAccount to the Namespace in place: same uid, exactly the new owner, and it outlives the old owner', async () => {
    const ns = uniqueName('owner-move');
    await createServedNamespace(controller, ns);
    await core().createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'builder', annotations: { 'ecr-login/server': east, 'ecr-login/secret-name': 'shared-pull' } } },
    });
    const first = await eventually("the ServiceAccount's Secret", async () => {
      const secret = await readSecret(ns, 'shared-pull');
      assert.equal(secret.metadata?.ownerReferences?.[0]?.name, 'builder');
      return secret;
    });
    // The name moves: the Namespace asks for it too, and wins it (a Namespace's claim comes first; the
    // ServiceAccount gets a SecretConflict).
    await core().patchNamespace(
      { name: ns, body: { metadata: { annotations: { 'ecr-login/server': east, 'ecr-login/secret-name': 'shared-pull' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually("the Namespace as the Secret's owner", async () => {
      const secret = await readSecret(ns, 'shared-pull');
      assert.equal(secret.metadata?.annotations?.['ecr-login/owner'], `Namespace/${ns}`);
      assert.deepEqual(secret.metadata?.ownerReferences ?? [], [], 'no owner reference left to the ServiceAccount');
      assert.equal(secret.metadata?.uid, first.metadata?.uid, 'the same Secret');
    });
    await core().deleteNamespacedServiceAccount({ namespace: ns, name: 'builder' });
    // The garbage collector would delete a Secret still owned by the ServiceAccount within moments.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal((await readSecret(ns, 'shared-pull')).metadata?.uid, first.metadata?.uid, 'outlived the old owner');
  });

  it('two ServiceAccounts asking for one Secret name: the first by name gets it alone, the other a SecretConflict, and it takes over once the first goes', async () => {
    const ns = uniqueName('sa-collide');
    await createServedNamespace(controller, ns);
    const annotations = { 'ecr-login/server': east, 'ecr-login/secret-name': 'shared-pull' };
    // zeta first: the winner is the first by name, not the first to ask.
    const zeta = await core().createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'zeta', annotations } } });
    const alpha = await core().createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'alpha', annotations } } });
    const conflict = await eventually('the SecretConflict Event on zeta', async () => {
      const found = (await eventsFor(ns, 'ServiceAccount', 'zeta')).find((e) => e.reason === 'SecretConflict');
      assert.ok(found, 'no SecretConflict yet');
      return found;
    });
    assert.equal(conflict.type, 'Warning');
    assert.match(conflict.message ?? '', new RegExp(`Secret name shared-pull is already used by ServiceAccount/${ns}/alpha`));
    const owned = (secret: k8s.V1Secret): string[] => (secret.metadata?.ownerReferences ?? []).map((ref) => `${ref.kind}/${ref.name}/${ref.uid}`);
    const first = await eventually("alpha's Secret, alpha's entry", async () => {
      const secret = await readSecret(ns, 'shared-pull');
      assert.deepEqual(pullSecretNames(await core().readNamespacedServiceAccount({ namespace: ns, name: 'alpha' })), ['shared-pull']);
      return secret;
    });
    assert.equal(first.metadata?.annotations?.['ecr-login/owner'], `ServiceAccount/${ns}/alpha`);
    assert.deepEqual(owned(first), [`ServiceAccount/alpha/${alpha.metadata?.uid}`], 'owned by alpha alone');
    // Several more passes: zeta never shares it.
    const passes = (): number => controller.running.parts.controller.lastResults.get(ns)?.count ?? 0;
    const seen = passes();
    controller.running.parts.controller.enqueue(ns);
    await eventually('another reconcile', () => {
      assert.ok(passes() > seen);
      return Promise.resolve();
    });
    assert.deepEqual(pullSecretNames(await core().readNamespacedServiceAccount({ namespace: ns, name: 'zeta' })), [], 'no entry on zeta');
    assert.deepEqual(owned(await readSecret(ns, 'shared-pull')), [`ServiceAccount/alpha/${alpha.metadata?.uid}`], "still alpha's alone");

    // alpha goes: the name is zeta's now, and the Secret is owned by zeta alone.
    await core().deleteNamespacedServiceAccount({ namespace: ns, name: 'alpha' });
    await eventually(
      "zeta's Secret, zeta's entry",
      async () => {
        const secret = await readSecret(ns, 'shared-pull');
        assert.equal(secret.metadata?.annotations?.['ecr-login/owner'], `ServiceAccount/${ns}/zeta`);
        assert.deepEqual(owned(secret), [`ServiceAccount/zeta/${zeta.metadata?.uid}`]);
        assert.deepEqual(pullSecretNames(await core().readNamespacedServiceAccount({ namespace: ns, name: 'zeta' })), ['shared-pull']);
      },
      { timeoutMs: 60_000 },
    );
  });

  it('rewrites a Secret of ours whose data someone else changed, in place', async () => {
    const ns = uniqueName('tamper');
    await createServedNamespace(controller, ns, { 'ecr-login/server': east });
    const written = await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    await core().patchNamespacedSecret(
      {
        namespace: ns,
        name: 'ecr-login',
        body: { data: { '.dockerconfigjson': Buffer.from('{"auths":{"x":{"auth":"eDp5"}}}').toString('base64') } },
        fieldManager: 'tenant-edit',
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually('our data back', async () => {
      const secret = await readSecret(ns, 'ecr-login');
      assert.equal(secret.data?.['.dockerconfigjson'], written.data?.['.dockerconfigjson']);
      assert.equal(secret.metadata?.uid, written.metadata?.uid);
    });
  });
});

describe('forged input at scale: 200 labelled Secrets of 900 KiB in a namespace the controller does not serve', () => {
  let aws: AwsTestServer;
  let controller: ControllerProcess | undefined;
  const bulky = uniqueName('bulky');

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    await core().createNamespace({ body: { metadata: { name: bulky } } });
    const payload = Buffer.alloc(900 * 1024, 0x61).toString('base64');
    const names = Array.from({ length: 200 }, (_, i) => `forged-${i}`);
    for (let i = 0; i < names.length; i += 8) {
      await Promise.all(
        names.slice(i, i + 8).map((name) =>
          core().createNamespacedSecret({
            namespace: bulky,
            body: { metadata: { name, labels: managed, annotations: { 'ecr-login/owner': `Namespace/${bulky}` } }, data: { blob: payload } },
          }),
        ),
      );
    }
  });

  after(async () => {
    await stopController(controller);
    await aws.close();
    await core().deleteNamespace({ name: bulky });
  });

  it("starts with the image's heap settings, syncs and serves a namespace, holding none of that data", async (t) => {
    const install = await createInstall('bulk');
    const account = await serviceAccount(install, 'controller', { clusterAdmin: true });
    const served = uniqueName('bulk-served');
    await createServedNamespaces(install, [served], () => ({ 'ecr-login/server': east }));
    controller = await spawnController({
      install,
      identity: 'bulk-0',
      kubeconfig: account.kubeconfig,
      awsEndpoint: aws.endpoint,
      // The image's settings (Dockerfile NODE_OPTIONS, half the 384Mi limit).
      env: { NODE_OPTIONS: '--max-semi-space-size=8 --max-old-space-size=192' },
    });
    const proc = controller;
    await eventually("the served namespace's Secret", () => readSecret(served, 'ecr-login'), { timeoutMs: 60_000 });
    const rss = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    const peak = Number(/^VmHWM:\s+(\d+) kB/m.exec(rss)?.[1] ?? 0) / 1024;
    t.diagnostic(`controller peak RSS ${Math.round(peak)} MiB with 200 x 900 KiB labelled Secrets present`);
    assert.equal(proc.child.exitCode, null, `still running; it said:\n${proc.output().slice(-2000)}`);
    assert.ok(peak < 250, `peak RSS ${Math.round(peak)} MiB: the Secrets' data is not held`);
    await core().deleteNamespace({ name: served });
  });
});
