// Leader election: client-go's semantics on a fake Lease API with a fake clock, the MicroTime format
// against the real apiserver, then two controller processes on the real control plane: only the
// leader writes (the audit log, by ServiceAccount), a killed leader is replaced within the lease
// duration and the next refresh still comes before the token expires, and a clean shutdown hands
// the Lease over at once.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { LeaderElector, type LeaseApi } from '../../src/leader.ts';
import { silentLogger } from '../../src/log.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { decodeDockerConfig, eventsFor, pullSecretNames, readSecret } from '../support/objects.ts';
import {
  admin,
  createConfig,
  createInstall,
  createServedNamespaces,
  ecrHost,
  httpGet,
  readLease,
  scrape,
  serviceAccount,
  spawnController,
  stopController,
  type ControllerProcess,
  type Install,
} from './support.ts';

const microTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

/** An in-memory Lease API with the apiserver's resourceVersion conflicts and MicroTime validation. */
class FakeLeases implements LeaseApi {
  lease: k8s.V1Lease | undefined;
  #version = 0;
  /** Reads and writes fail (the apiserver is unreachable). */
  failing = false;
  /** Requests never answer. */
  hanging = false;
  /** When set, replace() waits for it. */
  replaceGate: Promise<void> | undefined;
  writes = 0;

  read(): Promise<k8s.V1Lease | undefined> {
    return this.#answer(() => (this.lease === undefined ? undefined : roundTrip(this.lease)));
  }

