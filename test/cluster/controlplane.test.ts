// Smoke tests that prove the local control plane is the real thing: it serves, its controllers run,
// RBAC is enforced, TokenRequest works, and the audit log attributes writes to their user.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { cluster, uniqueName } from '../support/cluster.ts';
import { httpsGet, kubeMinor } from './controlplane.ts';
import { eventually } from '../support/eventually.ts';

describe('the local control plane', () => {
  it('answers /readyz and reports the Kubernetes minor KUBE_VERSION asked for', async () => {
    const plane = cluster();
    const ready = await httpsGet(`${plane.server}/readyz`, plane.caPem, plane.tokenOf('admin'));
    assert.equal(ready.status, 200);
    const version = await plane.adminConfig().makeApiClient(k8s.VersionApi).getCode();
    assert.equal(plane.minor, kubeMinor());
    assert.match(version.gitVersion, new RegExp(`^v${plane.minor.replace('.', '\\.')}\\.\\d+$`));
  });

  it('makes Pods from a Deployment, as a cluster does', async () => {
    const plane = cluster();
    const core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
    const apps = plane.adminConfig().makeApiClient(k8s.AppsV1Api);
    const name = uniqueName('workloads');
    await core.createNamespace({ body: { metadata: { name } } });
    await eventually('the default ServiceAccount', () => core.readNamespacedServiceAccount({ namespace: name, name: 'default' }));
    const labels = { app: 'web' };
    await apps.createNamespacedDeployment({
      namespace: name,
      body: {
        metadata: { name: 'web' },
        spec: { replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'web:1' }] } } },
      },
    });
    await eventually('two Pods of the Deployment', async () => {
      const pods = await core.listNamespacedPod({ namespace: name });
      assert.equal(pods.items.length, 2);
    });
    await core.deleteNamespace({ name });
  });

  it('gives a new namespace its default ServiceAccount, and completes its deletion', async () => {
    const plane = cluster();
    const core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
    const name = uniqueName('smoke');
    await core.createNamespace({ body: { metadata: { name } } });
    await eventually('the default ServiceAccount', async () => {
      await core.readNamespacedServiceAccount({ namespace: name, name: 'default' });
    });
    await core.deleteNamespace({ name });
    await eventually('the namespace to be gone', async () => {
      try {
        await core.readNamespace({ name });
      } catch (error) {
        if (error instanceof k8s.ApiException && error.code === 404) return;
        throw error;
      }
      throw new Error('still there');
    });
  });

  it('enforces RBAC for a named user without permissions', async () => {
    const plane = cluster();
    const core = plane.userConfig('nobody').makeApiClient(k8s.CoreV1Api);
    await assert.rejects(core.listNamespacedSecret({ namespace: 'default' }), (error: unknown) => {
      assert.ok(error instanceof k8s.ApiException);
      assert.equal(error.code, 403);
      return true;
    });
  });

  it('mints ServiceAccount tokens with the requested audience, signed by its issuer', async () => {
    const plane = cluster();
    const token = await plane.requestToken('default', 'default', {
      audiences: ['sts.amazonaws.com'],
      expirationSeconds: 600,
    });
    const [, payload] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims['iss'], plane.issuer);
    assert.deepEqual(claims['aud'], ['sts.amazonaws.com']);
    assert.equal(claims['sub'], 'system:serviceaccount:default:default');
    const discovery = await httpsGet(`${plane.issuer}/.well-known/openid-configuration`, plane.caPem);
    assert.equal(discovery.status, 200, 'issuer discovery is public, as STS needs');
    assert.equal((JSON.parse(discovery.body) as { issuer: string }).issuer, plane.issuer);
  });

  it('records a write by a named user in the audit log', async () => {
    const plane = cluster();
    const admin = plane.adminConfig();
    const name = uniqueName('audit');
    const core = admin.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name } } });
    const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRoleBinding({
      namespace: name,
      body: {
        metadata: { name: 'tenant-a-edit' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'tenant-a' }],
      },
    });
    const asTenant = plane.userConfig('tenant-a').makeApiClient(k8s.CoreV1Api);
    await eventually('the RoleBinding to take effect', async () => {
      await asTenant.createNamespacedConfigMap({ namespace: name, body: { metadata: { name: 'hello' } } });
    });
    await plane.auditCaughtUp();
    const writes = plane.writes({ user: 'tenant-a', namespace: name, resource: 'configmaps' });
    const [write] = writes;
    assert.equal(writes.length, 1);
    assert.ok(write);
    assert.equal(write.verb, 'create');
    assert.equal(write.objectRef?.name, 'hello');
    await core.deleteNamespace({ name });
  });
});
