// GitOps coexistence on ServiceAccount.imagePullSecrets, an atomic list: the real controller (as the
// manifests' own ServiceAccount) serves namespaces while "Git" re-applies a ServiceAccount with
// Server-Side Apply and force, as Argo CD (argocd-controller, ServerSideApply=true) and Flux
// (kustomize-controller) do. What is asserted is what the API server and the controller really do:
//   (a) Git lists the controller's entry: the controller never writes the ServiceAccount;
//   (b) Git does not declare imagePullSecrets: re-applies leave the controller's entry alone;
//   (c) Git declares another list: each apply removes the entry and the controller appends it again,
//       one write per sync, for ever: the fight that not declaring the field, or ignoreDifferences with
//       RespectIgnoreDifferences (Argo CD) / spec.ignore (Flux), avoids;
//   (d) Argo CD with the overlay's settings applies the live value of the ignored list: no write.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { pullSecretNames, readSecret } from '../support/objects.ts';
import { cleanUp, core, installController, Scratch, type InstalledController } from './support.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const managers = { 'Argo CD': 'argocd-controller', Flux: 'kustomize-controller' } as const;

describe('GitOps and the controller on imagePullSecrets', () => {
  let scratch: Scratch;
  let aws: AwsTestServer;
  let installed: InstalledController;
  let controller: TestController;
  const created: { kind: string; name: string }[] = [];

  before(async () => {
    scratch = new Scratch();
    aws = await start();
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    const suffix = uniqueName('gitops');
    installed = await installController(scratch, { namespace: suffix, suffix });
    created.push(...installed.created);
    controller = await startTestController({ kubeConfig: installed.kubeConfig, args: ['--namespace', installed.namespace] });
    created.push({ kind: 'Namespace', name: controller.namespace });
  });

  after(async () => {
    await controller.stop();
    await aws.close();
    scratch.remove();
    await cleanUp(created);
  });

  /** Server-Side Apply of ServiceAccount `app` as a GitOps tool would, with force. */
  const gitApply = (manager: string, namespace: string, declared: { imagePullSecrets?: string[]; labels?: Record<string, string> }) =>
    core().patchNamespacedServiceAccount(
      {
        namespace,
        name: 'app',
        body: {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name: 'app', namespace, labels: { 'app.kubernetes.io/name': 'app', ...declared.labels } },
          ...(declared.imagePullSecrets !== undefined ? { imagePullSecrets: declared.imagePullSecrets.map((name) => ({ name })) } : {}),
        },
        fieldManager: manager,
        force: true,
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply),
    );

  /** The controller's writes to ServiceAccounts in a namespace, from the audit log once it has caught up. */
  const controllerWrites = async (namespace: string): Promise<number> => {
    await cluster().auditCaughtUp();
    return cluster().writes({ user: installed.user, resource: 'serviceaccounts', namespace }).length;
  };

  const entries = async (namespace: string): Promise<string[]> => pullSecretNames(await core().readNamespacedServiceAccount({ namespace, name: 'app' }));

  /** Makes the controller look at the namespace again and waits until it has, healthy. */
  let pokes = 0;
  const reconciled = async (namespace: string): Promise<void> => {
    const since = Date.now();
    await core().patchNamespace(
      { name: namespace, body: { metadata: { labels: { 'kube-ecrlogin.test/poke': String(++pokes) } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually(`a reconcile of ${namespace}`, () => {
      const result = controller.running.parts.controller.lastResults.get(namespace);
      assert.ok(result !== undefined && result.at >= since, 'not yet');
      assert.equal(result.error, undefined);
      assert.equal(result.healthy, true);
      return Promise.resolve();
    });
  };

  /** A served namespace whose ServiceAccount `app` Git creates before the namespace asks for credentials. */
  const setUp = async (prefix: string, manager: string, declared: { imagePullSecrets?: string[] }): Promise<string> => {
    const namespace = uniqueName(prefix);
    created.push({ kind: 'Namespace', name: namespace });
    await createServedNamespace(controller, namespace);
    await gitApply(manager, namespace, declared);
    await core().patchNamespace(
      { name: namespace, body: { metadata: { annotations: { 'ecr-login/server': east, 'ecr-login/service-accounts': 'app' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually('the Secret', () => readSecret(namespace, 'ecr-login'));
    return namespace;
  };

  for (const [tool, manager] of Object.entries(managers)) {
    describe(tool, () => {
      it('(a) Git lists the entry: the controller makes zero writes to the ServiceAccount', async () => {
        const namespace = await setUp('gitops-a', manager, { imagePullSecrets: ['ecr-login'] });
        await reconciled(namespace);
        assert.deepEqual(await entries(namespace), ['ecr-login']);
        await gitApply(manager, namespace, { imagePullSecrets: ['ecr-login'], labels: { revision: '2' } });
        await reconciled(namespace);
        assert.deepEqual(await entries(namespace), ['ecr-login']);
        assert.equal(await controllerWrites(namespace), 0);
      });

      it('(b) Git does not declare imagePullSecrets: re-applies leave the entry, the controller wrote once', async () => {
        const namespace = await setUp('gitops-b', manager, {});
        await eventually('the entry', async () => assert.deepEqual(await entries(namespace), ['ecr-login']));
        const sa = await core().readNamespacedServiceAccount({ namespace, name: 'app' });
        const owner = sa.metadata?.managedFields?.find((f) => JSON.stringify(f.fieldsV1 ?? {}).includes('f:imagePullSecrets'));
        assert.equal(owner?.manager, 'kube-ecrlogin');
        assert.equal(owner.operation, 'Update');

        for (const revision of ['2', '3']) {
          const applied = await gitApply(manager, namespace, { labels: { revision } });
          assert.deepEqual(pullSecretNames(applied), ['ecr-login'], 'the apply itself keeps the entry');
        }
        // The other tool too: neither owns the list.
        const other = manager === managers['Argo CD'] ? managers.Flux : managers['Argo CD'];
        assert.deepEqual(pullSecretNames(await gitApply(other, namespace, {})), ['ecr-login']);
        await reconciled(namespace);
        assert.deepEqual(await entries(namespace), ['ecr-login']);
        assert.equal(await controllerWrites(namespace), 1, 'one JSON Patch, at the start');
      });

      it('(c) Git declares another list: every sync removes the entry and the controller appends it again', async () => {
        const namespace = await setUp('gitops-c', manager, { imagePullSecrets: ['dockerhub'] });
        await eventually('the entry appended', async () => assert.deepEqual(await entries(namespace), ['dockerhub', 'ecr-login']));
        assert.equal(await controllerWrites(namespace), 1);

        for (const sync of [2, 3]) {
          const applied = await gitApply(manager, namespace, { imagePullSecrets: ['dockerhub'] });
          assert.deepEqual(pullSecretNames(applied), ['dockerhub'], 'the forced apply takes the whole atomic list');
          await eventually('the entry appended again', async () => assert.deepEqual(await entries(namespace), ['dockerhub', 'ecr-login']));
          assert.equal(await controllerWrites(namespace), sync, 'one more write per sync');
        }
        const sa = await core().readNamespacedServiceAccount({ namespace, name: 'app' });
        const owner = sa.metadata?.managedFields?.find((f) => JSON.stringify(f.fieldsV1 ?? {}).includes('f:imagePullSecrets'));
        assert.equal(owner?.manager, 'kube-ecrlogin', 'until the next sync takes it back');
      });
    });
  }

  it('(d) Argo CD with ignoreDifferences + RespectIgnoreDifferences applies the live list: no fight', async () => {
    // Git says [dockerhub]; the controller added ecr-login; kube-ecrlogin owns the list, so the
    // Application's managedFieldsManagers rule ignores it and the sync sends the live value.
    const namespace = await setUp('gitops-d', managers['Argo CD'], { imagePullSecrets: ['dockerhub'] });
    await eventually('the entry appended', async () => assert.deepEqual(await entries(namespace), ['dockerhub', 'ecr-login']));
    const live = await entries(namespace);
    const applied = await gitApply(managers['Argo CD'], namespace, { imagePullSecrets: live, labels: { revision: '2' } });
    assert.deepEqual(pullSecretNames(applied), ['dockerhub', 'ecr-login']);
    await reconciled(namespace);
    assert.equal(await controllerWrites(namespace), 1, 'only the first append');
  });
});
