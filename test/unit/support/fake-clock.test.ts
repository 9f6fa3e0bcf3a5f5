// The fake clock other tests rely on: timers fire in due order, at their due time, only when advanced.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../support/fake-clock.ts';

describe('FakeClock', () => {
  it('does not move by itself', () => {
    const clock = new FakeClock(1_000);
    assert.equal(clock.now(), 1_000);
    assert.equal(clock.now(), 1_000);
  });

  it('fires due timers in order of due time, each seeing its own time', () => {
    const clock = new FakeClock(0);
    const fired: [string, number][] = [];
    clock.after(30, () => fired.push(['c', clock.now()]));
    clock.after(10, () => fired.push(['a', clock.now()]));
    clock.after(20, () => fired.push(['b', clock.now()]));
    clock.after(10, () => fired.push(['a2', clock.now()]));
    clock.advance(25);
    assert.deepEqual(fired, [
      ['a', 10],
      ['a2', 10],
      ['b', 20],
    ]);
    assert.equal(clock.now(), 25);
    clock.advance(5);
    assert.deepEqual(fired.at(-1), ['c', 30]);
    assert.equal(clock.pending, 0);
  });

  it('does not fire a timer one millisecond early', () => {
    const clock = new FakeClock(0);
    let fired = false;
    clock.after(100, () => (fired = true));
    clock.advance(99);
    assert.equal(fired, false);
    clock.advance(1);
    assert.equal(fired, true);
  });

  it('does not fire a cancelled timer', () => {
    const clock = new FakeClock(0);
    let fired = false;
    clock.after(10, () => (fired = true)).cancel();
    clock.advance(10);
    assert.equal(fired, false);
    assert.equal(clock.pending, 0);
  });

  it('fires a timer set by a firing timer when it falls within the same advance', () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    clock.after(10, () => {
      fired.push(clock.now());
      clock.after(10, () => fired.push(clock.now()));
    });
    clock.advance(30);
    assert.deepEqual(fired, [10, 20]);
  });

  it('treats a negative delay as zero', () => {
    const clock = new FakeClock(0);
    let fired = false;
    clock.after(-5, () => (fired = true));
    assert.equal(clock.nextAt, 0);
    clock.advance(0);
    assert.equal(fired, true);
  });

  it('refuses to go backwards', () => assert.throws(() => new FakeClock(0).advance(-1)));
});
