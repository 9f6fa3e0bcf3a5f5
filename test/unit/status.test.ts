// The status the leader publishes for the doctor (src/status.ts), on an injected clock: written when
// it changes, at most once per interval, never in a steady state; failures named with their start,
// forgotten once they recover; a standby writes nothing until it may.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { ConfigInForce } from '../../src/config/source.ts';
import { NotLeaderError } from '../../src/leader.ts';
import { silentLogger } from '../../src/log.ts';
import { errorsShown, readStatus, StatusPublisher, type ControllerStatus, type LastResult } from '../../src/status.ts';
import { FakeClock } from '../support/fake-clock.ts';

const interval = 10_000;
const inForce: ConfigInForce = { configMap: 'ops/kube-ecrlogin-config', source: 'configmap', resourceVersion: '41', hash: 'abc', configMapState: 'valid' };

/** Lets the publisher's awaited write settle and its next tick be scheduled. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function harness(options: { mayWrite?: () => boolean } = {}) {
  const clock = new FakeClock();
  const results = new Map<string, LastResult>();
  let config = inForce;
  const writes: { at: number; status: ControllerStatus }[] = [];
  const publisher = new StatusPublisher({
    api: {
      applyConfigMap: (configMap: V1ConfigMap) => {
        if (options.mayWrite?.() === false) return Promise.reject(new NotLeaderError('not the leader: not writing ConfigMap ops/kube-ecrlogin-status'));
        const status = readStatus(configMap);
        if (!status.ok) throw new Error(status.error);
        writes.push({ at: clock.now(), status: status.value });
        return Promise.resolve();
      },
    },
    namespace: 'ops',
    name: 'kube-ecrlogin-status',
    intervalMs: interval,
    clock,
    log: silentLogger(),
    version: '9.9.9',
    instance: 'pod-a',
    leaderElection: true,
    config: () => config,
    results: () => results,
  });
  /** Moves the clock in steps of one second, letting each tick's write settle. */
  const run = async (ms: number): Promise<void> => {
    for (let left = ms; left > 0; left -= 1_000) {
      clock.advance(Math.min(1_000, left));
      await settle();
    }
  };
  return { clock, results, writes, publisher, run, setConfig: (next: ConfigInForce) => (config = next) };
}

