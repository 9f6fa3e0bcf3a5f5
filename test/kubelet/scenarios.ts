// Real Pods pull real images with kube-ecrlogin's Secrets: a kubelet and containerd on this machine,
// pulling from the ECR-shaped registry with the tokens the AWS test server issued, the controller
// running as its manifests install it. Each scenario is asserted on Pod status, the kubelet's Events
// and the registry's log.
//
// Run by `make test-kubelet` (test/kubelet/run.ts), as root: it is not a *.test.ts file, so `make test`
// never picks it up.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { uniqueName } from '../support/cluster.ts';
import { controllerKeys, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { installController, kubectl, Scratch, toYaml, type InstalledController, type Manifest } from '../kustomize/support.ts';
import { raceObjects } from '../admission/race.ts';
import { freePorts, kubeMinor } from '../cluster/controlplane.ts';
import { images, registries, startTestNode, type TestNode } from './node.ts';
import { createPod, describePod, failedPulls, onTheNode, pulledEvent, pullSecretsOf, settled } from './pods.ts';
import type { RegistryRequest } from './registry.ts';

/** Short-lived tokens, refreshed at half their life: a refresh in place happens within seconds. */
const tokenLifetimeSeconds = 20;
const refreshConfig = 'refresh:\n  margin: 50%\n  jitter: 0%\n  minInterval: 1s\n';
const raceTries = Number(process.env['KUBELET_RACE_TRIES'] ?? 5);
const paramsName = 'kube-ecrlogin-admission';
/** Namespaces with this label are the admission policy's (its binding selects them). */
const bindingLabel = 'kube-ecrlogin.test/admission';
/** Namespaces with this label are the admission webhook's (its namespaceSelector selects them). */
const webhookLabel = 'kube-ecrlogin.test/webhook';
/** The admission policy is installed where it exists: MutatingAdmissionPolicy v1, Kubernetes 1.36 and later. */
const policy = kubeMinor() !== '1.34';

describe("real Pods pull real images with kube-ecrlogin's Secrets", () => {
  let node: TestNode;
  let scratch: Scratch;
  let installed: InstalledController;
  let controller: TestController;
  const core = (): k8s.CoreV1Api => node.plane.adminConfig().makeApiClient(k8s.CoreV1Api);
  /** Labels of a Namespace the controller serves; with `bound`, the admission policy's binding matches it, with `hooked` the webhook's. */
  let served: Record<string, string>;
  let bound: Record<string, string>;
  let hooked: Record<string, string>;

  /** A Namespace the controller serves; waits for its default ServiceAccount. */
  const namespace = async (prefix: string, annotations: Record<string, string>, labels = served): Promise<string> => {
    const name = uniqueName(prefix);
    await core().createNamespace({ body: { metadata: { name, labels, annotations } } });
    await eventually('the default ServiceAccount', () => core().readNamespacedServiceAccount({ namespace: name, name: 'default' }));
    return name;
  };
  /** Waits until a ServiceAccount lists a pull Secret, as kube-ecrlogin makes it do. */
  const listsSecret = (ns: string, serviceAccount: string, secret: string): Promise<void> =>
    eventually(`ServiceAccount ${ns}/${serviceAccount} to list ${secret}`, async () => {
      const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: serviceAccount });
      assert.ok(
        (sa.imagePullSecrets ?? []).some((ref) => ref.name === secret),
        `lists ${JSON.stringify(sa.imagePullSecrets ?? [])}`,
      );
    });
  const pod = (ns: string, podImages: readonly string[], options: { serviceAccountName?: string; imagePullSecrets?: string[] } = {}): Promise<k8s.V1Pod> =>
    createPod(node.plane, ns, node.nodeName, { images: podImages, ...options });
  /** Registry requests for a repository since a moment. */
  const pulls = (since: number, host: string, repository: string): RegistryRequest[] =>
    node.registry.requests.filter((r) => r.at >= since && r.host === host && r.repository === repository && r.kind === 'manifest');

  before(async () => {
    const started = Date.now();
    node = await startTestNode({ tokenLifetimeSeconds, log: (message) => process.stderr.write(`test-kubelet: ${message}\n`) });
    process.stderr.write(`test-kubelet: Node ${node.nodeName} registered on Kubernetes ${node.minor} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    node.aws.addUser(controllerKeys);
    useAwsEndpoint(node.tap.endpoint);
    scratch = new Scratch();
    const suffix = uniqueName('kubelet');
    // Both admission components beside each other, each bound to Namespaces with its own label: the
    // webhook on every minor, the policy where it exists. The webhook is reached on loopback (no Service).
    const [webhookPort = 0] = await freePorts(1);
    const configuration = `kube-ecrlogin-${suffix}`;
    installed = await installController(scratch, {
      namespace: suffix,
      suffix,
      components: [...(policy ? ['components/admission-policy'] : []), 'components/admission-webhook'],
      extraKinds: [...(policy ? ['MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding'] : []), 'MutatingWebhookConfiguration'],
      edit: (objects) => objects.map((object) => bindAdmission(object, { suffix, configuration, webhookPort })),
    });
    await core().replaceNamespacedConfigMap({
      namespace: installed.namespace,
      name: 'kube-ecrlogin-config',
      body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': refreshConfig } },
    });
    controller = await startTestController({
      kubeConfig: installed.kubeConfig,
      user: installed.user,
      args: [
        '--namespace',
        installed.namespace,
        ...(policy ? ['--admission-params', paramsName] : []),
        '--webhook',
        '--webhook-bind-address',
        `127.0.0.1:${webhookPort}`,
        '--webhook-cert-hosts',
        '127.0.0.1',
        '--webhook-configuration',
        configuration,
      ],
    });
    served = { [controller.label.key]: controller.label.value };
    bound = { ...served, [bindingLabel]: suffix };
    hooked = { ...served, [webhookLabel]: suffix };
    await eventually(
      'the webhook serving a trusted certificate',
      () => {
        assert.equal(controller.running.admission?.ready, true);
        return Promise.resolve();
      },
      { timeoutMs: 60_000 },
    );
    // The API server takes up a new policy or webhook configuration a moment after it is written: wait
    // until a dry-run Pod in a Namespace of each shows it at work (a Pod naming a Secret of its own, so
    // that the ServiceAccount admission plugin copies nothing).
    for (const [what, labels] of [...(policy ? [['the admission policy', bound] as const] : []), ['the admission webhook', hooked] as const]) {
      const probe = await namespace('probe', { 'ecr-login/server': registries.main }, labels);
      await eventually(
        `${what} at work`,
        async () => {
          const dry = await core().createNamespacedPod({
            namespace: probe,
            dryRun: 'All',
            body: { metadata: { name: 'probe' }, spec: { imagePullSecrets: [{ name: 'mine' }], containers: [{ name: 'c', image: images.app }] } },
          });
          assert.deepEqual(pullSecretsOf(dry), ['mine', 'ecr-login']);
        },
        { timeoutMs: 60_000 },
      );
    }
  });

  after(async () => {
    // The control plane, the Node and every Pod go with node.stop(): nothing to delete one by one.
    await controller?.stop();
    scratch?.remove();
    await node?.stop();
  });

  describe('1. an annotated Namespace', () => {
    it('gives a Pod that names no Secret ours through its ServiceAccount, and the Pod pulls as AWS and runs', async () => {
      const ns = await namespace('pull', { 'ecr-login/server': registries.main });
      await listsSecret(ns, 'default', 'ecr-login');
      const since = Date.now();
      const made = await pod(ns, [images.app]);
      assert.deepEqual(pullSecretsOf(made), ['ecr-login'], 'the ServiceAccount admission plugin copied our Secret');
      const result = await settled(node.plane, ns, made.metadata!.name!);
      assert.equal(result.outcome, 'running', describePod(result.pod));
      assert.ok(pulledEvent(result.events, images.app), 'a Pulled Event for the image');
      const seen = pulls(since, registries.main, 'app');
      assert.ok(
        seen.some((r) => r.user === 'AWS' && r.outcome === 'ok' && r.status === 200),
        `the registry served the manifest to AWS: ${JSON.stringify(seen)}`,
      );
      assert.ok(
        seen.every((r) => r.outcome === 'ok' || r.outcome === 'anonymous'),
        'no refused credentials',
      );
    });

    it('refuses the same Pod in a Namespace without the annotation: 401 Unauthorized', async () => {
      const ns = await namespace('no-annotation', {});
      const since = Date.now();
      const made = await pod(ns, [images.app]);
      assert.deepEqual(pullSecretsOf(made), []);
      const result = await settled(node.plane, ns, made.metadata!.name!);
      assert.equal(result.outcome, 'refused', describePod(result.pod));
      assert.match(failedPulls(result.events)[0]?.message ?? '', /401 Unauthorized/);
      const seen = pulls(since, registries.main, 'app');
      assert.ok(seen.length > 0 && seen.every((r) => r.outcome === 'anonymous' && r.status === 401), `only anonymous requests: ${JSON.stringify(seen)}`);
    });
  });

  describe('2. rotation', () => {
    it('refreshes the token in place, a new Pod still pulls, and a Secret holding the old token is refused', async () => {
      const ns = await namespace('rotate', { 'ecr-login/server': registries.main });
      await listsSecret(ns, 'default', 'ecr-login');
      const first = await readSecret(core(), ns, 'ecr-login');
      const oldPassword = passwordFor(first, registries.main);
      const oldToken = node.tap.book.find(oldPassword);
      assert.ok(oldToken, 'the Secret holds a token the AWS test server issued');
      const refreshed = await eventually(
        'the token refreshed in place',
        async () => {
          const secret = await readSecret(core(), ns, 'ecr-login');
          assert.notEqual(passwordFor(secret, registries.main), oldPassword);
          return secret;
        },
        { timeoutMs: tokenLifetimeSeconds * 1000 + 10_000, intervalMs: 250 },
      );
      assert.equal(refreshed.metadata?.uid, first.metadata?.uid, 'the same Secret, updated: never deleted and created again');
      const newToken = node.tap.book.find(passwordFor(refreshed, registries.main));
      assert.ok(newToken && newToken.expiresAt > oldToken.expiresAt);

      const current = await pod(ns, [images.app]);
      const ran = await settled(node.plane, ns, current.metadata!.name!);
      assert.equal(ran.outcome, 'running', describePod(ran.pod));
      assert.ok(pulledEvent(ran.events, images.app));

      // What a Secret nobody refreshes meets: the same bytes as before the refresh, once that token has
      // expired. The registry's clock is moved past the old token's expiry (the new one is still
      // valid there), for this Pod's pull only.
      await core().createNamespacedSecret({
        namespace: ns,
        body: { metadata: { name: 'stale' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': first.data!['.dockerconfigjson']! } },
      });
      node.registryClockOffsetMs = oldToken.expiresAt + 1_000 - Date.now();
      try {
        const since = Date.now();
        const stale = await pod(ns, [images.app], { imagePullSecrets: ['stale'] });
        const refused = await settled(node.plane, ns, stale.metadata!.name!);
        assert.equal(refused.outcome, 'refused', describePod(refused.pod));
        assert.match(failedPulls(refused.events)[0]?.message ?? '', /403 Forbidden/);
        const seen = pulls(since, registries.main, 'app');
        assert.ok(
          seen.some((r) => r.user === 'AWS' && r.outcome === 'expired' && r.status === 403),
          `the registry refused the expired token: ${JSON.stringify(seen)}`,
        );
      } finally {
        node.registryClockOffsetMs = 0;
      }
    });
  });

  describe('3. the GitOps race: an annotated Namespace applied together with a 3-replica Deployment', () => {
    interface RaceCase {
      readonly name: string;
      /** Why the case cannot run here, if it cannot. */
      readonly skip: () => string | false;
      readonly labels: () => Record<string, string>;
      /** Every Pod must get the Secret and run. */
      readonly closes: boolean;
    }
    const cases: RaceCase[] = [
      { name: 'without admission', skip: () => false, labels: () => served, closes: false },
      {
        name: 'with the admission policy (MutatingAdmissionPolicy)',
        skip: () => (policy ? false : 'MutatingAdmissionPolicy v1 needs Kubernetes 1.36 or later'),
        labels: () => bound,
        closes: true,
      },
      { name: 'with the admission webhook', skip: () => false, labels: () => hooked, closes: true },
    ];

    for (const c of cases) {
      it(`${c.name}: every Pod with the Secret runs, every Pod without it is refused`, { skip: c.skip() }, async (t) => {
        let tries = 0;
        let pods = 0;
        let missed = 0;
        let backedOff = 0;
        // Where nothing closes the race, it is lost now and then (a few Pods in twenty): try on until it
        // has been lost once, so that what a user meets then is seen for real.
        while (tries < raceTries || (!c.closes && missed === 0 && tries < 3 * raceTries)) {
          const result = await raceOnTheNode(c.labels());
          tries++;
          pods += result.pods;
          missed += result.missed;
          backedOff += result.backedOff;
        }
        t.diagnostic(
          `${c.name}: ${missed} of ${pods} Pods (${tries} tries) created without the Secret${missed > 0 ? ', each refused (401) and left in ErrImagePull/ImagePullBackOff' : ''}; ` +
            `${backedOff} with it pulled before it existed and ran after the kubelet's back-off`,
        );
        assert.equal(pods, tries * 3);
        if (c.closes) assert.equal(missed, 0, `${c.name}: ${missed} of ${pods} Pods missed the Secret`);
      });
    }

    /**
     * One `kubectl apply` of the Namespace and the Deployment; then, for each Pod: with the Secret in
     * its spec it runs (through the kubelet's back-off if it pulled before the Secret existed); without
     * it, it is refused and stays so.
     */
    async function raceOnTheNode(labels: Record<string, string>): Promise<{ pods: number; missed: number; backedOff: number }> {
      const ns = uniqueName('race');
      const { objects, secret } = raceObjects({ level: 'namespace', server: registries.main, labels }, ns);
      const applied = await kubectl(['apply', '-f', '-'], toYaml(objects.map((object) => onTheNodeTemplate(object, node.nodeName))));
      assert.equal(applied.code, 0, applied.stderr);
      const list = await eventually(
        `3 Pods in ${ns}`,
        async () => {
          const found = await core().listNamespacedPod({ namespace: ns });
          assert.equal(found.items.length, 3);
          return found.items;
        },
        { timeoutMs: 60_000 },
      );
      let missed = 0;
      let backedOff = 0;
      await Promise.all(
        list.map(async (item) => {
          const name = item.metadata!.name!;
          if (pullSecretsOf(item).includes(secret)) {
            const ran = await eventually(
              `Pod ${ns}/${name}, which has the Secret, running`,
              async () => {
                const result = await settled(node.plane, ns, name);
                assert.equal(result.outcome, 'running', describePod(result.pod));
                assert.ok(pulledEvent(result.events, images.web));
                return result;
              },
              { timeoutMs: 90_000, intervalMs: 1_000 },
            );
            if (failedPulls(ran.events).length > 0) backedOff++;
          } else {
            missed++;
            const result = await settled(node.plane, ns, name);
            assert.equal(result.outcome, 'refused', describePod(result.pod));
            assert.match(failedPulls(result.events)[0]?.message ?? '', /401 Unauthorized/);
          }
        }),
      );
      // Those refused stay refused, even with the Secret now in place: their spec never names it.
      if (missed > 0) {
        await listsSecret(ns, 'default', secret);
        const later = await core().listNamespacedPod({ namespace: ns });
        const runningWithout = later.items.filter((p) => !pullSecretsOf(p).includes(secret) && p.status?.phase === 'Running');
        assert.deepEqual(runningWithout.map(describePod), []);
      }
      return { pods: list.length, missed, backedOff };
    }
  });

  describe('4. ServiceAccount-level annotations and ecr-login/service-accounts', () => {
    it('lets only the ServiceAccounts ecr-login/service-accounts names pull', async () => {
      const ns = await namespace('chosen', { 'ecr-login/server': registries.main, 'ecr-login/service-accounts': 'deployer' });
      for (const name of ['deployer', 'other']) await core().createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
      await listsSecret(ns, 'deployer', 'ecr-login');
      const outcomes = await pullAs(ns, ['deployer', 'other', 'default']);
      assert.deepEqual(outcomes, { deployer: 'running', other: 'refused', default: 'refused' });
    });

    it('lets a ServiceAccount annotated on its own pull, and no other ServiceAccount of its Namespace', async () => {
      const ns = await namespace('sa-level', {});
      await core().createNamespacedServiceAccount({
        namespace: ns,
        body: { metadata: { name: 'builder', annotations: { 'ecr-login/server': registries.main } } },
      });
      await listsSecret(ns, 'builder', 'ecr-login-builder');
      const outcomes = await pullAs(ns, ['builder', 'default']);
      assert.deepEqual(outcomes, { builder: 'running', default: 'refused' });
    });

    /** One Pod per ServiceAccount, at once; each one's outcome. */
    async function pullAs(ns: string, serviceAccounts: readonly string[]): Promise<Record<string, string>> {
      const results = await Promise.all(
        serviceAccounts.map(async (serviceAccountName) => {
          const made = await pod(ns, [images.app], { serviceAccountName });
          const result = await settled(node.plane, ns, made.metadata!.name!);
          if (result.outcome === 'running') assert.ok(pulledEvent(result.events, images.app));
          else assert.match(failedPulls(result.events)[0]?.message ?? '', /401 Unauthorized/);
          return [serviceAccountName, result.outcome] as const;
        }),
      );
      return Object.fromEntries(results);
    }
  });

  describe('5. one Secret for two registries', () => {
    it('pulls two containers from two ECR hosts (two accounts, two regions) with one Pod', async () => {
      const ns = await namespace('two', { 'ecr-login/server': `${registries.main},${registries.second}` });
      await listsSecret(ns, 'default', 'ecr-login');
      const secret = await readSecret(core(), ns, 'ecr-login');
      const tokens = [registries.main, registries.second].map((host) => node.tap.book.find(passwordFor(secret, host)));
      assert.deepEqual(
        tokens.map((token) => token?.region),
        ['us-east-1', 'eu-west-1'],
        'one token per region, each for its host',
      );
      const since = Date.now();
      const made = await pod(ns, [images.app, images.tools]);
      const result = await settled(node.plane, ns, made.metadata!.name!);
      assert.equal(result.outcome, 'running', describePod(result.pod));
      for (const image of [images.app, images.tools]) assert.ok(pulledEvent(result.events, image), `a Pulled Event for ${image}`);
      for (const [host, repository] of [
        [registries.main, 'app'],
        [registries.second, 'tools'],
      ] as const) {
        assert.ok(
          pulls(since, host, repository).some((r) => r.user === 'AWS' && r.outcome === 'ok'),
          `${host}/${repository} served to AWS`,
        );
      }
    });
  });
});

