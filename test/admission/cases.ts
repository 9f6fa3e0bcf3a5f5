// Which Pod gets which Secret: the cases every admission component must pass alike (the policy and the
// webhook), registered as tests by the suite that installs the component.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';

export const server = '111122223333.dkr.ecr.us-east-1.amazonaws.com';

/** The policy ConfigMap every admission suite runs with: `denied-*` namespaces may not have this registry. */
export const admissionConfig = [
  'rules:',
  '  - name: elsewhere',
  '    namespaces: {names: ["denied-*"]}',
  '    registries: [{account: "999999999999", region: "*"}]',
  '  - name: everyone',
  '    namespaces: {names: ["*"]}',
  '',
].join('\n');

export interface AdmissionContext {
  /** Labels of a Namespace the component is bound to (and the test controller serves). */
  bound(): Record<string, string>;
  /** Labels of a Namespace the controller serves but the component is not bound to. */
  unbound(): Record<string, string>;
  /** Remembers a namespace for deletion after the suite. */
  created(namespace: string): void;
  /**
   * Waits until the component knows what the controller decided about an object, where it cannot see
   * for itself (the policy's parameters); the webhook reads it at admission and needs no wait.
   */
  settled(what: { kind: 'PolicyDenied'; namespace: string } | { kind: 'ServiceAccount'; namespace: string; name: string }): Promise<void>;
}

export const core = (): k8s.CoreV1Api => cluster().adminConfig().makeApiClient(k8s.CoreV1Api);

export const pullSecrets = (pod: k8s.V1Pod): string[] => (pod.spec?.imagePullSecrets ?? []).map((ref) => ref.name ?? '');

export function createPod(namespace: string, spec: Partial<k8s.V1PodSpec> = {}): Promise<k8s.V1Pod> {
  return core().createNamespacedPod({
    namespace,
    body: { metadata: { generateName: 'p-' }, spec: { containers: [{ name: 'c', image: `${server}/app:1` }], ...spec } },
  });
}

/** A Namespace with these annotations and labels, once its default ServiceAccount exists. */
export async function createNamespace(
  context: AdmissionContext,
  prefix: string,
  annotations: Record<string, string>,
  labels = context.bound(),
): Promise<string> {
  const name = uniqueName(prefix);
  await core().createNamespace({ body: { metadata: { name, labels, annotations } } });
  context.created(name);
  await eventually('the default ServiceAccount', () => core().readNamespacedServiceAccount({ namespace: name, name: 'default' }));
  return name;
}

/** A Pod's spec with what differs between any two Pods (the token volume's suffix) made equal. */
function normalized(pod: k8s.V1Pod): string {
  return JSON.stringify(pod.spec).replace(/kube-api-access-[a-z0-9]+/g, 'kube-api-access-x');
}

export function registerBehaviourCases(context: AdmissionContext): void {
  const namespace = (prefix: string, annotations: Record<string, string>, labels?: Record<string, string>): Promise<string> =>
    createNamespace(context, prefix, annotations, labels);

  it("keeps a Pod's own imagePullSecrets, in order, and adds ours after them, never twice", async () => {
    const ns = await namespace('own', { 'ecr-login/server': server });
    assert.deepEqual(pullSecrets(await createPod(ns, { imagePullSecrets: [{ name: 'mine' }, { name: 'other' }] })), ['mine', 'other', 'ecr-login']);
    assert.deepEqual(pullSecrets(await createPod(ns, { imagePullSecrets: [{ name: 'ecr-login' }, { name: 'mine' }] })), ['ecr-login', 'mine']);
  });

  it('leaves a Pod in a namespace that is not opted in byte-for-byte as it would be without admission', async () => {
    const inside = await namespace('plain', {});
    const outside = await namespace('plain-unbound', {}, context.unbound());
    const a = await createPod(inside, { imagePullSecrets: [{ name: 'mine' }] });
    const b = await createPod(outside, { imagePullSecrets: [{ name: 'mine' }] });
    assert.equal(normalized(a), normalized(b));
    assert.equal((await createPod(inside)).spec?.imagePullSecrets, undefined);
  });

  it('gives a namespace the tenant policy denies nothing', async () => {
    const ns = await namespace('denied', { 'ecr-login/server': server });
    await context.settled({ kind: 'PolicyDenied', namespace: ns });
    assert.deepEqual(pullSecrets(await createPod(ns)), []);
  });

  it('gives the namespace Secret to the ServiceAccounts ecr-login/service-accounts lists, and only to them', async () => {
    const ns = await namespace('listed', { 'ecr-login/server': server, 'ecr-login/service-accounts': 'deployer, builder' });
    for (const name of ['deployer', 'other']) await core().createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
    assert.deepEqual(pullSecrets(await createPod(ns, { serviceAccountName: 'deployer' })), ['ecr-login']);
    assert.deepEqual(pullSecrets(await createPod(ns, { serviceAccountName: 'other' })), []);
    assert.deepEqual(pullSecrets(await createPod(ns)), [], 'default is not listed');
  });

  it("follows ecr-login/secret-name and the ServiceAccount's own annotation", async () => {
    const ns = await namespace('named', { 'ecr-login/server': server, 'ecr-login/secret-name': 'team-pull' });
    assert.deepEqual(pullSecrets(await createPod(ns)), ['team-pull']);
    await core().createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'robot', annotations: { 'ecr-login/server': server } } } });
    await context.settled({ kind: 'ServiceAccount', namespace: ns, name: 'robot' });
    // A Pod that names a Secret of its own gets nothing from the ServiceAccount admission plugin, so
    // what it ends with is admission's doing alone.
    assert.deepEqual(pullSecrets(await createPod(ns, { serviceAccountName: 'robot', imagePullSecrets: [{ name: 'mine' }] })), ['mine', 'ecr-login-robot']);
  });

  it('stops adding the Secret to new Pods once the annotation is removed', async () => {
    const ns = await namespace('removed', { 'ecr-login/server': server });
    assert.deepEqual(pullSecrets(await createPod(ns, { imagePullSecrets: [{ name: 'mine' }] })), ['mine', 'ecr-login']);
    await core().patchNamespace(
      { name: ns, body: [{ op: 'remove', path: '/metadata/annotations/ecr-login~1server' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await eventually('a new Pod without the Secret', async () => {
      assert.deepEqual(pullSecrets(await createPod(ns, { imagePullSecrets: [{ name: 'mine' }] })), ['mine']);
    });
  });
}