describe('the status publisher', () => {
  it('writes the status once at start, then nothing while nothing changes, however long', async () => {
    const { publisher, writes, results, run, clock } = harness();
    results.set('team-a', { healthy: true, at: clock.now() });
    publisher.start();
    clock.advance(0);
    await settle();
    assert.equal(writes.length, 1);
    assert.deepEqual(writes[0]?.status, {
      version: '9.9.9',
      instance: 'pod-a',
      leaderElection: true,
      updatedAt: new Date(clock.now()).toISOString(),
      config: inForce,
      namespaces: { failing: 0, unhealthy: 0 },
      errors: [],
    });
    // Reconciles go on (new times, new counts) with the same outcome: a steady state.
    for (let minute = 0; minute < 60; minute++) {
      results.set('team-a', { healthy: true, at: clock.now() });
      await run(60_000);
    }
    assert.equal(writes.length, 1, 'no write in an hour of steady state');
    await publisher.stop();
  });

  it('writes a change at most once per interval, the latest state', async () => {
    const { publisher, writes, results, run, clock, setConfig } = harness();
    publisher.start();
    clock.advance(0);
    await settle();
    assert.equal(writes.length, 1);
    // A change every 100 ms for 30 s: one more namespace fails each time; the config changes once.
    for (let step = 0; step < 300; step++) {
      results.set(`ns-${step}`, { healthy: false, error: { message: 'GetAuthorizationToken failed' }, at: clock.now() });
      if (step === 150) setConfig({ ...inForce, configMapState: 'invalid', errors: ['refresh.margin: "always" is neither'] });
      clock.advance(100);
      await settle();
    }
    const gaps = writes.slice(1).map((write, index) => write.at - (writes[index]?.at ?? 0));
    assert.ok(writes.length >= 3 && writes.length <= 4, `${writes.length} writes in 30 s`);
    for (const gap of gaps) assert.ok(gap >= interval, `writes ${gap} ms apart`);
    await run(interval);
    assert.equal(writes.at(-1)?.status.config.configMapState, 'invalid', 'the latest state is written');
    assert.equal(writes.at(-1)?.status.namespaces.failing, 300);
    await publisher.stop();
  });

  it('names the newest failing namespaces with their reason and since when; a recovered one is forgotten', async () => {
    const { publisher, writes, results, run, clock } = harness();
    const start = clock.now();
    for (let i = 0; i < errorsShown + 2; i++) {
      results.set(`ns-${i}`, {
        healthy: false,
        error: { message: `GetAuthorizationToken failed: AccessDeniedException (HTTP 400): no ${i}` },
        at: start + i * 1_000,
      });
    }
    results.set('sandbox', { healthy: false, at: start });
    results.set('fine', { healthy: true, at: start });
    publisher.start();
    await run(1_000);
    const first = writes.at(-1)?.status;
    assert.deepEqual(first?.namespaces, { failing: errorsShown + 2, unhealthy: 1 });
    assert.deepEqual(
      first?.errors.map((error) => error.namespace),
      Array.from({ length: errorsShown }, (_, i) => `ns-${errorsShown + 1 - i}`),
      'the newest failures first',
    );
    assert.equal(first?.errors[0]?.reason, `GetAuthorizationToken failed: AccessDeniedException (HTTP 400): no ${errorsShown + 1}`);
    assert.equal(first?.errors[0]?.since, new Date(start + (errorsShown + 1) * 1_000).toISOString());

    // Retried and still failing (a later reconcile, another message): the failure keeps its start.
    results.set('ns-6', { healthy: false, error: { message: 'GetAuthorizationToken failed: ThrottlingException' }, at: clock.now() });
    // Recovered, and gone.
    results.set('ns-5', { healthy: true, at: clock.now() });
    results.delete('ns-4');
    await run(interval);
    const later = writes.at(-1)?.status;
    assert.equal(later?.namespaces.failing, errorsShown);
    assert.deepEqual(
      later?.errors.find((error) => error.namespace === 'ns-6'),
      {
        namespace: 'ns-6',
        reason: 'GetAuthorizationToken failed: ThrottlingException',
        since: new Date(start + 6_000).toISOString(),
      },
    );
    assert.ok(!later?.errors.some((error) => error.namespace === 'ns-5' || error.namespace === 'ns-4'));
    await publisher.stop();
  });

  it('keeps no credential and no long message', async () => {
    const { publisher, writes, results, run, clock } = harness();
    const jwt = `eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dGVhbS1hOmRlZmF1bHQifQ.c2lnbmF0dXJl`;
    results.set('team-a', { healthy: false, error: { message: `AssumeRoleWithWebIdentity failed with ${jwt} ${'x'.repeat(500)}` }, at: clock.now() });
    publisher.start();
    await run(1_000);
    const reason = writes.at(-1)?.status.errors[0]?.reason ?? '';
    assert.ok(!reason.includes(jwt));
    assert.ok(reason.length <= 200, `${reason.length} characters`);
    await publisher.stop();
  });

  it('as a standby writes nothing, and writes as soon as it leads', async () => {
    let leading = false;
    const { publisher, writes, run, clock } = harness({ mayWrite: () => leading });
    publisher.start();
    await run(3 * interval + 500);
    assert.equal(writes.length, 0);
    leading = true;
    publisher.nudge();
    clock.advance(0);
    await settle();
    assert.equal(writes.length, 1, 'at once, not an interval later');
    await run(3 * interval);
    assert.equal(writes.length, 1);
    await publisher.stop();
  });
});
