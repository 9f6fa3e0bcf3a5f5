// kustomize/components/admission-policy on a real API server (Kubernetes 1.36 and later): the
// MutatingAdmissionPolicy, its binding and the controller's parameter ConfigMap, installed from the
// manifests and run with the manifests' RBAC. The GitOps race (an annotated Namespace or
// ServiceAccount applied with a Deployment) is repeated with and without the component.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from '../aws/server.ts';
import { repoRoot } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { cleanUp, installController, Scratch, type InstalledController, type Manifest } from '../kustomize/support.ts';
import { deleteNamespaces, describeTally, race, type RaceTally } from './race.ts';

const server = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const tries = Number(process.env['ADMISSION_RACE_TRIES'] ?? 20);
const paramsName = 'kube-ecrlogin-admission';
const supported = cluster().minor !== '1.34';

describe('admission policy (MutatingAdmissionPolicy)', { skip: supported ? false : 'MutatingAdmissionPolicy v1 needs Kubernetes 1.36 or later' }, () => {
  let scratch: Scratch;
  let aws: AwsTestServer;
  let installed: InstalledController;
  let controller: TestController;
  const created: { kind: string; name: string }[] = [];
  const namespaces: string[] = [];
  const core = (): k8s.CoreV1Api => cluster().adminConfig().makeApiClient(k8s.CoreV1Api);
  /** Namespaces with this label are matched by the test's binding (and served by its controller). */
  let bound: Record<string, string>;
  /** Served by the controller, but outside the binding: the cluster without the component. */
  let unbound: Record<string, string>;

  /** A Namespace served by the controller, bound to the policy unless said otherwise. */
  const namespace = async (prefix: string, annotations: Record<string, string>, labels = bound): Promise<string> => {
    const name = uniqueName(prefix);
    await core().createNamespace({ body: { metadata: { name, labels, annotations } } });
    namespaces.push(name);
    await eventually('the default ServiceAccount', () => core().readNamespacedServiceAccount({ namespace: name, name: 'default' }));
    return name;
  };
  const pod = (spec: Partial<k8s.V1PodSpec> = {}): k8s.V1Pod => ({
    metadata: { generateName: 'p-' },
    spec: { containers: [{ name: 'c', image: `${server}/app:1` }], ...spec },
  });
  const createPod = (ns: string, spec: Partial<k8s.V1PodSpec> = {}): Promise<k8s.V1Pod> => core().createNamespacedPod({ namespace: ns, body: pod(spec) });
  const pullSecrets = (p: k8s.V1Pod): string[] => (p.spec?.imagePullSecrets ?? []).map((ref) => ref.name ?? '');
  const params = async (): Promise<Record<string, string>> =>
    (await core().readNamespacedConfigMap({ namespace: installed.namespace, name: paramsName })).data ?? {};

  before(async () => {
    scratch = new Scratch();
    aws = await start();
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    const suffix = uniqueName('map');
    const labelKey = 'kube-ecrlogin.test/admission';
    installed = await installController(scratch, {
      namespace: suffix,
      suffix,
      components: ['components/admission-policy'],
      extraKinds: ['MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding'],
      edit: (objects) => objects.map((object) => (object.kind === 'MutatingAdmissionPolicyBinding' ? bindTo(object, suffix, labelKey) : object)),
    });
    created.push(...installed.created);
    await core().replaceNamespacedConfigMap({
      namespace: installed.namespace,
      name: 'kube-ecrlogin-config',
      body: {
        metadata: { name: 'kube-ecrlogin-config' },
        data: {
          'config.yaml': [
            'rules:',
            '  - name: elsewhere',
            '    namespaces: {names: ["denied-*"]}',
            '    registries: [{account: "999999999999", region: "*"}]',
            '  - name: everyone',
            '    namespaces: {names: ["*"]}',
            '',
          ].join('\n'),
        },
      },
    });
    controller = await startTestController({
      kubeConfig: installed.kubeConfig,
      user: installed.user,
      args: ['--namespace', installed.namespace, '--admission-params', paramsName],
    });
    created.push({ kind: 'Namespace', name: controller.namespace });
    bound = { [controller.label.key]: controller.label.value, [labelKey]: suffix };
    unbound = { [controller.label.key]: controller.label.value };
    await eventually('the parameter ConfigMap, written with the Role limited to its name', async () => {
      assert.equal((await params())['secretName'], 'ecr-login');
    });
    // The API server takes up a new policy, binding and parameter a moment after they are written:
    // wait until a probe Pod shows the policy at work (a Pod naming a Secret of its own, so that the
    // ServiceAccount admission plugin copies nothing).
    const probe = await namespace('probe', { 'ecr-login/server': server });
    await eventually('the policy at work', async () => {
      assert.deepEqual(pullSecrets(await createPod(probe, { imagePullSecrets: [{ name: 'mine' }] })), ['mine', 'ecr-login']);
    });
  });

  after(async () => {
    await controller.stop();
    await aws.close();
    await deleteNamespaces(namespaces);
    await cleanUp(created);
    scratch.remove();
  });

  describe('the GitOps race: an annotated object applied with a 3-replica Deployment', () => {
    const tallies: Record<string, RaceTally> = {};

    after(() => {
      // The figures the README quotes (test/admission/README.md says how to read them).
      const dir = join(repoRoot, '.cache', 'admission');
      mkdirSync(dir, { recursive: true });
      const report = Object.fromEntries(Object.entries(tallies).map(([key, tally]) => [key, { tries: tally.tries, pods: tally.pods, missing: tally.missing }]));
      writeFileSync(join(dir, `policy-race-${cluster().minor}.json`), JSON.stringify({ at: new Date().toISOString(), minor: cluster().minor, ...report }, null, 2) + '\n');
    });

    it(`with the component, Namespace-level: no Pod misses the Secret (${tries} tries)`, async (t) => {
      const tally = await race({ level: 'namespace', server, labels: bound }, tries);
      namespaces.push(...tally.namespaces);
      tallies['policy-namespace'] = tally;
      t.diagnostic(describeTally('policy, Namespace-level', tally));
      assert.equal(tally.pods, tries * 3);
      assert.equal(tally.missing, 0, describeTally('policy, Namespace-level', tally));
    });

    it(`with the component, ServiceAccount-level: the miss rate is measured (${tries} tries)`, async (t) => {
      const tally = await race({ level: 'serviceaccount', server, labels: bound }, tries);
      namespaces.push(...tally.namespaces);
      tallies['policy-serviceaccount'] = tally;
      t.diagnostic(describeTally('policy, ServiceAccount-level', tally));
      assert.equal(tally.pods, tries * 3);
    });

    it(`without the component: the miss rates are measured (${tries} tries each)`, async (t) => {
      for (const level of ['namespace', 'serviceaccount'] as const) {
        const tally = await race({ level, server, labels: unbound }, tries);
        namespaces.push(...tally.namespaces);
        tallies[`none-${level}`] = tally;
        t.diagnostic(describeTally(`no admission, ${level}-level`, tally));
        assert.equal(tally.pods, tries * 3);
      }
    });
  });

  describe('which Pod gets which Secret', () => {
    it('keeps a Pod\'s own imagePullSecrets, in order, and adds ours after them, never twice', async () => {
      const ns = await namespace('own', { 'ecr-login/server': server });
      const mine = await createPod(ns, { imagePullSecrets: [{ name: 'mine' }, { name: 'other' }] });
      assert.deepEqual(pullSecrets(mine), ['mine', 'other', 'ecr-login']);
      const already = await createPod(ns, { imagePullSecrets: [{ name: 'ecr-login' }, { name: 'mine' }] });
      assert.deepEqual(pullSecrets(already), ['ecr-login', 'mine']);
    });

    it('leaves a Pod in a namespace that is not opted in byte-for-byte as it would be without the policy', async () => {
      const inside = await namespace('plain', {});
      const outside = await namespace('plain-unbound', {}, unbound);
      const a = await createPod(inside, { imagePullSecrets: [{ name: 'mine' }] });
      const b = await createPod(outside, { imagePullSecrets: [{ name: 'mine' }] });
      assert.equal(normalized(a), normalized(b));
      const c = await createPod(inside);
      assert.equal(c.spec?.imagePullSecrets, undefined);
    });

    it('gives a namespace the tenant policy denies nothing, once the controller has seen it', async () => {
      const ns = await namespace('denied', { 'ecr-login/server': server });
      await eventually('the exclusion in the parameters', async () => {
        assert.equal((await params())[`exclude.${ns}`], 'PolicyDenied');
      });
      const denied = await createPod(ns);
      assert.deepEqual(pullSecrets(denied), []);
    });

    it('gives the namespace Secret to the ServiceAccounts ecr-login/service-accounts lists, and only to them', async () => {
      const ns = await namespace('listed', { 'ecr-login/server': server, 'ecr-login/service-accounts': 'deployer, builder' });
      for (const name of ['deployer', 'other']) await core().createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
      assert.deepEqual(pullSecrets(await createPod(ns, { serviceAccountName: 'deployer' })), ['ecr-login']);
      assert.deepEqual(pullSecrets(await createPod(ns, { serviceAccountName: 'other' })), []);
      assert.deepEqual(pullSecrets(await createPod(ns)), [], 'default is not listed');
    });

    it('follows ecr-login/secret-name and the ServiceAccount\'s own annotation', async () => {
      const ns = await namespace('named', { 'ecr-login/server': server, 'ecr-login/secret-name': 'team-pull' });
      assert.deepEqual(pullSecrets(await createPod(ns)), ['team-pull']);
      await core().createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'robot', annotations: { 'ecr-login/server': server } } } });
      await eventually('the ServiceAccount in the parameters', async () => {
        assert.equal((await params())[`sa.${ns}.robot`], 'ecr-login-robot');
      });
      // The ServiceAccount admission plugin may copy the list the controller patched in first: either
      // way the Pod ends with both Secrets, once each.
      const robot = await createPod(ns, { serviceAccountName: 'robot', imagePullSecrets: [{ name: 'mine' }] });
      assert.deepEqual(pullSecrets(robot), ['mine', 'ecr-login-robot']);
    });

    it('stops adding the Secret to new Pods once the annotation is removed', async () => {
      const ns = await namespace('removed', { 'ecr-login/server': server });
      assert.deepEqual(pullSecrets(await createPod(ns)), ['ecr-login']);
      await core().patchNamespace(
        { name: ns, body: [{ op: 'remove', path: '/metadata/annotations/ecr-login~1server' }] },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      );
      await eventually('a new Pod without the Secret', async () => {
        assert.ok(!pullSecrets(await createPod(ns)).includes('ecr-login'));
      });
    });
  });

  describe('failure never blocks a Pod', () => {
    it('creates Pods with garbage parameters, and without any, and the controller restores them', async () => {
      const ns = await namespace('garbage', { 'ecr-login/server': server });
      // Pods that name a Secret of their own: the ServiceAccount admission plugin copies nothing into
      // them, so what they end with is the policy's doing alone.
      const own = { imagePullSecrets: [{ name: 'mine' }] };
      await core().replaceNamespacedConfigMap({
        namespace: installed.namespace,
        name: paramsName,
        body: { metadata: { name: paramsName }, data: { secretName: 'Not A Name!', [`sa.${ns}.default`]: '../../x' } },
      });
      await eventually('a Pod created with garbage parameters, given nothing', async () => {
        assert.deepEqual(pullSecrets(await createPod(ns, own)), ['mine']);
      });
      await core().deleteNamespacedConfigMap({ namespace: installed.namespace, name: paramsName });
      await eventually('a Pod created without parameters, given nothing', async () => {
        assert.deepEqual(pullSecrets(await createPod(ns, own)), ['mine']);
      });
      controller.running.parts.admissionParams?.touchAll();
      await eventually('the parameters restored', async () => {
        assert.equal((await params())['secretName'], 'ecr-login');
      });
      await eventually('the mutation back', async () => {
        assert.deepEqual(pullSecrets(await createPod(ns, own)), ['mine', 'ecr-login']);
      });
    });
  });

  describe('what it costs', () => {
    it('mutates inside admission: the audit log shows the Pod sent without the Secret and stored with it, and no controller write per Pod', async () => {
      const ns = await namespace('audit', { 'ecr-login/server': server });
      const since = new Date();
      const made = await createPod(ns);
      assert.deepEqual(pullSecrets(made), ['ecr-login']);
      const plane = cluster();
      await plane.auditCaughtUp();
      const event = plane
        .auditEvents({ resource: 'pods', namespace: ns, verbs: ['create'], since })
        .find((e) => (e.responseObject as k8s.V1Pod | undefined)?.metadata?.name === made.metadata?.name);
      assert.ok(event, 'the Pod creation is in the audit log');
      assert.equal(event.user.username, 'admin');
      assert.deepEqual(pullSecrets(event.requestObject as k8s.V1Pod), []);
      assert.deepEqual(pullSecrets(event.responseObject as k8s.V1Pod), ['ecr-login']);
      assert.deepEqual(plane.writes({ user: controller.user, resource: 'pods' }), [], 'the controller never writes a Pod');
    });
  });
});

/** The test's binding: its own parameter ConfigMap, and only namespaces carrying the test's label. */
function bindTo(binding: Manifest, namespace: string, labelKey: string): Manifest {
  const copy = structuredClone(binding);
  const spec = copy['spec'] as { paramRef: { namespace: string }; matchResources: Record<string, unknown> };
  spec.paramRef.namespace = namespace;
  spec.matchResources = { namespaceSelector: { matchLabels: { [labelKey]: namespace } } };
  return copy;
}

/** A Pod's spec with what differs between any two Pods (names, the token volume's suffix) made equal. */
function normalized(pod: k8s.V1Pod): string {
  return JSON.stringify(pod.spec).replace(/kube-api-access-[a-z0-9]+/g, 'kube-api-access-x');
}
