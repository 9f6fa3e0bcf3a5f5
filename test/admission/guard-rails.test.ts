// kustomize/components/guard-rails on a real API server (both minors): ValidatingAdmissionPolicies
// bound what the controller's own ServiceAccount may do, whatever its RBAC allows (issue 14 item 7).
// Each denial is proven with the controller's own credentials; the controller still does its whole job
// under them, keyless tenants included.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { pullSecretNames, readSecret } from '../support/objects.ts';
import { cleanUp, installController, Scratch, type InstalledController, type Manifest } from '../kustomize/support.ts';
import { core, server } from './cases.ts';

const tenantRole = 'arn:aws:iam::111122223333:role/guarded-tenant';

describe("guard-rails: what the controller's own ServiceAccount may do", () => {
  let scratch: Scratch;
  let aws: AwsTestServer;
  let installed: InstalledController;
  let controller: TestController;
  /** The controller's own credentials, as a thief would hold them. */
  let stolen: k8s.CoreV1Api;
  const created: { kind: string; name: string }[] = [];
  let tenant: string;

  before(async () => {
    scratch = new Scratch();
    aws = await start();
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    const suffix = uniqueName('vap');
    installed = await installController(scratch, {
      namespace: suffix,
      suffix,
      components: ['components/keyless-tenants', 'components/guard-rails'],
      extraKinds: ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'],
      // The test's policies apply to its own controller only, so that other suites' controllers (also
      // ServiceAccounts named kube-ecrlogin) are not bound by them.
      edit: (objects) => objects.map((object) => onlyFor(object, `system:serviceaccount:${suffix}:kube-ecrlogin`)),
    });
    created.push(...installed.created);
    aws.trustIssuer({ issuer: cluster().issuer, ca: cluster().caPem });
    aws.setRole({ roleArn: tenantRole, webIdentitySubjects: ['system:serviceaccount:guarded-*:keyless'] });
    controller = await startTestController({ kubeConfig: installed.kubeConfig, user: installed.user, args: ['--namespace', installed.namespace] });
    created.push({ kind: 'Namespace', name: controller.namespace });
    stolen = installed.kubeConfig.makeApiClient(k8s.CoreV1Api);
    tenant = uniqueName('guarded');
    await core().createNamespace({
      body: { metadata: { name: tenant, labels: { [controller.label.key]: controller.label.value }, annotations: { 'ecr-login/server': server } } },
    });
    created.push({ kind: 'Namespace', name: tenant });
    await eventually('the default ServiceAccount', () => core().readNamespacedServiceAccount({ namespace: tenant, name: 'default' }));
    // The API server takes up new policies a moment after they are written.
    await eventually('the guard-rails in force', async () => {
      await assert.rejects(
        stolen.createNamespacedSecret({ namespace: tenant, body: { metadata: { generateName: 'probe-' }, type: 'Opaque' } }),
        /may write only/,
      );
    });
  });

  after(async () => {
    await controller.stop();
    await aws.close();
    await cleanUp(created);
    scratch.remove();
  });

  const refused = async (what: Promise<unknown>, says: RegExp): Promise<void> => {
    await assert.rejects(what, (error: unknown) => {
      assert.ok(error instanceof k8s.ApiException, String(error));
      const body = String(error.body);
      assert.equal(error.code, 422, body);
      assert.match(body, says);
      return true;
    });
  };

  it('does its whole job under them: a Secret written and listed on the ServiceAccount', async () => {
    await eventually('the Secret and the entry', async () => {
      await readSecret(tenant, 'ecr-login');
      assert.deepEqual(pullSecretNames(await core().readNamespacedServiceAccount({ namespace: tenant, name: 'default' })), ['ecr-login']);
    });
  });

  it('requests a token for a ServiceAccount opted in to keyless identity, for STS, short-lived: allowed', async () => {
    await core().createNamespacedServiceAccount({
      namespace: tenant,
      body: {
        metadata: { name: 'keyless', annotations: { 'ecr-login/server': server, 'ecr-login/identity': 'service-account', 'ecr-login/role-arn': tenantRole } },
      },
    });
    const token = await stolen.createNamespacedServiceAccountToken({
      namespace: tenant,
      name: 'keyless',
      body: { spec: { audiences: ['sts.amazonaws.com'], expirationSeconds: 600 } },
    });
    assert.ok(token.status?.token);
    // And the controller itself serves it: TokenRequest, AssumeRoleWithWebIdentity, the Secret.
    await eventually("the keyless ServiceAccount's Secret", async () => {
      try {
        await readSecret(tenant, 'ecr-login-keyless');
      } catch (error) {
        throw new Error(
          `not yet; the controller said: ${controller.logs
            .filter((line) => line.includes('keyless') || line.includes('"warn"'))
            .slice(-5)
            .join('')}`,
          { cause: error },
        );
      }
    });
  });

  it('refuses a token for the Kubernetes API, however opted in the ServiceAccount is', async () => {
    await refused(
      stolen.createNamespacedServiceAccountToken({
        namespace: tenant,
        name: 'keyless',
        body: { spec: { audiences: [cluster().issuer], expirationSeconds: 600 } },
      }),
      /audience sts\.amazonaws\.com only/,
    );
  });

  it('refuses a token for a ServiceAccount that did not opt in (kube-system/default here)', async () => {
    await refused(
      stolen.createNamespacedServiceAccountToken({
        namespace: 'kube-system',
        name: 'default',
        body: { spec: { audiences: ['sts.amazonaws.com'], expirationSeconds: 600 } },
      }),
      /opted in to keyless identity/,
    );
    await refused(
      stolen.createNamespacedServiceAccountToken({
        namespace: tenant,
        name: 'default',
        body: { spec: { audiences: ['sts.amazonaws.com'], expirationSeconds: 600 } },
      }),
      /opted in to keyless identity/,
    );
  });

  it('refuses a long-lived token', async () => {
    await refused(
      stolen.createNamespacedServiceAccountToken({
        namespace: tenant,
        name: 'keyless',
        body: { spec: { audiences: ['sts.amazonaws.com'], expirationSeconds: 86_400 } },
      }),
      /at most one hour/,
    );
  });

  it('refuses Secrets that are not labelled dockerconfigjson Secrets, and any change to one that is not ours', async () => {
    await refused(
      stolen.createNamespacedSecret({ namespace: tenant, body: { metadata: { name: 'loot' }, type: 'Opaque', data: { a: 'Yg==' } } }),
      /may write only/,
    );
    await refused(
      stolen.createNamespacedSecret({
        namespace: tenant,
        body: {
          metadata: { name: 'tls-loot', labels: { 'app.kubernetes.io/managed-by': 'kube-ecrlogin' } },
          type: 'kubernetes.io/tls',
          data: { 'tls.crt': 'eA==', 'tls.key': 'eA==' },
        },
      }),
      /may write only/,
    );
    await refused(
      stolen.createNamespacedSecret({
        namespace: tenant,
        body: {
          metadata: { name: 'unlabelled' },
          type: 'kubernetes.io/dockerconfigjson',
          data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
        },
      }),
      /may write only/,
    );
    await core().createNamespacedSecret({ namespace: tenant, body: { metadata: { name: 'theirs' }, type: 'Opaque', data: { a: 'Yg==' } } });
    await refused(
      stolen.patchNamespacedSecret(
        { namespace: tenant, name: 'theirs', body: { metadata: { labels: { 'app.kubernetes.io/managed-by': 'kube-ecrlogin' } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
      /may write only/,
    );
    await refused(stolen.deleteNamespacedSecret({ namespace: tenant, name: 'theirs' }), /may write only/);
  });

  it('refuses changing a ServiceAccount beyond imagePullSecrets and its own record', async () => {
    await refused(
      stolen.patchNamespacedServiceAccount(
        { namespace: tenant, name: 'default', body: { metadata: { labels: { owned: 'yes' } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
      /only imagePullSecrets/,
    );
    await refused(
      stolen.patchNamespacedServiceAccount(
        { namespace: tenant, name: 'default', body: { metadata: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/admin' } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
      /only imagePullSecrets/,
    );
    const patched = await stolen.patchNamespacedServiceAccount(
      { namespace: tenant, name: 'default', body: { imagePullSecrets: [{ name: 'ecr-login' }, { name: 'extra' }] } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    assert.deepEqual(pullSecretNames(patched), ['ecr-login', 'extra'], 'imagePullSecrets may change');
  });
});

/** The policy's match condition narrowed to one user. */
function onlyFor(object: Manifest, username: string): Manifest {
  if (object.kind !== 'ValidatingAdmissionPolicy') return object;
  const copy = structuredClone(object);
  const spec = copy['spec'] as { matchConditions: { name: string; expression: string }[] };
  spec.matchConditions = [{ name: 'the-test-controller', expression: `request.userInfo.username == '${username}'` }];
  return copy;
}
