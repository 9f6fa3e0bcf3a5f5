// kustomize/components/admission-webhook as operations see it, on a real API server: two replicas of
// `kube-ecrlogin run`, each its own process (as a Deployment runs them), with the manifests' RBAC.
// They start at once against an absent certificate Secret; /readyz over HTTP says unready until the
// replica serves a certificate the configuration trusts; /metrics counts admissions; and one replica is
// killed (SIGKILL, no drain) while Pods are being created.
//
// The API server reaches the replicas through test/admission/balancer.ts, whose endpoints here follow
// a readiness probe every second, as a Service's endpoints follow the kubelet's probes: a replica that
// dies stays in rotation until its probe fails, not a moment less.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from '../aws/server.ts';
import { freePorts } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { cleanUp, installController, Scratch, type InstalledController, type Manifest } from '../kustomize/support.ts';
import { httpGet, parseMetrics, spawnController, stopController, type ControllerProcess, type Install } from '../operations/support.ts';
import { startBalancer, throughBalancer, webhookReplicaArgs, type Balancer } from './balancer.ts';
import { admissionConfig, core, createPod, pullSecrets, server } from './cases.ts';
import { deleteNamespaces } from './race.ts';

const secretName = 'kube-ecrlogin-webhook-tls';
const probePeriodMs = 1_000;

interface Replica {
  readonly process: ControllerProcess;
  readonly port: number;
  /** The last readiness probe's answer (the Service's view of this replica). */
  ready: boolean;
  probing: boolean;
  /** When a probe first found it unready after it had been ready. */
  droppedAt?: number;
}

