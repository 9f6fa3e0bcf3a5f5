// A work queue with client-go's semantics: duplicate keys collapse; a key never runs twice at once; a
// key added while it runs runs once more afterwards; per-key exponential backoff on failure, capped;
// delayed adds for scheduled refreshes (the earliest one wins); shutdown lets in-flight work finish.

import type { Clock, Timer } from '../clock.ts';

export interface QueueOptions {
  readonly clock: Clock;
  /** First retry delay after a failure, ms. */
  readonly baseDelayMs: number;
  /** Longest retry delay, ms. */
  readonly maxDelayMs: number;
}

export class WorkQueue<K> {
  readonly #options: QueueOptions;
  /** Keys waiting to be handed out, in order. */
  readonly #queue: K[] = [];
  /** Keys that need processing: queued, or re-added while processing. */
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  readonly #failures = new Map<K, number>();
  readonly #delayed = new Map<K, { at: number; timer: Timer }>();
  readonly #waiters: ((key: K | undefined) => void)[] = [];
  #shuttingDown = false;
  /** One per pending shutDown() call: each resolves when in-flight work is done. */
  readonly #drained: (() => void)[] = [];

  constructor(options: QueueOptions) {
    this.#options = options;
  }

  /** Marks a key as needing work now. */
  add(key: K): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return; // done() re-queues it
    this.#push(key);
  }

  /** Adds a key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: K, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const at = this.#options.clock.now() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending !== undefined) {
      if (pending.at <= at) return;
      pending.timer.cancel();
    }
    const timer = this.#options.clock.after(delayMs, () => {
      if (this.#delayed.get(key)?.timer === timer) this.#delayed.delete(key);
      this.add(key);
    });
    this.#delayed.set(key, { at, timer });
  }

  /** Adds a key after its next backoff delay: base * 2^failures, capped. Returns the delay. */
  addRateLimited(key: K): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = Math.min(this.#options.baseDelayMs * 2 ** Math.min(failures, 40), this.#options.maxDelayMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets a key's backoff after a success. */
  forget(key: K): void {
    this.#failures.delete(key);
  }

  failures(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  /** The next key to work on, or undefined once the queue is shut down and empty. */
  get(): Promise<K | undefined> {
    const key = this.#queue.shift();
    if (key !== undefined) return Promise.resolve(this.#start(key));
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Ends work on a key; if it was added meanwhile, it is queued again. */
  done(key: K): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) this.#push(key);
    else if (this.#shuttingDown) this.#dirty.delete(key);
    if (this.#shuttingDown && this.#processing.size === 0) for (const drained of this.#drained.splice(0)) drained();
  }

  /** Keys waiting (not counting delayed ones or those in progress). */
  get length(): number {
    return this.#queue.length;
  }

  get delayedCount(): number {
    return this.#delayed.size;
  }

  get processingCount(): number {
    return this.#processing.size;
  }

  /** Stops handing out keys; resolves when in-flight keys are done, or after timeoutMs. */
  async shutDown(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    this.#shuttingDown = true;
    for (const { timer } of this.#delayed.values()) timer.cancel();
    this.#delayed.clear();
    this.#queue.length = 0;
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    if (this.#processing.size === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = Number.isFinite(timeoutMs) ? this.#options.clock.after(timeoutMs, () => resolve(false)) : undefined;
      this.#drained.push(() => {
        timer?.cancel();
        resolve(true);
      });
    });
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  #push(key: K): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(this.#start(key));
    else this.#queue.push(key);
  }

  #start(key: K): K {
    this.#dirty.delete(key);
    this.#processing.add(key);
    return key;
  }
}