  create(_namespace: string, lease: k8s.V1Lease): Promise<k8s.V1Lease> {
    return this.#answer(() => {
      if (this.lease !== undefined) throw new k8s.ApiException(409, 'exists', '{}', {});
      return this.#store(lease);
    });
  }

  async replace(_namespace: string, _name: string, lease: k8s.V1Lease): Promise<k8s.V1Lease> {
    if (this.replaceGate !== undefined) await this.replaceGate;
    return this.#answer(() => {
      if (lease.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw new k8s.ApiException(409, 'conflict', '{}', {});
      return this.#store(lease);
    });
  }

  /** Another candidate (or another clock) writes the Lease. */
  put(spec: k8s.V1LeaseSpec): void {
    this.#store({ metadata: { name: 'lease', namespace: 'ns' }, spec });
  }

  get holder(): string | undefined {
    return this.lease?.spec?.holderIdentity;
  }

  #store(lease: k8s.V1Lease): k8s.V1Lease {
    const stored = roundTrip(lease);
    for (const time of [stored.spec?.acquireTime, stored.spec?.renewTime]) {
      if (time !== undefined && !microTime.test(String(time))) throw new k8s.ApiException(400, `bad MicroTime ${String(time)}`, '{}', {});
    }
    stored.metadata = { ...stored.metadata, resourceVersion: String(++this.#version) };
    this.lease = stored;
    this.writes++;
    return roundTrip(stored);
  }

  #answer<T>(fn: () => T): Promise<T> {
    if (this.hanging) return new Promise<T>(() => undefined);
    if (this.failing) return Promise.reject(new Error('connect ECONNREFUSED'));
    return new Promise<T>((resolve, reject) => {
      setImmediate(() => {
        try {
          resolve(fn());
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
  }
}

/** As over the wire: times become strings. */
function roundTrip(lease: k8s.V1Lease): k8s.V1Lease {
  return JSON.parse(JSON.stringify(lease)) as k8s.V1Lease;
}

const timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

function candidate(api: LeaseApi, clock: FakeClock, identity: string): LeaderElector {
  return new LeaderElector({ api, clock, identity, namespace: 'ns', name: 'lease', log: silentLogger(), random: () => 0, ...timing });
}

/** Lets pending promise chains and I/O callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Advances the fake clock in small steps, letting the elector's requests answer between them. */
async function advance(clock: FakeClock, ms: number, step = 100): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    clock.advance(Math.min(step, ms - done));
    await settle();
  }
}

describe('leader election (client-go semantics, fake Lease API and clock)', () => {
  it('a candidate creates the Lease with MicroTime times and renews it every retry period, keeping its acquireTime', async () => {
    const clock = new FakeClock();
    const api = new FakeLeases();
    const a = candidate(api, clock, 'a');
    assert.equal(await a.acquire(() => undefined), true);
    assert.equal(api.holder, 'a');
    const first = api.lease?.spec;
    assert.match(String(first?.acquireTime), microTime);
    assert.equal(first?.leaseDurationSeconds, 15);
    assert.equal(first?.leaseTransitions, 0);
    assert.ok(a.isLeader && a.canWrite());
    await advance(clock, 2_000);
    assert.equal(api.lease?.spec?.acquireTime, first?.acquireTime, 'a renewal keeps the acquisition');
    assert.notEqual(api.lease?.spec?.renewTime, first?.renewTime, 'renewed after one retry period');
    assert.equal(api.lease?.spec?.leaseTransitions, 0);
    await a.release();
  });

  it('a standby waits a full lease duration from when it saw the Lease change, whatever renewTime another clock wrote', async () => {
    const clock = new FakeClock();
    const api = new FakeLeases();
    // The holder's clock is an hour behind: by renewTime alone the Lease looks long expired.
    const skewed = new k8s.V1MicroTime(clock.now() - 3_600_000);
    api.put({ holderIdentity: 'x', leaseDurationSeconds: 15, acquireTime: skewed, renewTime: skewed, leaseTransitions: 4 });
    const b = candidate(api, clock, 'b');
    let leading = false;
    void b.acquire(() => undefined).then((acquired) => (leading = acquired));
    await advance(clock, 10_000);
    api.put({ ...api.lease?.spec, renewTime: skewed }); // x renews (the record changes) at t = 10 s
    await advance(clock, 14_000);
    assert.equal(leading, false, 'x renewed 14 s ago: its Lease is still valid');
    assert.equal(api.holder, 'x');
    await advance(clock, 4_000);
    assert.equal(leading, true, 'taken over once x had not renewed for the lease duration');
    assert.equal(api.holder, 'b');
    assert.equal(api.lease?.spec?.leaseTransitions, 5);
    assert.notEqual(api.lease?.spec?.acquireTime, skewed.toISOString());
    await b.release();
  });

  for (const [fault, apply] of [
    ['cannot reach the apiserver', (api: FakeLeases) => (api.failing = true)],
    ['gets no answer at all', (api: FakeLeases) => (api.hanging = true)],
  ] as const) {
    it(`a leader that ${fault} stops writing and steps down at its renew deadline, before a standby may take over`, async () => {
      const clock = new FakeClock();
      const api = new FakeLeases();
      const a = candidate(api, clock, 'a');
      let lost = false;
      await a.acquire(() => (lost = true));
      apply(api);
      await advance(clock, 9_800);
      assert.equal(lost, false);
      assert.equal(a.canWrite(), true, 'within the renew deadline');
      await advance(clock, 400);
      assert.equal(lost, true, 'stepped down at the renew deadline (10 s), well before the lease duration (15 s)');
      assert.equal(a.isLeader, false);
      assert.equal(a.canWrite(), false);
    });
  }

  it('a leader that finds another holder steps down on its next renewal', async () => {
    const clock = new FakeClock();
    const api = new FakeLeases();
    const a = candidate(api, clock, 'a');
    let lost = false;
    await a.acquire(() => (lost = true));
    api.put({ ...api.lease?.spec, holderIdentity: 'usurper' });
    await advance(clock, 2_000);
    assert.equal(lost, true);
    assert.equal(a.canWrite(), false);
    assert.equal(api.holder, 'usurper', 'and leaves it alone');
  });

  it('release() empties the holder at once, and the standby takes over on its next retry, not after the lease duration', async () => {
    const clock = new FakeClock();
    const api = new FakeLeases();
    const a = candidate(api, clock, 'a');
    const b = candidate(api, clock, 'b');
    await a.acquire(() => undefined);
    let bLeads = false;
    void b.acquire(() => undefined).then((acquired) => (bLeads = acquired));
    await advance(clock, 4_000);
    assert.equal(bLeads, false);
    await a.release();
    assert.equal(api.holder, '');
    assert.equal(api.lease?.spec?.leaseDurationSeconds, 1);
    assert.equal(a.canWrite(), false);
    await advance(clock, 2_000);
    assert.equal(bLeads, true);
    assert.equal(api.holder, 'b');
    assert.equal(api.lease?.spec?.leaseTransitions, 1);
    await b.release();
  });

  it('release() waits for a renewal in flight, so that its own write does not lose to it', async () => {
    const clock = new FakeClock();
    const api = new FakeLeases();
    const a = candidate(api, clock, 'a');
    await a.acquire(() => undefined);
    let open: () => void = () => undefined;
    api.replaceGate = new Promise((resolve) => (open = resolve));
    await advance(clock, 2_000); // the renewal has read the Lease and waits to replace it
    const released = a.release();
    await settle();
    api.replaceGate = undefined;
    open();
    await released;
    assert.equal(api.holder, '', 'released after the renewal landed, not refused with a conflict');
  });

  it('release() by a standby writes nothing', async () => {
    const clock = new FakeClock();
    const api = new FakeLeases();
    await candidate(api, clock, 'a').acquire(() => undefined);
    const b = candidate(api, clock, 'b');
    void b.acquire(() => undefined);
    await settle();
    const writes = api.writes;
    await b.release();
    assert.equal(api.writes, writes);
    assert.equal(api.holder, 'a');
  });
});

describe('Lease times on the real apiserver', () => {
  it('rejects a time serialized as a plain Date and accepts V1MicroTime', async () => {
    const { core, coordination } = admin();
    const namespace = uniqueName('lease-format');
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const now = Date.now();
    const create = (name: string, time: Date): Promise<k8s.V1Lease> =>
      coordination.createNamespacedLease({ namespace, body: { metadata: { name }, spec: { holderIdentity: 'x', acquireTime: time, renewTime: time } } });
    await assert.rejects(create('plain-date', new Date(now)), (error: unknown) => error instanceof k8s.ApiException && error.code === 400);
    const lease = await create('micro-time', new k8s.V1MicroTime(now));
    assert.equal(String(lease.spec?.renewTime), `${new Date(now).toISOString().slice(0, -1)}000Z`);
  });
});

/** Two `kube-ecrlogin run --leader-elect` processes as two ServiceAccounts of one install. */
interface Pair {
  readonly install: Install;
  readonly replicas: Record<'a' | 'b', { process: ControllerProcess; user: string }>;
}

async function startPair(aws: AwsTestServer, args: readonly string[], config: string): Promise<Pair> {
  const install = await createInstall('ha');
  await createConfig(install, config);
  const [a, b] = await Promise.all([serviceAccount(install, 'replica-a'), serviceAccount(install, 'replica-b')]);
  const spawnAs = (identity: string, kubeconfig: string): Promise<ControllerProcess> =>
    spawnController({ install, identity, kubeconfig, awsEndpoint: aws.endpoint, args: ['--leader-elect', ...args] });
  const [pa, pb] = await Promise.all([spawnAs('replica-a', a.kubeconfig), spawnAs('replica-b', b.kubeconfig)]);
  // Both have loaded the config and synced before a test changes anything: on a loaded machine a
  // replica can take seconds to start, and one that starts after the config turned invalid refuses to.
  for (const replica of [pa, pb]) {
    await eventually(
      `${replica.identity} ready`,
      async () => {
        assert.equal((await httpGet(`${replica.healthUrl}/readyz`)).status, 200);
      },
      { timeoutMs: 60_000 },
    );
  }
  return { install, replicas: { a: { process: pa, user: a.user }, b: { process: pb, user: b.user } } };
}

/** The holder once there is one, and which replica that is. */
async function leaderOf(pair: Pair): Promise<{ leader: 'a' | 'b'; standby: 'a' | 'b'; lease: k8s.V1Lease }> {
  return eventually('a leader', async () => {
    const lease = await readLease(pair.install);
    const holder = lease?.spec?.holderIdentity;
    assert.ok(lease !== undefined && (holder === 'replica-a' || holder === 'replica-b'), `holder ${String(holder)}`);
    return holder === 'replica-a' ? { leader: 'a', standby: 'b', lease } : { leader: 'b', standby: 'a', lease };
  });
}

describe('two replicas on the real control plane', () => {
  let aws: AwsTestServer;
  let pair: Pair;
  // ECR tokens live 24 s here: refreshed after about 11 to 12 s (half the lifetime, minus jitter).
  const tokenLifetimeMs = 24_000;
  const names = [uniqueName('ha-one'), uniqueName('ha-two'), uniqueName('ha-three')];
  // Short, but with a renew deadline that a loaded test machine still meets.
  const args = ['--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '500ms'];

  before(async () => {
    aws = await start({ tokenLifetimeSeconds: tokenLifetimeMs / 1000 });
    aws.addUser(controllerKeys);
    pair = await startPair(aws, args, 'refresh:\n  minInterval: 1s\n');
  });

  after(async () => {
    await Promise.all(Object.values(pair.replicas).map(({ process }) => stopController(process)));
    await aws.close();
  });

  it('elects one leader, with MicroTime acquireTime and renewTime on the Lease', async () => {
    const { lease } = await leaderOf(pair);
    assert.match(String(lease.spec?.acquireTime), microTime);
    assert.match(String(lease.spec?.renewTime), microTime);
    assert.equal(lease.spec?.leaseDurationSeconds, 4);
  });

  it('only the leader writes Secrets, ServiceAccounts and Events; the standby is ready, with warm caches, and only reads the Lease', async () => {
    const since = new Date();
    await createServedNamespaces(pair.install, names, () => ({ 'ecr-login/server': `${ecrHost('us-east-1')},${ecrHost('eu-west-1')}` }));
    for (const name of names) {
      await eventually(`${name} served`, async () => {
        const secret = await readSecret(name, 'ecr-login');
        assert.deepEqual(Object.keys(decodeDockerConfig(secret)).sort(), [ecrHost('eu-west-1'), ecrHost('us-east-1')]);
        const sa = await admin().core.readNamespacedServiceAccount({ namespace: name, name: 'default' });
        assert.deepEqual(pullSecretNames(sa), ['ecr-login']);
      });
    }
    // A config change reaches both replicas: only the leader reports it with an Event.
    const { core } = admin();
    const configMap = { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': 'refresh:\n  minInterval: soon\n' } };
    await core.replaceNamespacedConfigMap({ namespace: pair.install.namespace, name: 'kube-ecrlogin-config', body: configMap });
    const invalid = await eventually('ConfigInvalid', async () => {
      const events = (await eventsFor(pair.install.namespace, 'ConfigMap', 'kube-ecrlogin-config')).filter((e) => e.reason === 'ConfigInvalid');
      assert.equal(events.length, 1);
      return events[0];
    });
    const { leader, standby } = await leaderOf(pair);
    assert.equal(invalid?.reportingInstance, `replica-${leader}`);
    await eventually('the standby saw the invalid config too', () => {
      const replica = pair.replicas[standby].process;
      // On failure, say whether the standby still runs and what it last logged.
      const state = `standby replica-${standby}: exit code ${String(replica.child.exitCode)}, signal ${String(replica.child.signalCode)}; last output:\n${replica.output().slice(-2_000)}`;
      assert.ok(replica.logged('Invalid config, keeping the last good one').length > 0, state);
      return Promise.resolve();
    });
    configMap.data['config.yaml'] = 'refresh:\n  minInterval: 1s\n';
    await core.replaceNamespacedConfigMap({ namespace: pair.install.namespace, name: 'kube-ecrlogin-config', body: configMap });

    const plane = cluster();
    const leaderWrites = plane.writes({ user: pair.replicas[leader].user, since });
    for (const resource of ['secrets', 'serviceaccounts', 'events']) {
      assert.ok(
        leaderWrites.some((w) => w.objectRef?.resource === resource),
        `the leader wrote ${resource}`,
      );
    }
    assert.ok(plane.writes({ user: pair.replicas[leader].user, resource: 'leases' }).length > 0, 'the leader renews the Lease');
    // At start both try to create the Lease; the loser's create fails. Nothing else, not even an attempt.
    const standbyWrites = plane.writes({ user: pair.replicas[standby].user, succeeded: false });
    assert.deepEqual(
      standbyWrites.filter((w) => w.objectRef?.resource !== 'leases').map((w) => `${w.verb} ${w.objectRef?.resource}`),
      [],
      'the standby wrote nothing',
    );
    assert.deepEqual(plane.writes({ user: pair.replicas[standby].user }), [], 'not even the Lease');
    // The audit log records writes only: the standby's log shows that it reads the Lease (on its
    // first retry after losing the race to create it, which may come after the leader's first writes).
    await eventually('the standby saw the leader', () => {
      const seen = pair.replicas[standby].process.logged('New leader');
      assert.deepEqual(
        seen.map((line) => line['leader']),
        [`replica-${leader}`],
        'the standby campaigns: it read the Lease and saw the leader',
      );
      return Promise.resolve();
    });

    const probe = await httpGet(`${pair.replicas[standby].process.healthUrl}/readyz`);
    assert.equal(probe.status, 200, 'a standby with synced caches is ready');
    const [leaderMetrics, standbyMetrics] = await Promise.all([
      scrape(pair.replicas[leader].process.metricsUrl),
      scrape(pair.replicas[standby].process.metricsUrl),
    ]);
    assert.equal(leaderMetrics.value('kube_ecrlogin_leader'), 1);
    assert.equal(standbyMetrics.value('kube_ecrlogin_leader'), 0);
    // Its one possible write attempt is the Lease create it lost at start (a 409, counted as an error).
    const lostCreate = standbyMetrics.sum('kube_ecrlogin_kubernetes_writes_total', { verb: 'create', resource: 'leases', result: 'error' });
    assert.ok(lostCreate <= 1, `${lostCreate} failed Lease creates`);
    assert.equal(standbyMetrics.sum('kube_ecrlogin_kubernetes_writes_total') - lostCreate, 0, 'the standby wrote nothing else');
    assert.equal(standbyMetrics.value('kube_ecrlogin_managed_secrets'), names.length, 'its cache holds the Secrets');
  });

  it('when the leader is killed, the standby takes over within the lease duration and refreshes every Secret before it expires', async (t) => {
    const { leader, standby, lease } = await leaderOf(pair);
    const before = new Map<string, number>();
    for (const name of names) before.set(name, Date.parse((await readSecret(name, 'ecr-login')).metadata?.annotations?.['ecr-login/expires-at'] ?? ''));
    const killedAt = Date.now();
    pair.replicas[leader].process.kill('SIGKILL');
    await pair.replicas[leader].process.exited;

    const taken = await eventually('the standby holds the Lease', async () => {
      const now = await readLease(pair.install);
      assert.equal(now?.spec?.holderIdentity, `replica-${standby}`);
      return { lease: now, at: Date.now() };
    });
    // The standby saw the last renewal up to one (jittered) retry period late, and polls as often: the
    // lease duration (4 s) plus two retry periods of up to 1.1 s, plus two seconds for slow machines.
    assert.ok(taken.at - killedAt < 4_000 + 2 * 1_100 + 2_000, `took over after ${taken.at - killedAt} ms`);
    t.diagnostic(`the standby took over ${taken.at - killedAt} ms after the leader was killed`);
    assert.equal(taken.lease?.spec?.leaseTransitions, (lease.spec?.leaseTransitions ?? 0) + 1);

    const newLeader = pair.replicas[standby];
    for (const name of names) {
      const expired = before.get(name) ?? 0;
      const refresh = await eventually(
        `${name} refreshed by the new leader`,
        async () => {
          const secret = await readSecret(name, 'ecr-login');
          assert.ok(Date.parse(secret.metadata?.annotations?.['ecr-login/expires-at'] ?? '') > expired, 'a new token');
          const writes = cluster().writes({ user: newLeader.user, namespace: name, resource: 'secrets' });
          assert.ok(writes.length > 0);
          return writes[0];
        },
        { timeoutMs: tokenLifetimeMs },
      );
      const writtenAt = Date.parse(refresh?.requestReceivedTimestamp ?? '');
      assert.ok(writtenAt < expired, `${name}: refreshed ${expired - writtenAt} ms before its token expired`);
      t.diagnostic(`${name}: refreshed by the new leader ${expired - writtenAt} ms before its token expired`);
    }
    assert.equal((await scrape(newLeader.process.metricsUrl)).value('kube_ecrlogin_leader'), 1);
  });
});

describe('a clean shutdown of the leader', () => {
  let aws: AwsTestServer;
  let pair: Pair;

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    // A long lease: a handover that waited for expiry would take 20 s.
    pair = await startPair(aws, ['--lease-duration', '20s', '--renew-deadline', '15s', '--retry-period', '500ms'], '');
  });

  after(async () => {
    await Promise.all(Object.values(pair.replicas).map(({ process }) => stopController(process)));
    await aws.close();
  });

  it('releases the Lease, and the standby takes over at once instead of after the lease duration', async (t) => {
    const { leader, standby } = await leaderOf(pair);
    await eventually('the standby campaigns', () => {
      assert.ok(pair.replicas[standby].process.logged('Waiting for leadership').length > 0);
      return Promise.resolve();
    });
    const stoppedAt = Date.now();
    pair.replicas[leader].process.kill('SIGTERM');
    assert.deepEqual(await pair.replicas[leader].process.exited, { code: 0, signal: null });
    assert.ok(pair.replicas[leader].process.logged('Released leadership').length === 1);
    await eventually('the standby holds the Lease', async () => {
      assert.equal((await readLease(pair.install))?.spec?.holderIdentity, `replica-${standby}`);
    });
    const handover = Date.now() - stoppedAt;
    assert.ok(handover < 5_000, `handed over in ${handover} ms, not after the 20 s lease duration`);
    t.diagnostic(`handed over ${handover} ms after SIGTERM`);
  });
});

describe('a leader whose Lease another holder takes', () => {
  let aws: AwsTestServer;
  let install: Install;
  let controller: ControllerProcess;

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    install = await createInstall('lost');
    const account = await serviceAccount(install, 'controller');
    controller = await spawnController({
      install,
      identity: 'lost-0',
      kubeconfig: account.kubeconfig,
      awsEndpoint: aws.endpoint,
      args: ['--leader-elect', '--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '500ms'],
    });
  });

  after(async () => {
    await stopController(controller);
    await aws.close();
  });

  it('steps down on its next renewal, stops, and exits 1 so that the restart is visible', async () => {
    const lease = await eventually('the controller leads', async () => {
      const current = await readLease(install);
      assert.equal(current?.spec?.holderIdentity, 'lost-0');
      return current;
    });
    // Another replica (as after a partition) writes itself into the Lease.
    await admin().coordination.replaceNamespacedLease({
      namespace: install.namespace,
      name: 'kube-ecrlogin',
      body: { ...lease, spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: new k8s.V1MicroTime(), leaseDurationSeconds: 60 } },
    });
    assert.deepEqual(await controller.exited, { code: 1, signal: null });
    assert.equal(controller.logged('Lost leadership').length, 1);
    assert.equal(controller.logged('Released leadership').length, 0, 'a Lease held by another is not released');
    assert.equal((await readLease(install))?.spec?.holderIdentity, 'intruder');
  });
});
