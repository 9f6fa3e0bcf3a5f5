// The Event recorder sends in the background: emit() returns at once, a bounded number of Events
// are in flight, flush() waits for the rest, a failing Event API is logged and forgotten, and a
// backlog beyond its bound is dropped rather than held.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CoreV1Event } from '@kubernetes/client-node';
import { systemClock } from '../../../src/clock.ts';
import type { KubeApi } from '../../../src/kube/api.ts';
import { EventRecorder, reasons } from '../../../src/kube/events.ts';
import { silentLogger } from '../../../src/log.ts';

/** An Event API whose calls wait until released; it records what was sent and the most in flight. */
function heldApi(fail = false): { api: KubeApi; sent: CoreV1Event[]; inFlight: () => number; most: () => number; release: () => void } {
  const sent: CoreV1Event[] = [];
  const waiting: (() => void)[] = [];
  let inFlight = 0;
  let most = 0;
  const api = {
    createEvent: (event: CoreV1Event) =>
      new Promise<void>((resolve, reject) => {
        inFlight++;
        most = Math.max(most, inFlight);
        waiting.push(() => {
          inFlight--;
          sent.push(event);
          if (fail) reject(new Error('the Event API is down'));
          else resolve();
        });
      }),
  } as unknown as KubeApi;
  return { api, sent, inFlight: () => inFlight, most: () => most, release: () => waiting.splice(0).forEach((go) => go()) };
}

const target = (i: number) => ({ kind: 'ServiceAccount', namespace: 'team-a', name: `sa-${i}` }) as const;

/** Releases held calls until flush() resolves. */
async function drain(recorder: EventRecorder, held: ReturnType<typeof heldApi>): Promise<boolean> {
  const flushed = recorder.flush(5_000);
  const pump = setInterval(() => held.release(), 1);
  try {
    return await flushed;
  } finally {
    clearInterval(pump);
  }
}

describe('EventRecorder', () => {
  it('returns at once and sends at most `concurrency` Events at a time, in order', async () => {
    const held = heldApi();
    const recorder = new EventRecorder({ api: held.api, clock: systemClock, log: silentLogger(), instance: 'test', concurrency: 2 });
    for (let i = 0; i < 10; i++) recorder.emit(target(i), 'Normal', reasons.CredentialsIssued, `issued ${i}`);
    assert.equal(held.inFlight(), 2);
    assert.equal(await drain(recorder, held), true);
    assert.equal(held.most(), 2);
    assert.deepEqual(
      held.sent.map((e) => e.message),
      Array.from({ length: 10 }, (_, i) => `issued ${i}`),
    );
  });

  it('flush() gives up after its timeout while an Event is stuck, and resolves at once when nothing waits', async () => {
    const held = heldApi();
    const recorder = new EventRecorder({ api: held.api, clock: systemClock, log: silentLogger(), instance: 'test' });
    assert.equal(await recorder.flush(10), true);
    recorder.emit(target(0), 'Warning', reasons.RefreshFailed, 'stuck');
    assert.equal(await recorder.flush(20), false);
    assert.equal(await drain(recorder, held), true);
  });

  it('a failing Event API neither throws nor stops the Events after it', async () => {
    const held = heldApi(true);
    const recorder = new EventRecorder({ api: held.api, clock: systemClock, log: silentLogger(), instance: 'test', concurrency: 1 });
    for (let i = 0; i < 3; i++) recorder.emit(target(i), 'Warning', reasons.RefreshFailed, `failed ${i}`);
    assert.equal(await drain(recorder, held), true);
    assert.equal(held.sent.length, 3);
  });

  it('drops Events beyond maxPending instead of holding an unbounded backlog', async () => {
    const held = heldApi();
    const recorder = new EventRecorder({ api: held.api, clock: systemClock, log: silentLogger(), instance: 'test', concurrency: 1, maxPending: 3 });
    for (let i = 0; i < 10; i++) recorder.emit(target(i), 'Normal', reasons.CredentialsIssued, `issued ${i}`);
    assert.equal(await drain(recorder, held), true);
    // One in flight at once, three waiting; the other six were dropped.
    assert.deepEqual(
      held.sent.map((e) => e.message),
      ['issued 0', 'issued 1', 'issued 2', 'issued 3'],
    );
  });

  it('warnOnce() says a repeated warning once, and again after resolve()', async () => {
    const held = heldApi();
    const recorder = new EventRecorder({ api: held.api, clock: systemClock, log: silentLogger(), instance: 'test' });
    recorder.warnOnce(target(0), reasons.RefreshFailed, 'AWS throttled');
    recorder.warnOnce(target(0), reasons.RefreshFailed, 'AWS throttled');
    assert.equal(recorder.resolve(target(0), reasons.RefreshFailed), true);
    recorder.warnOnce(target(0), reasons.RefreshFailed, 'AWS throttled');
    assert.equal(await drain(recorder, held), true);
    assert.equal(held.sent.length, 2);
  });

  it('says what concerns a Namespace in the namespace, in full, and leaves the admins in default only the reason', async () => {
    const held = heldApi();
    const recorder = new EventRecorder({ api: held.api, clock: systemClock, log: silentLogger(), instance: 'test' });
    const ns = { kind: 'Namespace', name: 'team-a' } as const;
    recorder.warnOnce(ns, reasons.PolicyDenied, 'denied by policy: rule a: role arn:aws:iam::111122223333:role/x is not allowed');
    recorder.emit(ns, 'Normal', reasons.CredentialsIssued, 'Created Secret ecr-login with credentials for 111122223333.dkr.ecr.us-east-1.amazonaws.com');
    assert.equal(await drain(recorder, held), true);
    const where = held.sent.map((e) => [e.metadata.namespace, `${e.involvedObject.kind}/${e.involvedObject.name}`, e.reason, e.message]);
    assert.deepEqual(where, [
      ['team-a', 'ServiceAccount/default', 'PolicyDenied', 'Namespace team-a: denied by policy: rule a: role arn:aws:iam::111122223333:role/x is not allowed'],
      ['default', 'Namespace/team-a', 'PolicyDenied', 'PolicyDenied in namespace team-a: its Events say why (kubectl get events -n team-a)'],
      [
        'team-a',
        'ServiceAccount/default',
        'CredentialsIssued',
        'Namespace team-a: Created Secret ecr-login with credentials for 111122223333.dkr.ecr.us-east-1.amazonaws.com',
      ],
    ]);
    for (const event of held.sent.filter((e) => e.metadata.namespace === 'default'))
      assert.doesNotMatch(event.message ?? '', /arn:|\d{12}/, 'nothing of the tenant in default');
  });
});
