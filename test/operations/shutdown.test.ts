// SIGTERM to a `kube-ecrlogin run --leader-elect` process in the middle of its work (AWS answers
// slowly, so reconciles are in flight): it stops taking work, finishes what is in flight, releases
// the Lease at once and exits 0, leaving no half-written state. When in-flight work outlasts
// --shutdown-timeout, it gives up on it, still releases the Lease, exits 0 and writes nothing more.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readSecretState } from '../../src/controller/secrets.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { decodeDockerConfig, pullSecretNames } from '../support/objects.ts';
import {
  admin,
  createInstall,
  createServedNamespaces,
  ecrHost,
  httpGet,
  readLease,
  serviceAccount,
  spawnController,
  stopController,
  type ControllerProcess,
  type Install,
} from './support.ts';

/**
 * Three registries in three regions, whose tokens no other namespace shares: regions must exist, so
 * twelve namespaces take twelve regions at three endpoints (plain, FIPS, dual-stack), each a token key.
 */
const regions = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-central-1',
  'eu-north-1',
  'ap-south-1',
  'ap-northeast-1',
  'sa-east-1',
];
const hostsOf = (index: number): string[] =>
  [0, 1, 2].map((j) => {
    const region = regions[(index % 4) * 3 + j] ?? 'us-east-1';
    return (
      [ecrHost(region), ecrHost(region).replace('.dkr.ecr.', '.dkr.ecr-fips.'), `111122223333.dkr-ecr.${region}.on.aws`][Math.floor(index / 4)] ??
      ecrHost(region)
    );
  });

async function defaultServiceAccounts(names: readonly string[]): Promise<void> {
  const { core } = admin();
  for (const name of names) await eventually(`${name}/default`, () => core.readNamespacedServiceAccount({ namespace: name, name: 'default' }));
}

/** GetAuthorizationToken calls that have reached the AWS test server (answered or not). */
function arrivals(aws: AwsTestServer, id: string, count: number): number {
  const fault = aws.faults.list().find((f) => f.id === id);
  return count - (fault?.remaining ?? 0);
}

describe('SIGTERM in the middle of work', () => {
  let aws: AwsTestServer;
  let install: Install;
  let controller: ControllerProcess;
  let user: string;
  const names = Array.from({ length: 12 }, (_, i) => uniqueName(`stop${i}`));
  const latencyCount = 1_000;
  let latency: string;

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    // Every token takes 1.5 s: four workers, three regions per namespace, so a reconcile lasts 1.5 s.
    latency = aws.faults.set({ api: 'GetAuthorizationToken', kind: 'latency', ms: 1_500, count: latencyCount });
    install = await createInstall('stop');
    await createServedNamespaces(install, names, (name) => ({ 'ecr-login/server': hostsOf(names.indexOf(name)).join(',') }));
    await defaultServiceAccounts(names);
    const account = await serviceAccount(install, 'controller');
    user = account.user;
    controller = await spawnController({
      install,
      identity: 'stop-0',
      kubeconfig: account.kubeconfig,
      awsEndpoint: aws.endpoint,
      args: ['--leader-elect', '--workers', '4', '--shutdown-timeout', '20s'],
    });
  });

  after(async () => {
    await stopController(controller);
    await aws.close();
  });

  it('finishes the reconciles in flight, releases the Lease at once, exits 0 and leaves every Secret whole', async (t) => {
    // The first four namespaces are done and the next four are waiting for AWS.
    await eventually('the second round in flight', () => {
      assert.ok(
        arrivals(aws, latency, latencyCount) > 12,
        `${arrivals(aws, latency, latencyCount)} calls; the controller said:\n${controller.output().slice(-3000)}`,
      );
      return Promise.resolve();
    });
    const signalled = new Date();
    controller.kill('SIGTERM');
    const exit = await controller.exited;
    const took = Date.now() - signalled.getTime();
    assert.deepEqual(exit, { code: 0, signal: null });
    t.diagnostic(`exited ${took} ms after SIGTERM`);

    const lease = await readLease(install);
    assert.equal(lease?.spec?.holderIdentity, '', 'the Lease was released before the process exited');
    assert.equal(lease?.spec?.leaseDurationSeconds, 1);
    for (const message of ['Received signal', 'Shutting down', 'Released leadership', 'Stopped']) {
      assert.equal(controller.logged(message).length, 1, message);
    }
    assert.equal(controller.logged('Shutdown timeout: some reconciles did not finish').length, 0);

    const { core } = admin();
    const served: string[] = [];
    for (const [index, name] of names.entries()) {
      const secrets = await core.listNamespacedSecret({ namespace: name, labelSelector: 'app.kubernetes.io/managed-by=kube-ecrlogin' });
      if (secrets.items.length === 0) continue;
      served.push(name);
      const [secret] = secrets.items;
      assert.ok(secret !== undefined && secrets.items.length === 1);
      const state = readSecretState(secret);
      assert.ok(state.ok, `${name}: ${state.ok ? '' : state.error}`);
      assert.deepEqual(Object.keys(decodeDockerConfig(secret)).sort(), hostsOf(index).sort(), `${name}: every registry`);
      const sa = await core.readNamespacedServiceAccount({ namespace: name, name: 'default' });
      assert.deepEqual(pullSecretNames(sa), ['ecr-login'], `${name}: the reconcile finished with the ServiceAccount`);
    }
    t.diagnostic(`${served.length} of ${names.length} namespaces served before the controller stopped`);
    assert.ok(served.length > 4, 'the reconciles in flight at SIGTERM finished');
    assert.ok(served.length < names.length, 'no new work was started after SIGTERM');
    const created = cluster()
      .writes({ user, resource: 'secrets' })
      .filter((w) => w.verb === 'create');
    assert.ok(
      created.some((w) => new Date(w.requestReceivedTimestamp) > signalled),
      'some Secrets were written after SIGTERM, by work already in flight',
    );
    assert.equal(created.length, served.length);
  });
});

