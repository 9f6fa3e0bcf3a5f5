// ecr-login/format (issue 21): the same tokens for the tools around the cluster. A config.json Secret
// for image builders, and Argo CD repository credential templates for charts and OCI artifacts in ECR,
// each written, refreshed in place, cleaned up, and never touching a foreign Secret of its name.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from '../aws/server.ts';
import { uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { core, namespaceEvents, pullSecretNames, readSecret, secretAbsent } from '../support/objects.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const west = '444455556666.dkr.ecr.eu-west-1.amazonaws.com';
/** Tokens that live 40 s and a 1 s floor between refreshes: a refresh within the test. */
const fastRefresh = 'refresh:\n  margin: 50%\n  jitter: 10%\n  minInterval: 1s\n';

const decoded = (secret: k8s.V1Secret): Record<string, string> =>
  Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));

describe('Secrets for the tools around the cluster (ecr-login/format)', () => {
  let aws: AwsTestServer;
  let controller: TestController;

  before(async () => {
    aws = await start({ tokenLifetimeSeconds: 40 });
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    controller = await startTestController({ config: fastRefresh });
  });

  after(async () => {
    await controller.stop();
    await aws.close();
  });

  it('config-json: an Opaque Secret with config.json for image builders, refreshed in place, listed on no ServiceAccount, removed with the annotation', async () => {
    const ns = uniqueName('builders');
    await createServedNamespace(controller, ns, {
      'ecr-login/server': `${east},${west}`,
      'ecr-login/format': 'config-json',
      'ecr-login/secret-name': 'docker-config',
    });
    const first = await eventually('the Secret', () => readSecret(ns, 'docker-config'));
    assert.equal(first.type, 'Opaque');
    assert.deepEqual(Object.keys(first.data ?? {}), ['config.json']);
    const config = JSON.parse(decoded(first)['config.json'] ?? '{}') as { auths: Record<string, { username: string; password: string; auth: string }> };
    assert.deepEqual(Object.keys(config.auths).sort(), [east, west].sort());
    assert.equal(config.auths[east]?.username, 'AWS');
    assert.equal(config.auths[east]?.auth, Buffer.from(`AWS:${config.auths[east]?.password ?? ''}`).toString('base64'));
    assert.equal(first.metadata?.annotations?.['ecr-login/format'], 'config-json');
    const sa = await eventually('the default ServiceAccount', () => core().readNamespacedServiceAccount({ namespace: ns, name: 'default' }));
    assert.deepEqual(pullSecretNames(sa), [], 'not a pull Secret: no imagePullSecrets entry');

    await eventually(
      'a refreshed token, in place',
      async () => {
        const now = await readSecret(ns, 'docker-config');
        assert.notEqual(now.data?.['config.json'], first.data?.['config.json']);
        assert.equal(now.metadata?.uid, first.metadata?.uid);
      },
      { timeoutMs: 60_000 },
    );

    await core().patchNamespace(
      { name: ns, body: [{ op: 'remove', path: '/metadata/annotations/ecr-login~1server' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await eventually('the Secret gone', () => secretAbsent(ns, 'docker-config'));
  });

  it('argocd-repository: one repository credential template per registry, as Argo CD reads them, refreshed in place and removed with the annotation', async () => {
    const ns = uniqueName('argocd');
    await createServedNamespace(controller, ns, { 'ecr-login/server': `${east},${west}`, 'ecr-login/format': 'argocd-repository' });
    const name = (host: string): string => `ecr-login-${host.replace(/\./g, '-')}`;
    const secrets = await eventually('both Secrets', async () => Promise.all([east, west].map((host) => readSecret(ns, name(host)))));
    for (const [index, host] of [east, west].entries()) {
      const secret = secrets[index];
      assert.ok(secret);
      // As argocd-repo-creds.yaml in Argo CD's documentation, for Helm charts in an OCI registry.
      assert.equal(secret.type, 'Opaque');
      assert.equal(secret.metadata?.labels?.['argocd.argoproj.io/secret-type'], 'repo-creds');
      const data = decoded(secret);
      assert.deepEqual(Object.keys(data).sort(), ['enableOCI', 'password', 'type', 'url', 'username']);
      assert.equal(data['url'], host, 'the registry host, without a scheme: the prefix of every chart in it');
      assert.equal(data['type'], 'helm');
      assert.equal(data['enableOCI'], 'true');
      assert.equal(data['username'], 'AWS');
      assert.ok((data['password'] ?? '').length > 10);
    }
    const firstEast = secrets[0];
    await eventually(
      'a refreshed token, in place',
      async () => {
        const now = await readSecret(ns, name(east));
        assert.notEqual(now.data?.['password'], firstEast?.data?.['password']);
        assert.equal(now.metadata?.uid, firstEast?.metadata?.uid);
      },
      { timeoutMs: 60_000 },
    );

    await core().patchNamespace(
      { name: ns, body: [{ op: 'remove', path: '/metadata/annotations/ecr-login~1server' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await eventually('both Secrets gone', async () => {
      for (const host of [east, west]) await secretAbsent(ns, name(host));
    });
  });

  it('never touches a Secret of the same name it does not own: a SecretConflict instead', async () => {
    const ns = uniqueName('argocd-taken');
    await core().createNamespace({ body: { metadata: { name: ns } } });
    const taken = `ecr-login-${east.replace(/\./g, '-')}`;
    // The repository Secret a person made in Argo CD's namespace.
    await core().createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: taken, labels: { 'argocd.argoproj.io/secret-type': 'repo-creds' } },
        type: 'Opaque',
        stringData: { url: east, password: 'theirs' },
      },
    });
    await core().patchNamespace(
      {
        name: ns,
        body: {
          metadata: {
            labels: { [controller.label.key]: controller.label.value },
            annotations: { 'ecr-login/server': east, 'ecr-login/format': 'argocd-repository' },
          },
        },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually('the SecretConflict Event', async () => {
      assert.ok((await namespaceEvents(ns)).some((e) => e.reason === 'SecretConflict'));
    });
    const secret = await readSecret(ns, taken);
    assert.equal(Buffer.from(secret.data?.['password'] ?? '', 'base64').toString('utf8'), 'theirs');
    assert.equal(secret.metadata?.labels?.['app.kubernetes.io/managed-by'], undefined);
  });

  it('refuses a format it does not know, and service-accounts with a format that is no pull Secret', async () => {
    const ns = uniqueName('format-bad');
    await createServedNamespace(controller, ns, { 'ecr-login/server': east, 'ecr-login/format': 'helm' });
    await eventually('the InvalidAnnotation Event', async () => {
      const found = (await namespaceEvents(ns)).find((e) => e.reason === 'InvalidAnnotation');
      assert.match(found?.message ?? '', /ecr-login\/format: "helm" is not one of dockerconfigjson, config-json, argocd-repository/);
    });
    const other = uniqueName('format-sa');
    await createServedNamespace(controller, other, { 'ecr-login/server': east, 'ecr-login/format': 'config-json', 'ecr-login/service-accounts': 'builder' });
    await eventually('the InvalidAnnotation Event', async () => {
      const found = (await namespaceEvents(other)).find((e) => e.reason === 'InvalidAnnotation');
      assert.match(found?.message ?? '', /ecr-login\/service-accounts: has no use with ecr-login\/format: config-json/);
    });
  });
});
