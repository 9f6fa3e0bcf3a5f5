// kustomize/components/admission-webhook-cert-manager: the webhook with certificates someone else
// makes (cert-manager and its CA injector, played here by the test, since no cert-manager runs in
// the test cluster). The controller, with the component's narrower RBAC, only loads the Secret: it
// serves with that certificate, follows a renewal, and writes neither the Secret nor the webhook
// configuration.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { newBundle } from '../../src/admission/certs.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { freePorts } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { cleanUp, installController, kustomize, Scratch, type InstalledController, type Manifest } from '../kustomize/support.ts';
import { core, createNamespace, createPod, pullSecrets, server } from './cases.ts';

describe('admission webhook with external certificates (cert-manager)', () => {
  let scratch: Scratch;
  let aws: AwsTestServer;
  let installed: InstalledController;
  let controller: TestController;
  let configuration: string;
  let port: number;
  const created: { kind: string; name: string }[] = [];
  const namespaces: string[] = [];
  const labelKey = 'kube-ecrlogin.test/webhook-external';
  let suffix: string;

  /** What cert-manager and its CA injector would do: the Secret, and the caBundle. */
  const issue = async (): Promise<string> => {
    const bundle = newBundle(['127.0.0.1'], { certMs: 3_600_000 }, Date.now());
    const b64 = (text: string): string => Buffer.from(text).toString('base64');
    const body: k8s.V1Secret = {
      metadata: { name: 'kube-ecrlogin-webhook-tls', namespace: installed.namespace },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(bundle.cert), 'tls.key': b64(bundle.key), 'ca.crt': b64(bundle.caBundle) },
    };
    await core()
      .createNamespacedSecret({ namespace: installed.namespace, body })
      .catch(() => core().replaceNamespacedSecret({ namespace: installed.namespace, name: 'kube-ecrlogin-webhook-tls', body }));
    const admission = cluster().adminConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
    await admission.patchMutatingWebhookConfiguration(
      { name: configuration, body: [{ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: b64(bundle.caBundle) }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    return bundle.cert;
  };

  before(async () => {
    scratch = new Scratch();
    aws = await start();
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    suffix = uniqueName('mwx');
    configuration = `kube-ecrlogin-${suffix}`;
    [port = 0] = await freePorts(1);
    installed = await installController(scratch, {
      namespace: suffix,
      suffix,
      components: ['components/admission-webhook', 'components/admission-webhook-cert-manager'],
      extraKinds: ['MutatingWebhookConfiguration'],
      edit: (objects) => objects.map((object) => direct(object, port, labelKey, suffix)),
    });
    created.push(...installed.created);
  });

  after(async () => {
    await controller.stop();
    await aws.close();
    await cleanUp([...created, ...namespaces.map((name) => ({ kind: 'Namespace', name }))]);
    scratch.remove();
  });

  it("renders with cert-manager's Certificate and injection, and without the controller's right to patch the webhook configuration", async () => {
    const objects = await kustomize(
      scratch.kustomization('external', {
        resources: ['kustomize/base'],
        components: ['kustomize/components/admission-webhook', 'kustomize/components/admission-webhook-cert-manager'],
      }),
    );
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    assert.ok(kinds.includes('Certificate/kube-ecrlogin-webhook') && kinds.includes('Issuer/kube-ecrlogin-selfsigned'));
    assert.ok(!kinds.includes('ClusterRole/kube-ecrlogin-webhook'), 'no ClusterRole to patch the webhook configuration');
    const webhook = objects.find((o) => o.kind === 'MutatingWebhookConfiguration');
    assert.equal(webhook?.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'kube-ecrlogin/kube-ecrlogin-webhook');
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'kube-ecrlogin-webhook');
    assert.deepEqual(role?.['rules'], [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['kube-ecrlogin-webhook-tls'], verbs: ['get'] }]);
  });

  it('serves with the certificate it is given, follows a renewal, and writes neither the Secret nor the configuration', async () => {
    await issue();
    const since = new Date();
    controller = await startTestController({
      kubeConfig: installed.kubeConfig,
      user: installed.user,
      args: [
        '--namespace',
        installed.namespace,
        '--webhook',
        '--webhook-certs',
        'external',
        '--webhook-bind-address',
        `127.0.0.1:${port}`,
        '--webhook-configuration',
        configuration,
        '--webhook-shutdown-delay',
        '0s',
      ],
    });
    const context = {
      bound: () => ({ [controller.label.key]: controller.label.value, [labelKey]: suffix }),
      unbound: () => ({ [controller.label.key]: controller.label.value }),
      created: (name: string) => namespaces.push(name),
      settled: () => Promise.resolve(),
    };
    const ns = await createNamespace(context, 'external', { 'ecr-login/server': server });
    await eventually(
      'the webhook at work',
      async () => {
        assert.deepEqual(pullSecrets(await createPod(ns, { imagePullSecrets: [{ name: 'mine' }] })), ['mine', 'ecr-login']);
      },
      { timeoutMs: 60_000 },
    );

    // cert-manager renews: the controller loads the new certificate, and admissions go on.
    const renewed = await issue();
    await controller.running.admission?.keeper.sync();
    assert.deepEqual(pullSecrets(await createPod(ns, { imagePullSecrets: [{ name: 'mine' }] })), ['mine', 'ecr-login']);
    assert.ok(renewed.length > 0);

    await cluster().auditCaughtUp();
    const ownWrites = cluster()
      .writes({ user: controller.user, since })
      .filter(
        (w) =>
          w.objectRef?.resource === 'mutatingwebhookconfigurations' || (w.objectRef?.resource === 'secrets' && w.objectRef.namespace === installed.namespace),
      );
    assert.deepEqual(
      ownWrites.map((w) => `${w.verb} ${w.objectRef?.resource}/${w.objectRef?.name}`),
      [],
    );
  });
});

/** The test's webhook: at the controller's port on loopback, for the test's namespaces only. */
function direct(object: Manifest, port: number, labelKey: string, value: string): Manifest {
  if (object.kind !== 'MutatingWebhookConfiguration') return object;
  const copy = structuredClone(object);
  for (const webhook of copy['webhooks'] as { clientConfig: Record<string, unknown>; namespaceSelector: unknown }[]) {
    webhook.clientConfig = { url: `https://127.0.0.1:${port}/mutate-pods` };
    webhook.namespaceSelector = { matchLabels: { [labelKey]: value } };
  }
  return copy;
}
