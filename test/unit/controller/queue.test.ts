// The work queue's client-go semantics, driven by a fake clock: no sleeps, no wall-clock timing.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../../src/controller/queue.ts';
import { FakeClock } from '../../support/fake-clock.ts';

function setup(base = 1_000, max = 60_000): { clock: FakeClock; queue: WorkQueue<string> } {
  const clock = new FakeClock(0);
  return { clock, queue: new WorkQueue<string>({ clock, baseDelayMs: base, maxDelayMs: max }) };
}

/** Lets pending promise callbacks run (one turn of the event loop; no timer, no waiting on time). */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Tracks whether a promise has settled, and with what. */
function track<T>(promise: Promise<T>): { settled: boolean; value: T | undefined } {
  const state: { settled: boolean; value: T | undefined } = { settled: false, value: undefined };
  void promise.then((value) => {
    state.settled = true;
    state.value = value;
  });
  return state;
}

describe('WorkQueue', () => {
  it('collapses duplicate keys and hands them out in order', async () => {
    const { queue } = setup();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    assert.equal(queue.length, 2);
    assert.equal(await queue.get(), 'a');
    assert.equal(await queue.get(), 'b');
    assert.equal(queue.length, 0);
  });

  it('never hands out a key that is being processed', async () => {
    const { queue } = setup();
    queue.add('a');
    assert.equal(await queue.get(), 'a');
    queue.add('a');
    assert.equal(queue.length, 0, 'the re-added key waits for done()');
    const next = track(queue.get());
    await flush();
    assert.equal(next.settled, false);
    queue.done('a');
    await flush();
    assert.deepEqual(next, { settled: true, value: 'a' });
  });

  it('hands a key added while processing out once more after done(), however often it was added', async () => {
    const { queue } = setup();
    queue.add('a');
    await queue.get();
    queue.add('a');
    queue.add('a');
    queue.add('a');
    queue.done('a');
    assert.equal(queue.length, 1);
    assert.equal(await queue.get(), 'a');
    queue.done('a');
    assert.equal(queue.length, 0);
  });

  it('does not hand out a processed key again unless it was added meanwhile', async () => {
    const { queue } = setup();
    queue.add('a');
    await queue.get();
    queue.done('a');
    assert.equal(queue.length, 0);
    assert.equal(queue.processingCount, 0);
  });

  it('hands other keys out while one is processing', async () => {
    const { queue } = setup();
    queue.add('a');
    queue.add('b');
    assert.equal(await queue.get(), 'a');
    assert.equal(await queue.get(), 'b');
    assert.equal(queue.processingCount, 2);
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const { queue } = setup();
    const waiting = track(queue.get());
    await flush();
    assert.equal(waiting.settled, false);
    queue.add('a');
    await flush();
    assert.deepEqual(waiting, { settled: true, value: 'a' });
    assert.equal(queue.processingCount, 1);
  });

  it('backs off exponentially per key and caps the delay', () => {
    const { queue } = setup(1_000, 10_000);
    const delays = Array.from({ length: 7 }, () => queue.addRateLimited('a'));
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
    assert.equal(queue.failures('a'), 7);
    assert.equal(queue.addRateLimited('b'), 1_000, 'another key has its own backoff');
  });

  it('does not overflow after very many failures', () => {
    const { queue } = setup(1_000, 300_000);
    let delay = 0;
    for (let i = 0; i < 2_000; i++) delay = queue.addRateLimited('a');
    assert.equal(delay, 300_000);
  });

  it('adds a rate-limited key only when its delay has passed', async () => {
    const { clock, queue } = setup(1_000, 60_000);
    queue.addRateLimited('a');
    queue.addRateLimited('a');
    assert.equal(queue.delayedCount, 1);
    clock.advance(999);
    assert.equal(queue.length, 0, 'the earlier (first) delay wins and is not yet due');
    clock.advance(1);
    assert.equal(queue.length, 1);
    assert.equal(queue.delayedCount, 0);
    assert.equal(await queue.get(), 'a');
  });

  it('forget() resets the backoff to the base delay', () => {
    const { queue } = setup(500, 60_000);
    queue.addRateLimited('a');
    queue.addRateLimited('a');
    queue.forget('a');
    assert.equal(queue.failures('a'), 0);
    assert.equal(queue.addRateLimited('a'), 500);
  });

  it('addAfter: an earlier delay replaces a later one', async () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 10_000);
    queue.addAfter('a', 3_000);
    clock.advance(2_999);
    assert.equal(queue.length, 0);
    clock.advance(1);
    assert.equal(queue.length, 1);
    await queue.get();
    queue.done('a');
    clock.advance(10_000);
    assert.equal(queue.length, 0, 'the replaced later delay does not fire');
    assert.equal(clock.pending, 0);
  });

  it('addAfter: a later delay does not push back an earlier one', () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 3_000);
    queue.addAfter('a', 10_000);
    clock.advance(3_000);
    assert.equal(queue.length, 1);
    assert.equal(clock.pending, 0, 'the later delay was never scheduled');
  });

  it('addAfter: a zero, negative or NaN delay adds at once', () => {
    for (const delay of [0, -5, Number.NaN]) {
      const { queue } = setup();
      queue.addAfter('a', delay);
      assert.equal(queue.length, 1, `delay ${delay}`);
      assert.equal(queue.delayedCount, 0);
    }
  });

  it('addAfter: a delayed key that is already queued is not queued twice', () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 1_000);
    queue.add('a');
    clock.advance(1_000);
    assert.equal(queue.length, 1);
  });

  it('addAfter: a delayed key that falls due while processing runs once more afterwards', async () => {
    const { clock, queue } = setup();
    queue.add('a');
    await queue.get();
    queue.addAfter('a', 1_000);
    clock.advance(1_000);
    assert.equal(queue.length, 0);
    queue.done('a');
    assert.equal(await queue.get(), 'a');
  });

  it('shutDown with nothing in flight resolves true at once and hands out nothing more', async () => {
    const { clock, queue } = setup();
    queue.add('a');
    queue.addAfter('b', 1_000);
    assert.equal(await queue.shutDown(5_000), true);
    assert.equal(queue.shuttingDown, true);
    assert.equal(await queue.get(), undefined);
    assert.equal(clock.pending, 0, 'delayed adds are cancelled');
    queue.add('c');
    queue.addAfter('c', 1);
    queue.addRateLimited('c');
    assert.equal(queue.length, 0);
    assert.equal(queue.delayedCount, 0);
  });

  it('shutDown releases waiting workers with undefined', async () => {
    const { queue } = setup();
    const waiting = track(queue.get());
    await queue.shutDown();
    await flush();
    assert.deepEqual(waiting, { settled: true, value: undefined });
  });

  it('shutDown waits for in-flight keys and resolves true when they are done', async () => {
    const { queue } = setup();
    queue.add('a');
    queue.add('b');
    await queue.get();
    await queue.get();
    const drained = track(queue.shutDown(30_000));
    queue.add('a');
    queue.done('a');
    await flush();
    assert.equal(drained.settled, false, 'b is still in flight');
    assert.equal(queue.length, 0, 'a key added during shutdown is not queued again');
    queue.done('b');
    await flush();
    assert.deepEqual(drained, { settled: true, value: true });
  });

  it('shutDown resolves false when in-flight work outlasts the timeout', async () => {
    const { clock, queue } = setup();
    queue.add('a');
    await queue.get();
    const drained = track(queue.shutDown(30_000));
    clock.advance(29_999);
    await flush();
    assert.equal(drained.settled, false);
    clock.advance(1);
    await flush();
    assert.deepEqual(drained, { settled: true, value: false });
    queue.done('a');
  });

  it('shutDown without a timeout waits as long as it takes', async () => {
    const { clock, queue } = setup();
    queue.add('a');
    await queue.get();
    const drained = track(queue.shutDown());
    clock.advance(365 * 86_400_000);
    await flush();
    assert.equal(drained.settled, false);
    queue.done('a');
    await flush();
    assert.deepEqual(drained, { settled: true, value: true });
  });

  it('a second shutDown while draining resolves when the first does', async () => {
    const { queue } = setup();
    queue.add('a');
    await queue.get();
    const first = track(queue.shutDown());
    const second = track(queue.shutDown());
    queue.done('a');
    await flush();
    assert.deepEqual(first, { settled: true, value: true });
    assert.deepEqual(second, { settled: true, value: true });
  });

  it('a drained shutDown cancels its timeout timer', async () => {
    const { clock, queue } = setup();
    queue.add('a');
    await queue.get();
    const drained = queue.shutDown(30_000);
    queue.done('a');
    assert.equal(await drained, true);
    assert.equal(clock.pending, 0);
  });
});