describe('admission webhook operations', () => {
  let scratch: Scratch;
  let aws: AwsTestServer;
  let installed: InstalledController;
  let install: Install;
  let kubeconfig: string;
  let balancer: Balancer;
  let configuration: string;
  let clusterBinding: Manifest;
  const replicas: Replica[] = [];
  const created: { kind: string; name: string }[] = [];
  const namespaces: string[] = [];
  const own = { imagePullSecrets: [{ name: 'mine' }] };

  const admission = (): k8s.AdmissionregistrationV1Api => cluster().adminConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
  const caBundle = async (): Promise<string> => {
    const mwc = await admission().readMutatingWebhookConfiguration({ name: configuration });
    return Buffer.from(mwc.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8');
  };
  const namespace = async (prefix: string, annotations: Record<string, string>): Promise<string> => {
    const name = uniqueName(prefix);
    await core().createNamespace({ body: { metadata: { name, labels: { [install.label.key]: install.label.value }, annotations } } });
    namespaces.push(name);
    await eventually('the default ServiceAccount', () => core().readNamespacedServiceAccount({ namespace: name, name: 'default' }));
    return name;
  };

  /** Probes /readyz every second, as a kubelet would, until the suite ends (a dead replica fails it). */
  const probe = async (replica: Replica): Promise<void> => {
    replica.probing = true;
    while (replica.probing) {
      let ready: boolean;
      try {
        ready = (await httpGet(`${replica.process.healthUrl}/readyz`)).status === 200;
      } catch {
        ready = false;
      }
      if (replica.ready && !ready) replica.droppedAt ??= Date.now();
      replica.ready = ready;
      await new Promise((resolve) => setTimeout(resolve, probePeriodMs));
    }
  };

  const spawnReplica = async (identity: string): Promise<Replica> => {
    const [port = 0] = await freePorts(1);
    const process = await spawnController({
      install,
      identity,
      kubeconfig,
      awsEndpoint: aws.endpoint,
      args: webhookReplicaArgs(port, configuration),
    });
    const replica: Replica = { process, port, ready: false, probing: false };
    replicas.push(replica);
    void probe(replica);
    return replica;
  };

  /** Waits until the balancer sends to every replica (each one's last probe said ready). */
  const inRotation = (): Promise<void> =>
    eventually(
      'every replica in rotation',
      () => {
        assert.ok(replicas.length > 0 && replicas.every((r) => r.ready));
        return Promise.resolve();
      },
      { timeoutMs: 30_000 },
    );
  /** The replicas' warnings and errors, for a failure's message. */
  const logs = (): string =>
    replicas
      .flatMap((r) =>
        r.process
          .output()
          .split('\n')
          .filter((line) => /"level":"(warn|error)"/.test(line))
          .map((line) => `${r.process.identity}: ${line}`),
      )
      .join('\n');

  /** Kills a replica (SIGKILL) and takes it out of rotation and out of the suite's list. */
  const dropReplica = async (replica: Replica): Promise<void> => {
    replica.process.kill('SIGKILL');
    await replica.process.exited;
    replica.probing = false;
    replicas.splice(replicas.indexOf(replica), 1);
  };

  /**
   * Both replicas serve the one Secret's certificate, signed by the CA the caBundle trusts; the audit
   * log shows one create that won and, if any, others that met a conflict, and no overwrite. Returns
   * the creates' response codes.
   */
  const oneSecret = async (pair: readonly Replica[], since: Date): Promise<number[]> => {
    const secret = await core().readNamespacedSecret({ namespace: install.namespace, name: secretName });
    const ca = Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString('utf8');
    const leaf = Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64').toString('utf8');
    assert.equal(await caBundle(), ca, 'the caBundle is the CA of the one Secret');
    for (const replica of pair) {
      const served = await servedCertificate(replica.port, ca);
      assert.equal(served.fingerprint256, new X509Certificate(leaf).fingerprint256, `${replica.process.identity} serves the Secret's certificate`);
      assert.ok(served.checkIssued(new X509Certificate(ca)));
    }
    await cluster().auditCaughtUp();
    const writes = (verbs: string[]) =>
      cluster()
        .auditEvents({ user: installed.user, namespace: install.namespace, resource: 'secrets', verbs, since, succeeded: false })
        .filter((event) => event.objectRef?.name === secretName || event.objectRef?.name === undefined);
    const codes = writes(['create']).map((event) => event.responseStatus?.code ?? 0);
    assert.equal(codes.filter((code) => code === 201).length, 1, `exactly one create won: ${JSON.stringify(codes)}`);
    assert.ok(
      codes.every((code) => code === 201 || code === 409),
      `the others met a conflict: ${JSON.stringify(codes)}`,
    );
    assert.deepEqual(writes(['update', 'patch']), [], 'the loser adopted the Secret rather than overwrite it');
    return codes;
  };

  before(async () => {
    scratch = new Scratch();
    aws = await start();
    aws.addUser(controllerKeys);
    balancer = await startBalancer(() => replicas.map((r) => ({ port: r.port, ready: () => r.ready })));
    const suffix = uniqueName('mwo');
    configuration = `kube-ecrlogin-${suffix}`;
    const labelKey = 'kube-ecrlogin.test/webhook-ops';
    install = { namespace: suffix, label: { key: labelKey, value: suffix }, selector: `${labelKey}=${suffix}` };
    let withheld: Manifest | undefined;
    installed = await installController(scratch, {
      namespace: suffix,
      suffix,
      components: ['components/admission-webhook'],
      extraKinds: ['MutatingWebhookConfiguration'],
      // The ClusterRoleBinding that lets the replicas read and patch the configuration is applied
      // later, so that /readyz is seen unready for want of a trusted certificate, then ready.
      edit: (objects) =>
        objects
          .map((object) => throughBalancer(object, configuration, balancer.port, labelKey, suffix))
          .filter((object) => {
            const held = object.kind === 'ClusterRoleBinding' && object.metadata.name.startsWith('kube-ecrlogin-webhook');
            if (held) withheld = object;
            return !held;
          }),
    });
    if (withheld === undefined) throw new Error('no ClusterRoleBinding of the webhook rendered');
    clusterBinding = withheld;
    created.push(...installed.created, { kind: 'ClusterRoleBinding', name: clusterBinding.metadata.name });
    await core().replaceNamespacedConfigMap({
      namespace: installed.namespace,
      name: 'kube-ecrlogin-config',
      body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': admissionConfig } },
    });
    kubeconfig = cluster().writeKubeconfig(installed.kubeConfig, join(scratch.dir, 'kube-ecrlogin.kubeconfig'));
  });

  after(async () => {
    for (const replica of replicas) {
      replica.probing = false;
      await stopController(replica.process);
    }
    await balancer.close();
    await aws.close();
    await deleteNamespaces(namespaces);
    await cleanUp(created);
    scratch.remove();
  });

  it('two replicas start at once with no Secret: one create wins, the other adopts it; unready until the certificate is trusted, ready after', async (t) => {
    await assert.rejects(core().readNamespacedSecret({ namespace: install.namespace, name: secretName }), 'no certificate Secret yet');
    const since = new Date(Date.now() - 1_000);
    const [a, b] = await Promise.all([spawnReplica('webhook-0'), spawnReplica('webhook-1')]);
    if (a === undefined || b === undefined) throw new Error('no replicas');
    // The Secret is made, but neither replica may read or patch the configuration yet.
    await eventually('the certificate Secret', () => core().readNamespacedSecret({ namespace: install.namespace, name: secretName }), { timeoutMs: 120_000 });
    for (const replica of [a, b]) {
      await eventually(
        `${replica.process.identity} unready for want of a trusted certificate`,
        async () => {
          const answer = await httpGet(`${replica.process.healthUrl}/readyz`);
          assert.equal(answer.status, 503);
          assert.equal(answer.body, 'webhook not serving a trusted certificate\n');
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
    }
    assert.equal(await caBundle(), '', 'nothing trusted yet');

    await cluster()
      .adminConfig()
      .makeApiClient(k8s.RbacAuthorizationV1Api)
      .createClusterRoleBinding({ body: clusterBinding as unknown as k8s.V1ClusterRoleBinding });
    const granted = Date.now();
    for (const replica of [a, b]) {
      await eventually(
        `${replica.process.identity} ready`,
        async () => {
          const answer = await httpGet(`${replica.process.healthUrl}/readyz`);
          assert.equal(answer.status, 200, answer.body);
          assert.equal(answer.body, 'ok\n');
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
    }
    t.diagnostic(`both replicas ready ${Date.now() - granted} ms after the ClusterRoleBinding (the keeper retries with backoff up to 30 s)`);

    const rounds = [await oneSecret([a, b], since)];
    // Whether the loser's create met a 409 or its first read already found the Secret depends on how
    // the two starts interleave: start both again over a deleted Secret, until a conflict is seen (at
    // most 4 rounds), asserting the same end state each time.
    while (rounds.length < 4 && !rounds.some((codes) => codes.includes(409))) {
      for (const replica of [...replicas]) await dropReplica(replica);
      await core().deleteNamespacedSecret({ namespace: install.namespace, name: secretName });
      const again = new Date();
      const pair = await Promise.all([spawnReplica(`webhook-${2 * rounds.length}`), spawnReplica(`webhook-${2 * rounds.length + 1}`)]);
      for (const replica of pair) {
        await eventually(`${replica.process.identity} ready`, async () => assert.equal((await httpGet(`${replica.process.healthUrl}/readyz`)).status, 200), {
          timeoutMs: 120_000,
          intervalMs: 250,
        });
      }
      await inRotation();
      rounds.push(await oneSecret(pair, again));
    }
    t.diagnostic(`creates of the certificate Secret by response code, per simultaneous start: ${JSON.stringify(rounds)}`);
  });

  it('counts admissions in /metrics: results, a duration per answer, and the certificate expiry', async () => {
    await inRotation();
    const served = await namespace('metrics', { 'ecr-login/server': server });
    const plain = await namespace('plain', {});
    const scrape = async (): Promise<ReturnType<typeof parseMetrics>[]> =>
      Promise.all(replicas.map(async (r) => parseMetrics((await httpGet(r.process.metricsUrl)).body)));
    const total = (scrapes: ReturnType<typeof parseMetrics>[], name: string, labels: Record<string, string> = {}): number =>
      scrapes.reduce((sum, s) => sum + s.sum(name, labels), 0);
    const before = await scrape();
    const mutated = await Promise.all(Array.from({ length: 6 }, () => createPod(served, own)));
    for (const pod of mutated) assert.deepEqual(pullSecrets(pod), ['mine', 'ecr-login'], logs());
    const unchanged = await Promise.all(Array.from({ length: 4 }, () => createPod(plain, own)));
    for (const pod of unchanged) assert.deepEqual(pullSecrets(pod), ['mine']);
    // Straight to one replica: not an AdmissionReview (rejected), and a review of a Deployment (skipped).
    const [first] = replicas;
    if (first === undefined) throw new Error('no replica');
    const ca = await caBundle();
    assert.equal((await post(first.port, ca, 'not json')).status, 400);
    const deployment = JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'u-1', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, operation: 'CREATE', namespace: served, object: { spec: {} } },
    });
    assert.equal((await post(first.port, ca, deployment)).status, 200);

    const after = await scrape();
    const grew = (result: string): number =>
      total(after, 'kube_ecrlogin_webhook_requests_total', { result }) - total(before, 'kube_ecrlogin_webhook_requests_total', { result });
    // The API server may call a webhook more than once for a Pod (reinvocation, a retried
    // connection), never less.
    assert.ok(grew('mutated') >= 6, `mutated grew by ${grew('mutated')}`);
    assert.ok(grew('unchanged') >= 4, `unchanged grew by ${grew('unchanged')}`);
    assert.equal(grew('rejected'), 1);
    assert.equal(grew('skipped'), 1);
    for (const [i, s] of after.entries()) {
      assert.equal(s.types.get('kube_ecrlogin_webhook_duration_seconds'), 'histogram');
      assert.equal(s.types.get('kube_ecrlogin_webhook_requests_total'), 'counter');
      // One observation per answer, by the same result.
      for (const result of ['mutated', 'unchanged', 'skipped', 'rejected']) {
        assert.equal(
          s.sum('kube_ecrlogin_webhook_duration_seconds_count', { result }),
          s.sum('kube_ecrlogin_webhook_requests_total', { result }),
          `replica ${i}, ${result}`,
        );
        assert.equal(s.sum('kube_ecrlogin_webhook_duration_seconds_bucket', { result, le: '+Inf' }), s.sum('kube_ecrlogin_webhook_requests_total', { result }));
      }
      const leaf = new X509Certificate(
        Buffer.from((await core().readNamespacedSecret({ namespace: install.namespace, name: secretName })).data?.['tls.crt'] ?? '', 'base64'),
      );
      assert.equal(
        s.value('kube_ecrlogin_webhook_certificate_expiry_timestamp_seconds'),
        Date.parse(leaf.validTo) / 1000,
        `replica ${i}: the expiry of the certificate it serves`,
      );
    }
    assert.ok(total(after, 'kube_ecrlogin_webhook_duration_seconds_sum', { result: 'mutated' }) > 0);
  });

  it('one of two replicas killed (SIGKILL) while Pods are created: no create fails; once its probe fails, every Pod gets the Secret', async (t) => {
    const ns = await namespace('kill', { 'ecr-login/server': server });
    const [victim, survivor] = replicas;
    if (victim === undefined || survivor === undefined) throw new Error('two replicas expected');
    await inRotation();
    const pods: { began: number; ended: number; secret: boolean }[] = [];
    const failures: string[] = [];
    let killedAt = 0;
    const until = Date.now() + 10_000;
    const worker = async (): Promise<void> => {
      while (Date.now() < until) {
        const began = Date.now();
        try {
          const pod = await createPod(ns, own);
          pods.push({ began, ended: Date.now(), secret: pullSecrets(pod).includes('ecr-login') });
        } catch (error) {
          failures.push(error instanceof Error ? error.message : String(error));
        }
      }
    };
    const workers = Array.from({ length: 4 }, () => worker());
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    delete victim.droppedAt;
    killedAt = Date.now();
    victim.process.kill('SIGKILL');
    await Promise.all(workers);
    const exit = await victim.process.exited;
    assert.equal(exit.signal, 'SIGKILL');
    const dropped = victim.droppedAt ?? Number.POSITIVE_INFINITY;
    // Done before the kill; in flight at the kill or begun before the probe noticed; begun after.
    const beforeKill = pods.filter((p) => p.ended < killedAt);
    const window = pods.filter((p) => p.ended >= killedAt && p.began < dropped);
    const afterDrop = pods.filter((p) => p.began >= dropped);
    const missing = (list: typeof pods): number => list.filter((p) => !p.secret).length;
    const slowest = Math.max(...pods.map((p) => p.ended - p.began));
    t.diagnostic(
      `${pods.length} Pods in 10 s, 4 at a time; killed at +3 s; out of rotation ${dropped - killedAt} ms later (probe every ${probePeriodMs} ms). ` +
        `Without the Secret: ${missing(beforeKill)} of ${beforeKill.length} done before the kill, ${missing(window)} of ${window.length} in flight at the kill or begun before the probe noticed, ` +
        `${missing(afterDrop)} of ${afterDrop.length} after; slowest create ${slowest} ms`,
    );
    assert.ok(victim.droppedAt !== undefined && victim.droppedAt >= killedAt, 'the probe noticed the dead replica');
    assert.deepEqual(failures, [], 'no Pod creation failed');
    assert.equal(missing(beforeKill), 0, `with two replicas up, every Pod has the Secret\n${logs()}`);
    assert.ok(afterDrop.length > 0, 'Pods were created after the dead replica left rotation');
    assert.equal(missing(afterDrop), 0, `once the dead replica is out of rotation, every Pod has the Secret\n${logs()}`);
    assert.equal(survivor.ready, true);
    assert.equal(survivor.process.child.exitCode, null, 'the survivor runs on');
  });
});

/** The certificate a replica presents, verified against ca. */
function servedCertificate(port: number, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      resolve(new X509Certificate(raw));
    });
    socket.on('error', reject);
  });
}

function post(port: number, ca: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, method: 'POST', path: '/mutate-pods', headers: { 'content-type': 'application/json' }, ca }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