/** The Deployment's Pod template put on the test Node, pulling every time; other objects unchanged. */
function onTheNodeTemplate(object: Manifest, nodeName: string): Manifest {
  if (object.kind !== 'Deployment') return object;
  const copy = structuredClone(object);
  const template = (copy['spec'] as { template: { spec: k8s.V1PodSpec } }).template;
  template.spec = { ...template.spec, ...onTheNode(nodeName), containers: template.spec.containers.map((c) => ({ ...c, imagePullPolicy: 'Always' })) };
  return copy;
}

/**
 * The admission components bound to this run only: the policy's binding to its parameter ConfigMap and
 * to Namespaces carrying its label; the webhook configuration to the controller on loopback and to
 * Namespaces carrying the webhook's label, with the webhook's ClusterRole naming that configuration.
 */
function bindAdmission(object: Manifest, run: { suffix: string; configuration: string; webhookPort: number }): Manifest {
  const copy = structuredClone(object);
  if (copy.kind === 'MutatingAdmissionPolicyBinding') {
    const spec = copy['spec'] as { paramRef: { namespace: string }; matchResources: Record<string, unknown> };
    spec.paramRef.namespace = run.suffix;
    spec.matchResources = { namespaceSelector: { matchLabels: { [bindingLabel]: run.suffix } } };
  }
  if (copy.kind === 'MutatingWebhookConfiguration') {
    for (const webhook of copy['webhooks'] as { clientConfig: Record<string, unknown>; namespaceSelector: unknown }[]) {
      webhook.clientConfig = { url: `https://127.0.0.1:${run.webhookPort}/mutate-pods` };
      webhook.namespaceSelector = { matchLabels: { [webhookLabel]: run.suffix } };
    }
  }
  if (copy.kind === 'ClusterRole' && copy.metadata.name.startsWith('kube-ecrlogin-webhook')) {
    for (const rule of copy['rules'] as { resourceNames?: string[] }[]) if (rule.resourceNames !== undefined) rule.resourceNames = [run.configuration];
  }
  return copy;
}

async function readSecret(core: k8s.CoreV1Api, namespace: string, name: string): Promise<k8s.V1Secret> {
  return eventually(`Secret ${namespace}/${name}`, () => core.readNamespacedSecret({ namespace, name }));
}

/** The password a dockerconfigjson Secret holds for a registry host. */
function passwordFor(secret: k8s.V1Secret, host: string): string {
  const config = JSON.parse(Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8')) as {
    auths?: Record<string, { password?: string }>;
  };
  const password = config.auths?.[host]?.password;
  if (password === undefined) throw new Error(`Secret ${secret.metadata?.name ?? '?'} has no password for ${host}`);
  return password;
}
