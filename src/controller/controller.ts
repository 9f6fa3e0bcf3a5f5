// The controller loop: informer changes become namespace keys, workers reconcile keys from the work
// queue. Handlers only enqueue; all decisions are in the reconciler. Built last, from the caches and
// the reconciler that reads them.

import type { Clock } from '../clock.ts';
import { reasons, type EventRecorder, type Regarding } from '../kube/events.ts';
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
  readonly events: EventRecorder;
  /** Where an Event about the controller's own work goes (its config ConfigMap). */
  readonly eventTarget: Regarding;
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
  /** The first pass after start: the namespaces not yet reconciled once, and what the pass created. */
  #firstPass: { readonly pending: Set<string>; readonly issuedIn: string[]; secrets: number } | undefined;
  /** The last reconcile of each namespace, and how many there were (the status the doctor reads; tests). */
  readonly lastResults = new Map<string, ReconcileResult & { at: number; count: number }>();

  constructor(options: ControllerOptions) {
    this.#options = options;
    this.queue = new WorkQueue<string>({ clock: options.clock, baseDelayMs: options.backoffBaseMs, maxDelayMs: options.backoffMaxMs });
    options.caches.onChange((namespace) => this.enqueue(namespace));
  }

  /** Queues a namespace's key; returns whether it is one to serve. */
  enqueue(namespace: string | undefined): boolean {
    if (namespace === undefined || namespace === '') return false;
    // With a namespace selector, objects in other namespaces are none of our business.
    const { caches } = this.#options;
    if (this.#options.namespaceSelector !== undefined && caches.namespacesSynced && caches.namespace(namespace) === undefined) {
      if (caches.secrets(namespace).length === 0) {
        // Gone, or no longer ours to serve.
        this.lastResults.delete(namespace);
        this.#options.reconciler.forget(namespace);
        return false;
      }
    }
    this.queue.add(namespace);
    return true;
  }

  /** Every namespace we know, and every one holding a managed Secret; returns those queued. */
  enqueueAll(): Set<string> {
    const names = new Set([...this.#options.caches.namespaceNames(), ...this.#options.caches.namespacesWithSecrets()]);
    for (const name of names) if (!this.enqueue(name)) names.delete(name);
    return names;
  }

  /**
   * Starts the workers and the periodic resync (after sync()). The first pass over every namespace
   * known now announces the Secrets it creates in one Event, not one in each namespace: after an
   * install or an upgrade that is thousands of Events nobody acted for, as many writes as the Secrets.
   */
  startWorkers(): void {
    const pending = this.enqueueAll();
    this.#firstPass = pending.size > 0 ? { pending, issuedIn: [], secrets: 0 } : undefined;
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
  async #reconcile(namespace: string, firstPass = false): Promise<ReconcileResult> {
    const { clock, log, reconciler, reconcileTimeoutMs } = this.#options;
    const deadline = new AbortController();
    const timer = clock.after(reconcileTimeoutMs, () => deadline.abort(new ReconcileDeadline(reconcileTimeoutMs)));
    try {
      return await reconciler.reconcile(namespace, deadline.signal, { firstPass });
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
    const { clock, log, metrics, caches, reconciler } = this.#options;
    const started = clock.now();
    const end = metrics.reconcileDuration.startTimer();
    // A key never runs twice at once: it leaves the first pass when its first reconcile ends.
    const firstPass = this.#firstPass?.pending.has(key) === true;
    const result = await this.#reconcile(key, firstPass);
    if (firstPass) this.#firstPassDone(key, result);
    // A namespace that is gone (or no longer served) and holds nothing of ours leaves nothing behind.
    if (caches.namespace(key) === undefined && caches.secrets(key).length === 0) {
      this.lastResults.delete(key);
      reconciler.forget(key);
    } else this.lastResults.set(key, { ...result, at: clock.now(), count: (this.lastResults.get(key)?.count ?? 0) + 1 });
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
    // Checked first: winston formats a line before its level is compared, and this runs on every pass.
    if (log.isDebugEnabled()) {
      log.debug('Reconciled namespace', {
        namespace: key,
        writes: result.writes,
        settled: result.settled,
        ms: clock.now() - started,
        requeueAfterMs: result.requeueAfterMs,
      });
    }
  }

  #firstPassDone(key: string, result: ReconcileResult): void {
    const pass = this.#firstPass;
    if (pass === undefined) return;
    pass.pending.delete(key);
    if (result.issued !== undefined) {
      pass.issuedIn.push(key);
      pass.secrets += result.issued;
    }
    if (pass.pending.size > 0) return;
    this.#firstPass = undefined;
    if (pass.secrets === 0) return;
    const { events, eventTarget, log } = this.#options;
    const shown =
      pass.issuedIn.slice(0, firstPassNamesShown).join(', ') +
      (pass.issuedIn.length > firstPassNamesShown ? ` and ${pass.issuedIn.length - firstPassNamesShown} more` : '');
    log.info('Created Secrets in the first pass', { secrets: pass.secrets, namespaces: pass.issuedIn.length });
    events.emit(
      eventTarget,
      'Normal',
      reasons.CredentialsIssued,
      `Created ${pass.secrets} Secret${pass.secrets === 1 ? '' : 's'} in ${pass.issuedIn.length} namespace${pass.issuedIn.length === 1 ? '' : 's'} in the first pass after start-up, without an Event in each: ${shown}`,
    );
  }
}

/** Namespaces the first pass's Event names; the rest are counted. */
const firstPassNamesShown = 20;

/** Why a reconcile was stopped: it ran past its deadline. */
class ReconcileDeadline extends Error {
  constructor(ms: number) {
    super(`reconcile stopped after ${Math.round(ms / 1000)} s, its deadline; what it did not reach is retried`);
    this.name = 'ReconcileDeadline';
  }
}
