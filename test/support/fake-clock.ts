// A Clock for tests: time stands still until advance() moves it, firing the timers that fall due in
// order of their due time (then of their creation). No real timers, no wall clock.

import type { Clock, Timer } from '../../src/clock.ts';

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Pending[] = [];

  constructor(start = Date.UTC(2025, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): Timer {
    const pending: Pending = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(pending);
    return {
      cancel: () => {
        pending.cancelled = true;
      },
    };
  }

  /** Moves time forward by ms, firing every timer due by then, each with now() at its due time. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new Error(`cannot advance a clock by ${ms} ms`);
    const end = this.#now + ms;
    for (;;) {
      const next = this.#next();
      if (next === undefined || next.at > end) break;
      this.#timers = this.#timers.filter((timer) => timer !== next);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = end;
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.#timers.filter((timer) => !timer.cancelled).length;
  }

  /** When the next live timer fires, if any. */
  get nextAt(): number | undefined {
    return this.#next()?.at;
  }

  #next(): Pending | undefined {
    this.#timers = this.#timers.filter((timer) => !timer.cancelled);
    let next: Pending | undefined;
    for (const timer of this.#timers) {
      if (next === undefined || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq)) next = timer;
    }
    return next;
  }
}
