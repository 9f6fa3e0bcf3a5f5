// The controller's main job against the real control plane and the AWS test server: annotated
// objects get a fresh pull Secret and an imagePullSecrets entry, with the fewest AWS calls and writes.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, withAwsAndController } from '../support/controller.ts';
import { decodeDockerConfig, pullSecretNames, readSecret } from '../support/objects.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const west = '444455556666.dkr.ecr.eu-west-1.amazonaws.com';

describe('the controller', () => {
  const env = withAwsAndController();
  const core = (): k8s.CoreV1Api => cluster().adminConfig().makeApiClient(k8s.CoreV1Api);

  it('gives an annotated namespace a Secret and lists it on the default ServiceAccount', async () => {
    const ns = uniqueName('basic');
    await createServedNamespace(env.controller, ns, { 'ecr-login/server': east });
    const secret = await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
    assert.equal(secret.metadata?.labels?.['app.kubernetes.io/managed-by'], 'kube-ecrlogin');
    assert.equal(secret.metadata?.annotations?.['ecr-login/owner'], `Namespace/${ns}`);
    const auths = decodeDockerConfig(secret);
    assert.deepEqual(Object.keys(auths), [east]);
    assert.equal(auths[east]?.username, 'AWS');
    assert.ok((auths[east]?.password.length ?? 0) > 20);
    assert.equal(auths[east]?.auth, Buffer.from(`AWS:${auths[east]?.password ?? ''}`).toString('base64'));
    const expires = Date.parse(secret.metadata?.annotations?.['ecr-login/expires-at'] ?? '');
    assert.ok(expires > Date.now() + 11 * 3600_000, 'expiry comes from the token (12 hours)');
    await eventually('the imagePullSecrets entry', async () => {
      const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'default' });
      assert.deepEqual(pullSecretNames(sa), ['ecr-login']);
    });
  });

  it('puts two registries in two regions into one Secret', async () => {
    const ns = uniqueName('tworegions');
    await createServedNamespace(env.controller, ns, { 'ecr-login/server': `${east}, ${west}` });
    const secret = await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    const auths = decodeDockerConfig(secret);
    assert.deepEqual(Object.keys(auths).sort(), [east, west].sort());
    assert.notEqual(auths[east]?.password, auths[west]?.password, 'one token per region');
  });

  it('serves 50 namespaces sharing one identity and region with one GetAuthorizationToken', async () => {
    const region = 'ap-southeast-2';
    const host = `111122223333.dkr.ecr.${region}.amazonaws.com`;
    const names = Array.from({ length: 50 }, (_, i) => `${uniqueName('fifty')}-${i}`);
    await Promise.all(names.map((ns) => createServedNamespace(env.controller, ns, { 'ecr-login/server': host })));
    await eventually(
      'all 50 Secrets',
      async () => {
        for (const ns of names) await readSecret(ns, 'ecr-login');
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(env.aws.count({ api: 'GetAuthorizationToken', region }), 1);
  });

  it('keeps every other imagePullSecrets entry, and patches a ServiceAccount created later', async () => {
    const ns = uniqueName('later');
    await createServedNamespace(env.controller, ns, {
      'ecr-login/server': east,
      'ecr-login/service-accounts': '*',
    });
    await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    await core().createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'builder' }, imagePullSecrets: [{ name: 'dockerhub' }, { name: 'quay' }] },
    });
    await eventually('the entry on the new ServiceAccount', async () => {
      const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'builder' });
      assert.deepEqual(pullSecretNames(sa), ['dockerhub', 'quay', 'ecr-login']);
    });
  });

  it('gives an annotated ServiceAccount its own Secret', async () => {
    const ns = uniqueName('sa');
    await createServedNamespace(env.controller, ns);
    await core().createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'deployer', annotations: { 'ecr-login/server': west } } },
    });
    const secret = await eventually('the Secret', () => readSecret(ns, 'ecr-login-deployer'));
    assert.equal(secret.metadata?.annotations?.['ecr-login/owner'], `ServiceAccount/${ns}/deployer`);
    assert.equal(secret.metadata?.ownerReferences?.[0]?.kind, 'ServiceAccount');
    await eventually('the entry', async () => {
      const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'deployer' });
      assert.deepEqual(pullSecretNames(sa), ['ecr-login-deployer']);
    });
    // The serviceaccount controller makes `default` a moment after the namespace: wait for it.
    const defaultSa = await eventually('the default ServiceAccount', () => core().readNamespacedServiceAccount({ namespace: ns, name: 'default' }));
    assert.deepEqual(pullSecretNames(defaultSa), [], 'the default ServiceAccount is not touched');
  });
});
