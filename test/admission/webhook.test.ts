// kustomize/components/admission-webhook on a real API server (every tested minor): the mutating
// webhook served by the controller, installed from the manifests and run with the manifests' RBAC,
// with certificates it makes, stores and rotates itself. The API server reaches it through a
// load balancer on loopback (a stand-in for its Service), so that replicas can come and go.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { X509Certificate } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from '../aws/server.ts';
import { freePorts } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { cleanUp, installController, Scratch, type InstalledController } from '../kustomize/support.ts';
import { startBalancer, throughBalancer, webhookReplicaArgs, type Balancer } from './balancer.ts';
import { admissionConfig, core, createNamespace, createPod, pullSecrets, registerBehaviourCases, server } from './cases.ts';
import { deleteNamespaces, describeTally, race } from './race.ts';

const tries = Number(process.env['ADMISSION_RACE_TRIES'] ?? 20);
const secretName = 'kube-ecrlogin-webhook-tls';

describe('admission webhook', () => {
  let scratch: Scratch;
  let aws: AwsTestServer;
  let installed: InstalledController;
  let balancer: Balancer;
  let configuration: string;
  const replicas: { controller: TestController; port: number }[] = [];
  const created: { kind: string; name: string }[] = [];
  const namespaces: string[] = [];
  const labelKey = 'kube-ecrlogin.test/webhook';
  let suffix: string;
  let label: { key: string; value: string } | undefined;

  const bound = (): Record<string, string> => {
    if (label === undefined) throw new Error('no controller yet');
    return { [label.key]: label.value, [labelKey]: suffix };
  };
  const unbound = (): Record<string, string> => {
    if (label === undefined) throw new Error('no controller yet');
    return { [label.key]: label.value };
  };
  const context = { bound, unbound, created: (name: string) => namespaces.push(name), settled: () => Promise.resolve() };
  const namespace = (prefix: string, annotations: Record<string, string>): Promise<string> => createNamespace(context, prefix, annotations);
  const own = { imagePullSecrets: [{ name: 'mine' }] };

  /** A replica of the controller as the installed ServiceAccount, serving the webhook on its own port. */
  const startReplica = async (extra: readonly string[] = []): Promise<{ controller: TestController; port: number }> => {
    const [port = 0] = await freePorts(1);
    const controller = await startTestController({
      kubeConfig: await cluster().serviceAccountConfig(installed.namespace, 'kube-ecrlogin'),
      user: installed.user,
      ...(label !== undefined ? { reuse: { namespace: installed.namespace, label } } : {}),
      args: ['--namespace', installed.namespace, ...webhookReplicaArgs(port, configuration), ...extra],
    });
    if (label === undefined) created.push({ kind: 'Namespace', name: controller.namespace });
    label ??= controller.label;
    const replica = { controller, port };
    replicas.push(replica);
    await eventually(
      'the replica ready, with a trusted certificate',
      () => {
        assert.equal(controller.running.admission?.ready, true);
        return Promise.resolve();
      },
      { timeoutMs: 60_000 },
    );
    return replica;
  };
  const stopReplica = async (replica: { controller: TestController }): Promise<void> => {
    await replica.controller.stop();
    replicas.splice(replicas.indexOf(replica as (typeof replicas)[number]), 1);
  };
  const caBundle = async (): Promise<string> => {
    const admission = cluster().adminConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
    const mwc = await admission.readMutatingWebhookConfiguration({ name: configuration });
    return Buffer.from(mwc.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8');
  };
  const servingCert = async (): Promise<string> =>
    Buffer.from((await core().readNamespacedSecret({ namespace: installed.namespace, name: secretName })).data?.['tls.crt'] ?? '', 'base64').toString('utf8');
  const atWork = async (): Promise<void> => {
    const probe = await namespace('probe', { 'ecr-login/server': server });
    await eventually(
      'the webhook at work',
      async () => {
        assert.deepEqual(pullSecrets(await createPod(probe, own)), ['mine', 'ecr-login']);
      },
      { timeoutMs: 60_000 },
    );
  };

  before(async () => {
    scratch = new Scratch();
    aws = await start();
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    balancer = await startBalancer(() => replicas.map((r) => ({ port: r.port, ready: () => r.controller.running.admission?.ready === true })));
    suffix = uniqueName('mwh');
    configuration = `kube-ecrlogin-${suffix}`;
    installed = await installController(scratch, {
      namespace: suffix,
      suffix,
      components: ['components/admission-webhook'],
      extraKinds: ['MutatingWebhookConfiguration'],
      edit: (objects) => objects.map((object) => throughBalancer(object, configuration, balancer.port, labelKey, suffix)),
    });
    created.push(...installed.created);
    await core().replaceNamespacedConfigMap({
      namespace: installed.namespace,
      name: 'kube-ecrlogin-config',
      body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': admissionConfig } },
    });
    await startReplica();
    await atWork();
  });

  after(async () => {
    for (const replica of [...replicas]) await replica.controller.stop();
    await balancer.close();
    await aws.close();
    await deleteNamespaces(namespaces);
    await cleanUp(created);
    scratch.remove();
  });

  describe('the GitOps race: an annotated object applied with a 3-replica Deployment', () => {
    for (const level of ['namespace', 'serviceaccount'] as const) {
      it(`${level === 'namespace' ? 'Namespace' : 'ServiceAccount'}-level: no Pod misses the Secret (${tries} tries)`, async (t) => {
        const tally = await race({ level, server, labels: bound() }, tries);
        namespaces.push(...tally.namespaces);
        t.diagnostic(describeTally(`webhook, ${level}-level`, tally));
        assert.equal(tally.pods, tries * 3);
        assert.equal(tally.missing, 0, describeTally(`webhook, ${level}-level`, tally));
      });
    }
  });

  describe('which Pod gets which Secret', () => {
    registerBehaviourCases(context);
  });

  describe('certificates', () => {
    it('keeps its CA and serving certificate in a Secret the replicas share, and the caBundle names that CA', async () => {
      const secret = await core().readNamespacedSecret({ namespace: installed.namespace, name: secretName });
      assert.equal(secret.type, 'kubernetes.io/tls');
      assert.deepEqual(Object.keys(secret.data ?? {}).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
      assert.equal(secret.metadata?.labels?.['app.kubernetes.io/managed-by'], undefined, 'not a pull Secret the reconciler manages');
      const leaf = new X509Certificate(await servingCert());
      const trusted = await caBundle();
      assert.ok(leaf.checkIssued(new X509Certificate(trusted)), 'the caBundle holds the CA that signed the serving certificate');
      assert.match(leaf.subjectAltName ?? '', new RegExp(`DNS:kube-ecrlogin-webhook\\.${installed.namespace}\\.svc`));
      assert.match(leaf.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    });

    it('refuses what is not an AdmissionReview, cleanly, and goes on serving', async () => {
      const [first] = replicas;
      if (first === undefined) throw new Error('no replica');
      const ca = await caBundle();
      const post = (body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }, method = 'POST', path = '/mutate-pods') =>
        send(first.port, ca, method, path, headers, body);
      assert.equal((await post('not json')).status, 400);
      assert.equal((await post(JSON.stringify({ kind: 'Pod' }))).status, 400);
      assert.equal((await post('{}', { 'content-type': 'text/plain' })).status, 415);
      assert.equal((await post('', {}, 'GET')).status, 405);
      assert.equal((await post('{}', { 'content-type': 'application/json' }, 'POST', '/other')).status, 404);
      assert.equal((await post(Buffer.alloc(5 * 1024 * 1024, 0x20))).status, 413);
      const deployment = await post(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: { uid: 'u-1', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, operation: 'CREATE', namespace: 'x', object: { spec: {} } },
        }),
      );
      assert.equal(deployment.status, 200);
      assert.deepEqual(JSON.parse(deployment.body), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: true } });
      await atWork();
    });

    it('rotates a short-lived certificate and its CA while serving, without a failed admission; the caBundle follows', async () => {
      // One replica with a 12 s serving certificate (CA 48 s): several renewals and one CA change in 40 s.
      for (const replica of [...replicas]) await stopReplica(replica);
      await startReplica(['--webhook-cert-lifetime', '12s']);
      const ns = await namespace('rotate', { 'ecr-login/server': server });
      const certs = new Set<string>([await servingCert()]);
      const cas = new Set<string>([await caBundle()]);
      let pods = 0;
      let missed = 0;
      const until = Date.now() + 40_000;
      while (Date.now() < until) {
        const pod = await createPod(ns, own);
        pods++;
        if (!pullSecrets(pod).includes('ecr-login')) missed++;
        certs.add(await servingCert());
        cas.add(await caBundle());
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const lines = replicas.flatMap((r) => r.controller.logs.filter((line) => /ertificate|webhook|Webhook|caBundle|CA/.test(line)));
      assert.equal(missed, 0, `${missed} of ${pods} Pods admitted without the Secret during rotation\n${lines.join('')}`);
      assert.ok(certs.size >= 3, `the serving certificate was renewed (${certs.size} seen)\n${lines.join('')}`);
      assert.ok(cas.size >= 2, `the caBundle changed with the CA (${cas.size} seen)`);
      for (const replica of [...replicas]) await stopReplica(replica);
      await startReplica();
      await atWork();
    });
  });

  describe('availability', () => {
    it('two replicas both answer, and stopping one loses no admission', async (t) => {
      const began = Date.now();
      await startReplica();
      t.diagnostic(`second replica ready after ${Date.now() - began} ms`);
      assert.equal(replicas.length, 2);
      const ns = await namespace('two', { 'ecr-login/server': server });
      const counted = (): Promise<number[]> => Promise.all(replicas.map((r) => requestsOf(r.controller)));
      const before = await counted();
      // At once, so that the API server opens several connections, which the balancer spreads.
      const made = await Promise.all(Array.from({ length: 20 }, () => createPod(ns, own)));
      const logs = (): string => replicas.flatMap((r) => r.controller.logs.filter((line) => /[Ww]ebhook|warn/.test(line))).join('');
      for (const pod of made) assert.deepEqual(pullSecrets(pod), ['mine', 'ecr-login'], logs());
      const afterTwenty = await counted();
      afterTwenty.forEach((n, i) => assert.ok(n > (before[i] ?? 0), `replica ${i} answered (${before[i] ?? 0} -> ${n})`));
      const [leaving] = replicas;
      if (leaving === undefined) throw new Error('no replica');
      let pods = 0;
      let missed = 0;
      const stopping = stopReplica(leaving);
      const until = Date.now() + 4_000;
      while (Date.now() < until) {
        const pod = await createPod(ns, own);
        pods++;
        if (!pullSecrets(pod).includes('ecr-login')) missed++;
      }
      const stopBegan = Date.now();
      await stopping;
      t.diagnostic(`stopped ${Date.now() - stopBegan} ms after the 4 s of Pods`);
      assert.equal(missed, 0, `${missed} of ${pods} Pods admitted without the Secret while a replica stopped`);
    });

    it('with the controller stopped, Pods are still created at once; restarted, it serves again with no manual step', async () => {
      for (const replica of [...replicas]) await stopReplica(replica);
      const ns = await namespace('down', { 'ecr-login/server': server });
      const started = Date.now();
      const pod = await createPod(ns, own);
      const took = Date.now() - started;
      assert.deepEqual(pullSecrets(pod), ['mine'], 'created, without our entry');
      assert.ok(took < 5_000, `created in ${took} ms (the webhook's timeout is 3 s, and a refused connection fails at once)`);
      await startReplica();
      await atWork();
    });
  });
});

/** Admission requests the replica answered so far, from its metrics. */
async function requestsOf(controller: TestController): Promise<number> {
  const metric = await controller.metrics.webhookRequests.get();
  return metric.values.filter((entry) => entry.labels.result !== 'rejected').reduce((sum, entry) => sum + entry.value, 0);
}

function send(
  port: number,
  ca: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string | Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, method, path, headers, ca }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      // An early answer (413) ends with the connection, maybe before the body was all sent.
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      // The server may answer 413 and close before it has read the whole body.
      if (error.code === 'EPIPE' || error.code === 'ECONNRESET') return;
      reject(error);
    });
    if (method !== 'GET') req.end(body);
    else req.end();
  });
}