describe('SIGTERM when in-flight work outlasts --shutdown-timeout', () => {
  let aws: AwsTestServer;
  let install: Install;
  let controller: ControllerProcess;
  let user: string;
  const name = uniqueName('stuck');
  const latencyCount = 100;
  let latency: string;

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    // AWS takes 8 s to answer: far longer than the 1 s --shutdown-timeout.
    latency = aws.faults.set({ api: 'GetAuthorizationToken', kind: 'latency', ms: 8_000, count: latencyCount });
    install = await createInstall('stuck');
    await createServedNamespaces(install, [name], () => ({ 'ecr-login/server': ecrHost('us-east-1') }));
    const account = await serviceAccount(install, 'controller');
    user = account.user;
    controller = await spawnController({
      install,
      identity: 'stuck-0',
      kubeconfig: account.kubeconfig,
      awsEndpoint: aws.endpoint,
      args: ['--leader-elect', '--shutdown-timeout', '1s'],
    });
  });

  after(async () => {
    await stopController(controller);
    aws.faults.clear();
    await aws.close();
  });

  it('gives up after the timeout, releases the Lease, exits 0 and writes nothing more', async (t) => {
    await eventually('a call in flight', () => {
      assert.equal(arrivals(aws, latency, latencyCount), 1);
      return Promise.resolve();
    });
    const signalled = Date.now();
    controller.kill('SIGTERM');
    const exit = await controller.exited;
    const took = Date.now() - signalled;
    assert.deepEqual(exit, { code: 0, signal: null });
    t.diagnostic(`exited ${took} ms after SIGTERM`);
    assert.ok(took < 1_000 + 4_000, `exited ${took} ms after SIGTERM, with a 1 s --shutdown-timeout`);
    assert.equal(controller.logged('Shutdown timeout: some reconciles did not finish').length, 1);
    assert.equal((await readLease(install))?.spec?.holderIdentity, '');
    assert.deepEqual(cluster().writes({ user, resource: 'secrets' }), []);
    assert.deepEqual(cluster().writes({ user, resource: 'serviceaccounts' }), []);
  });
});

describe('SIGTERM before the caches have synced', () => {
  it('exits 0 at once: nothing is in flight and no Lease is held', async () => {
    const aws = await start();
    const install = await createInstall('early');
    // No permission at all: the controller cannot even read its ConfigMap.
    const account = await serviceAccount(install, 'controller', { clusterAdmin: false });
    const controller = await spawnController({
      install,
      identity: 'early-0',
      kubeconfig: account.kubeconfig,
      awsEndpoint: aws.endpoint,
      args: ['--leader-elect'],
    });
    try {
      await eventually('alive and not ready', async () => {
        assert.equal((await httpGet(`${controller.healthUrl}/readyz`)).body, 'loading config\n');
      });
      const signalled = Date.now();
      controller.kill('SIGTERM');
      assert.deepEqual(await controller.exited, { code: 0, signal: null });
      assert.ok(Date.now() - signalled < 3_000);
      assert.equal(await readLease(install), undefined);
    } finally {
      await stopController(controller);
      await aws.close();
    }
  });
});
