// The controller loop: informer changes become namespace keys, workers reconcile keys from the work
// queue. Handlers only enqueue; all decisions are in the reconciler. Built last, from the caches and
// the reconciler that reads them.

import type { Clock } from '../clock.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Caches } from './caches.ts';
import { WorkQueue } from './queue.ts';
import type { ReconcileResult, Reconciler } from './reconciler.ts';

export interface ControllerOptions {
  readonly caches: Caches;
  readonly reconciler: Reconciler;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly workers: number;
  /** Only namespaces with these labels are served (a label selector), e.g. for sharding. */
  readonly namespaceSelector?: string;
  /** Every namespace is reconciled at least this often, ms: the safety net for a missed event. */
  readonly resyncMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** A reconcile still running after this long is stopped, and retried with backoff, ms. */
  readonly reconcileTimeoutMs: number;
}

export class Controller {
  readonly #options: ControllerOptions;
  readonly queue: WorkQueue<string>;
  #workers: Promise<void>[] = [];
  #resync: NodeJS.Timeout | undefined;
  /** The last reconcile of each namespace, and how many there were (the status the doctor reads; tests). */
  readonly lastResults = new Map<string, ReconcileResult & { at: number; count: number }>();

  constructor(options: ControllerOptions) {
    this.#options = options;
    this.queue = new WorkQueue<string>({ clock: options.clock, baseDelayMs: options.backoffBaseMs, maxDelayMs: options.backoffMaxMs });
    options.caches.onChange((namespace) => this.enqueue(namespace));
  }

  enqueue(namespace: string | undefined): void {
    if (namespace === undefined || namespace === '') return;
    // With a namespace selector, objects in other namespaces are none of our business.
    const { caches } = this.#options;
    if (this.#options.namespaceSelector !== undefined && caches.namespacesSynced && caches.namespace(namespace) === undefined) {
      if (caches.secrets(namespace).length === 0) {
        this.lastResults.delete(namespace); // gone, or no longer ours to serve
        return;
      }
    }
    this.queue.add(namespace);
  }

  /** Every namespace we know, and every one holding a managed Secret. */
  enqueueAll(): void {
    for (const name of this.#options.caches.namespaceNames()) this.enqueue(name);
    for (const name of this.#options.caches.namespacesWithSecrets()) this.enqueue(name);
  }

  /** Starts the workers and the periodic resync (after sync()). */
  startWorkers(): void {
    this.enqueueAll();
    for (let i = 0; i < this.#options.workers; i++) this.#workers.push(this.#work());
    this.#resync = setInterval(() => this.enqueueAll(), this.#options.resyncMs);
    this.#resync.unref();
  }

  /** Stops taking work, waits for in-flight reconciles (up to timeoutMs), stops the informers. */
  async stop(timeoutMs: number): Promise<boolean> {
    if (this.#resync !== undefined) clearInterval(this.#resync);
    const drained = await this.queue.shutDown(timeoutMs);
    await this.#options.caches.stop();
    return drained;
  }

  /** Reconciles one key now, outside the queue (the `once` command). */
  async reconcileOnce(namespace: string): Promise<ReconcileResult> {
    return this.#reconcile(namespace);
  }

  /** One reconcile under its deadline; a failure of any kind becomes its result, never an exception. */
  async #reconcile(namespace: string): Promise<ReconcileResult> {
    const { clock, log, reconciler, reconcileTimeoutMs } = this.#options;
    const deadline = new AbortController();
    const timer = clock.after(reconcileTimeoutMs, () => deadline.abort(new ReconcileDeadline(reconcileTimeoutMs)));
    try {
      return await reconciler.reconcile(namespace, deadline.signal);
    } catch (error) {
      if (error instanceof ReconcileDeadline) {
        log.warn('Reconcile stopped at its deadline', { namespace, deadlineMs: reconcileTimeoutMs });
      } else {
        // A bug or an unexpected API failure: retried with backoff, never crashing the loop.
        log.error('Reconcile failed unexpectedly', { namespace, error: errorMessage(error) });
      }
      return { writes: 0, healthy: false, error: { message: errorMessage(error) } };
    } finally {
      timer.cancel();
    }
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.#process(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  async #process(key: string): Promise<void> {
    const { clock, log, metrics, caches } = this.#options;
    const started = clock.now();
    const end = metrics.reconcileDuration.startTimer();
    const result = await this.#reconcile(key);
    // A namespace that is gone (or no longer served) and holds nothing of ours leaves nothing behind.
    if (caches.namespace(key) === undefined && caches.secrets(key).length === 0) this.lastResults.delete(key);
    else this.lastResults.set(key, { ...result, at: clock.now(), count: (this.lastResults.get(key)?.count ?? 0) + 1 });
    if (result.error !== undefined) {
      end({ result: 'error' });
      const delay = this.queue.addRateLimited(key);
      log.warn('Reconcile failed, retrying', {
        namespace: key,
        retryInMs: delay,
        error: result.error.message,
      });
    } else {
      end({ result: 'success' });
      this.queue.forget(key);
    }
    if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
    log.debug('Reconciled namespace', { namespace: key, writes: result.writes, ms: clock.now() - started, requeueAfterMs: result.requeueAfterMs });
  }
}

/** Why a reconcile was stopped: it ran past its deadline. */
class ReconcileDeadline extends Error {
  constructor(ms: number) {
    super(`reconcile stopped after ${Math.round(ms / 1000)} s, its deadline; what it did not reach is retried`);
    this.name = 'ReconcileDeadline';
  }
}
