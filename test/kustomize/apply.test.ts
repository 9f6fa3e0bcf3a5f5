// The manifests against the real API server: every overlay and component passes a server-side dry-run
// apply (schema validation, including the Argo CD, Flux and Prometheus Operator CRDs), and the
// Deployment's and the CronJob's Pods are admitted into a namespace that enforces the restricted Pod
// Security Standard, while a Pod that is not restricted is refused there.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { cluster, uniqueName } from '../support/cluster.ts';
import {
  apply,
  cleanUp,
  core,
  createNamespace,
  find,
  inNamespace,
  installCrds,
  kustomizations,
  kustomize,
  kustomizeRoot,
  podTemplateOf,
  Scratch,
  type Manifest,
} from './support.ts';

/** Components whose API needs a newer Kubernetes than the oldest tested (string order works for 1.3x). */
const minimumMinor: Readonly<Record<string, string>> = { 'components/admission-policy': '1.36' };

describe('the manifests on a real API server', () => {
  let scratch: Scratch;
  const namespaces: string[] = [];

  before(async () => {
    scratch = new Scratch();
    await installCrds();
  });

  after(async () => {
    scratch.remove();
    await cleanUp(namespaces.map((name) => ({ kind: 'Namespace', name })));
  });

  describe('apply server-side (dry run)', () => {
    let namespace: string;
    before(async () => {
      namespace = await createNamespace(uniqueName('dryrun'));
      namespaces.push(namespace);
    });

    const dryRun = async (objects: readonly Manifest[]): Promise<void> => {
      const { stdout, stderr } = await apply(objects, { dryRun: true });
      for (const object of objects) assert.match(stdout, new RegExp(`/${object.metadata.name} serverside-applied \\(server dry run\\)`));
      assert.equal(stderr, '', 'no warnings');
    };

    for (const overlay of kustomizations.overlays) {
      it(`kustomize/${overlay}, moved into a test namespace`, async () => {
        await dryRun(await kustomize(inNamespace(scratch, overlay.replace('/', '-'), namespace, overlay)));
      });
    }

    it('kustomize/overlays/seed-compatible as it is, with kubectl apply --namespace', async () => {
      const objects = await kustomize(join(kustomizeRoot, 'overlays', 'seed-compatible'));
      const { stdout, stderr } = await apply(objects, { dryRun: true, namespace });
      assert.match(stdout, /cronjob.batch\/kube-ecrlogin serverside-applied/);
      assert.equal(stderr, '');
    });

    for (const component of kustomizations.components) {
      const needs = minimumMinor[component];
      if (needs !== undefined && cluster().minor < needs) {
        it(`kustomize/${component} over the base is refused before Kubernetes ${needs}, naming the missing kind`, async () => {
          const objects = await kustomize(inNamespace(scratch, component.replace('/', '-'), namespace, 'base', [component]));
          await assert.rejects(dryRun(objects), /no matches for kind "MutatingAdmissionPolicy/);
        });
        continue;
      }
      it(`kustomize/${component} over the base`, async () => {
        await dryRun(await kustomize(inNamespace(scratch, component.replace('/', '-'), namespace, 'base', [component])));
      });
    }

    it('every component that fits a Deployment, together', async () => {
      const components = ['irsa', 'keyless-tenants', 'high-availability', 'prometheus', 'static-credentials', 'admission-webhook'].map(
        (c) => `components/${c}`,
      );
      await dryRun(await kustomize(inNamespace(scratch, 'all-deployment', namespace, 'base', components)));
    });

    it('every component that fits the CronJob, together', async () => {
      const components = ['cronjob', 'static-credentials', 'keyless-tenants', 'pod-identity'].map((c) => `components/${c}`);
      await dryRun(await kustomize(inNamespace(scratch, 'all-cronjob', namespace, 'base', components)));
    });

    it('a CRD-validated field that is wrong is refused (the CRDs are really checked)', async () => {
      const app = find(await kustomize(inNamespace(scratch, 'argocd-wrong', namespace, 'overlays/argocd')), 'Application');
      const wrong = structuredClone(app);
      (wrong['spec'] as Record<string, unknown>)['ignoreDifferences'] = [{ kind: 'ServiceAccount', managedFieldsManagers: 'kube-ecrlogin' }];
      await assert.rejects(apply([wrong], { dryRun: true }), /managedFieldsManagers/);
    });
  });

  describe('Pod Security admission', () => {
    let namespace: string;
    let objects: Manifest[];
    let cronJob: Manifest;
    const pods = (): k8s.CoreV1Api => core();

    before(async () => {
      namespace = uniqueName('restricted');
      namespaces.push(namespace);
      objects = await kustomize(inNamespace(scratch, 'psa', namespace, 'base'));
      cronJob = find(await kustomize(inNamespace(scratch, 'psa-cron', namespace, 'base', ['components/cronjob', 'components/static-credentials'])), 'CronJob');
      // The Namespace object from the base, with its own Pod Security labels, under the test's name.
      const ns = find(objects, 'Namespace');
      await apply([{ ...ns, metadata: { ...ns.metadata, name: namespace } }]);
      await apply([find(objects, 'ServiceAccount'), find(objects, 'ConfigMap')]);
    });

    it('the base Namespace enforces the restricted standard', async () => {
      const ns = await core().readNamespace({ name: namespace });
      assert.equal(ns.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
    });

    for (const kind of ['Deployment', 'CronJob']) {
      it(`the ${kind} is created without a Pod Security warning, and its Pod is admitted`, async () => {
        const workload = kind === 'Deployment' ? find(objects, 'Deployment') : cronJob;
        const { stderr } = await apply([workload]);
        assert.doesNotMatch(stderr, /PodSecurity|Warning/, stderr);
        const template = podTemplateOf(workload);
        const pod = await pods().createNamespacedPod({
          namespace,
          body: {
            metadata: { generateName: `${kind.toLowerCase()}-`, labels: template.metadata?.labels ?? {} },
            spec: template.spec as unknown as k8s.V1PodSpec,
          },
        });
        // No scheduler or kubelet here: admitted, and Pending for ever.
        assert.equal(pod.status?.phase, 'Pending');
        assert.equal(pod.spec?.securityContext?.runAsUser, 65532);
      });
    }

    it('a Pod that is not restricted is refused in that namespace', async () => {
      const template = podTemplateOf(find(objects, 'Deployment'));
      const spec = structuredClone(template.spec) as unknown as k8s.V1PodSpec;
      const container = spec.containers[0];
      assert.ok(container);
      container.securityContext = { ...container.securityContext, allowPrivilegeEscalation: true, capabilities: {} };
      await assert.rejects(
        pods().createNamespacedPod({ namespace, body: { metadata: { generateName: 'unrestricted-' }, spec } }),
        (error: unknown) =>
          error instanceof k8s.ApiException &&
          error.code === 403 &&
          /violates PodSecurity "restricted/.test((JSON.parse(String(error.body)) as { message: string }).message),
      );
    });
  });
});
