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
import { admissionConfig, core, createNamespace, createPod, pullSecrets, registerBehaviourCases, server } from './cases.ts';
import { deleteNamespaces, describeTally, race, type RaceTally } from './race.ts';

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
  /** Namespaces with this label are matched by the test's binding (and served by its controller). */
  let bound: Record<string, string>;
  /** Served by the controller, but outside the binding: the cluster without the component. */
  let unbound: Record<string, string>;

  const namespace = (prefix: string, annotations: Record<string, string>): Promise<string> =>
    createNamespace(
      { bound: () => bound, unbound: () => unbound, created: (name) => namespaces.push(name), settled: () => Promise.resolve() },
      prefix,
      annotations,
    );
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
        data: { 'config.yaml': admissionConfig },
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
      // The figures the component's README quotes (kustomize/components/admission-policy/README.md).
      const dir = join(repoRoot, '.cache', 'admission');
      mkdirSync(dir, { recursive: true });
      const report = Object.fromEntries(Object.entries(tallies).map(([key, tally]) => [key, { tries: tally.tries, pods: tally.pods, missing: tally.missing }]));
      writeFileSync(
        join(dir, `policy-race-${cluster().minor}.json`),
        JSON.stringify({ at: new Date().toISOString(), minor: cluster().minor, ...report }, null, 2) + '\n',
      );
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
    registerBehaviourCases({
      bound: () => bound,
      unbound: () => unbound,
      created: (name) => namespaces.push(name),
      settled: async (what) => {
        const key = what.kind === 'PolicyDenied' ? `exclude.${what.namespace}` : `sa.${what.namespace}.${what.name}`;
        const value = what.kind === 'PolicyDenied' ? 'PolicyDenied' : `ecr-login-${what.name}`;
        await eventually(`${key} in the parameters`, async () => {
          assert.equal((await params())[key], value);
        });
      },
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
