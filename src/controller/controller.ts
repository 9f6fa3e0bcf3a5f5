// The controller loop: informers turn changes into namespace keys, workers reconcile keys from the
// work queue. Handlers only enqueue; all decisions are in the reconciler.

import {
  CoreV1Api,
  type KubeConfig,
  type V1Namespace,
  type V1Secret,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';
import { Informer } from '../kube/informer.ts';
import { RecentWrites } from '../kube/recent-writes.ts';
import { metadataOnly } from '../kube/metadata.ts';
import { metadataForCache, withoutManagedFields } from '../kube/trim.ts';
import { maxValueLength } from '../annotations.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { WorkQueue } from './queue.ts';
import type { CacheReader, ReconcileResult, Reconciler } from './reconciler.ts';
import { argocdSecretType, dataWrittenBy, dataWrittenByUs, managedBy, managedSelector } from './secrets.ts';
import { fieldManager } from '../kube/objects.ts';

/**
 * What the Secret cache keeps: metadata only (no data crosses the wire), the managed-by label, our
 * annotations (each at most one character longer than any valid value), and whether another field
 * manager wrote the data. A Secret someone made to look like ours costs a few hundred bytes.
 */
export const secretMetadata = metadataForCache<V1Secret>(
  { labels: [managedBy.key, argocdSecretType.key], annotationPrefix: 'ecr-login/', maxValueLength, fieldManager, writtenByOthers: dataWrittenBy, writtenByUs: dataWrittenByUs },
  { apiVersion: 'v1', kind: 'Secret' },
);

export interface ControllerOptions {
  readonly config: KubeConfig;
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
}

export class Controller implements CacheReader {
  readonly #o: ControllerOptions;
  readonly queue: WorkQueue<string>;
  readonly namespaces: Informer<V1Namespace>;
  readonly serviceAccounts: Informer<V1ServiceAccount>;
  readonly secretsInformer: Informer<V1Secret>;
  #reconciler: Reconciler | undefined;
  readonly #recentSecrets: RecentWrites<V1Secret>;
  readonly #recentServiceAccounts: RecentWrites<V1ServiceAccount>;
  #workers: Promise<void>[] = [];
  #resync: NodeJS.Timeout | undefined;
  /** The last reconcile of each namespace, and how many there were (for the doctor and tests). */
  readonly lastResults = new Map<string, ReconcileResult & { at: number; count: number }>();

  constructor(options: ControllerOptions) {
    this.#o = options;
    this.#recentSecrets = new RecentWrites(options.clock);
    this.#recentServiceAccounts = new RecentWrites(options.clock);
    this.queue = new WorkQueue<string>({ clock: options.clock, baseDelayMs: options.backoffBaseMs, maxDelayMs: options.backoffMaxMs });
    const core = options.config.makeApiClient(CoreV1Api);
    const log = options.log;
    const nsSelector = options.namespaceSelector;
    // A watch that keeps failing is retried no less often than a failing reconcile: once the apiserver
    // is back, changes are seen within one backoff cap (the informer's own cap is 30 s).
    const maxRestartDelayMs = Math.min(options.backoffMaxMs, 30_000);
    this.namespaces = new Informer<V1Namespace>({
      name: 'namespaces',
      config: options.config,
      path: '/api/v1/namespaces',
      list: (page) => core.listNamespace({ ...page, ...(nsSelector !== undefined ? { labelSelector: nsSelector } : {}) }),
      ...(nsSelector !== undefined ? { labelSelector: nsSelector } : {}),
      log,
      maxRestartDelayMs,
      transform: withoutManagedFields,
    });
    this.serviceAccounts = new Informer<V1ServiceAccount>({
      name: 'serviceaccounts',
      config: options.config,
      path: '/api/v1/serviceaccounts',
      list: (page) => core.listServiceAccountForAllNamespaces(page),
      log,
      maxRestartDelayMs,
      transform: withoutManagedFields,
    });
    const metadata = metadataOnly(options.config);
    const metadataCore = metadata.makeApiClient(CoreV1Api);
    this.secretsInformer = new Informer<V1Secret>({
      name: 'secrets',
      config: metadata,
      path: '/api/v1/secrets',
      list: (page) => metadataCore.listSecretForAllNamespaces({ ...page, labelSelector: managedSelector }),
      labelSelector: managedSelector,
      log,
      maxRestartDelayMs,
      transform: secretMetadata,
    });
    this.namespaces.on((ns) => this.enqueue(ns.metadata?.name));
    this.serviceAccounts.on((sa) => this.enqueue(sa.metadata?.namespace));
    this.secretsInformer.on((secret) => this.enqueue(secret.metadata?.namespace));
  }

  set reconciler(reconciler: Reconciler) {
    this.#reconciler = reconciler;
  }

  // CacheReader, for the reconciler.
  namespace(name: string): V1Namespace | undefined {
    return this.namespaces.get(name);
  }

  serviceAccountsIn(namespace: string): readonly V1ServiceAccount[] {
    return this.#recentServiceAccounts.merge(namespace, this.serviceAccounts.list(namespace));
  }

  secrets(namespace: string): readonly V1Secret[] {
    return this.#recentSecrets.merge(namespace, this.secretsInformer.list(namespace));
  }

  wrote(kind: 'Secret' | 'ServiceAccount', namespace: string, name: string, object: V1Secret | V1ServiceAccount | undefined): void {
    // Kept as the cache keeps objects (a cold start remembers one write per namespace for a while).
    if (kind === 'Secret') this.#recentSecrets.wrote(namespace, name, object === undefined ? undefined : secretMetadata(object));
    else this.#recentServiceAccounts.wrote(namespace, name, object === undefined ? undefined : withoutManagedFields(object));
  }

  conflicted(kind: 'Secret' | 'ServiceAccount', namespace: string, name: string): void {
    if (kind === 'Secret') this.#recentSecrets.forget(namespace, name);
    else this.#recentServiceAccounts.forget(namespace, name);
  }

  enqueue(namespace: string | undefined): void {
    if (namespace === undefined || namespace === '') return;
    // With a namespace selector, objects in other namespaces are none of our business.
    if (this.#o.namespaceSelector !== undefined && this.namespaces.synced && this.namespaces.get(namespace) === undefined) {
      if (this.secretsInformer.list(namespace).length === 0) {
        this.lastResults.delete(namespace); // gone, or no longer ours to serve
        return;
      }
    }
    this.queue.add(namespace);
    this.#o.metrics.queueDepth.set(this.queue.length);
  }

  /** Every namespace we know, and every one holding a managed Secret. */
  enqueueAll(): void {
    for (const ns of this.namespaces.list()) this.enqueue(ns.metadata?.name);
    for (const secret of this.secretsInformer.list()) this.enqueue(secret.metadata?.namespace);
  }

  /** Starts the informers and waits for their first lists. */
  async sync(): Promise<void> {
    await Promise.all([this.namespaces.start(), this.serviceAccounts.start(), this.secretsInformer.start()]);
    this.#o.log.info('Caches synced', {
      namespaces: this.namespaces.list().length,
      serviceAccounts: this.serviceAccounts.list().length,
      secrets: this.secretsInformer.list().length,
    });
  }

  get synced(): boolean {
    return this.namespaces.synced && this.serviceAccounts.synced && this.secretsInformer.synced;
  }

  /** Starts the workers and the periodic resync (after sync()). */
  startWorkers(): void {
    this.enqueueAll();
    for (let i = 0; i < this.#o.workers; i++) this.#workers.push(this.#work());
    this.#resync = setInterval(() => this.enqueueAll(), this.#o.resyncMs);
    this.#resync.unref();
  }

  get working(): boolean {
    return this.#workers.length > 0;
  }

  /** Stops taking work, waits for in-flight reconciles (up to timeoutMs), stops the informers. */
  async stop(timeoutMs: number): Promise<boolean> {
    if (this.#resync !== undefined) clearInterval(this.#resync);
    const drained = await this.queue.shutDown(timeoutMs);
    await Promise.all([this.namespaces.stop(), this.serviceAccounts.stop(), this.secretsInformer.stop()]);
    return drained;
  }

  /** Reconciles one key now, outside the queue (the `once` command). */
  async reconcileOnce(namespace: string): Promise<ReconcileResult> {
    if (this.#reconciler === undefined) throw new Error('no reconciler');
    return this.#reconciler.reconcile(namespace);
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.#o.metrics.queueDepth.set(this.queue.length);
      try {
        await this.#process(key);
      } finally {
        this.queue.done(key);
        this.#o.metrics.queueScheduled.set(this.queue.delayedCount);
      }
    }
  }

  async #process(key: string): Promise<void> {
    const { clock, log, metrics } = this.#o;
    if (this.#reconciler === undefined) throw new Error('no reconciler');
    const started = clock.now();
    const end = metrics.reconcileDuration.startTimer();
    let result: ReconcileResult;
    try {
      result = await this.#reconciler.reconcile(key);
    } catch (error) {
      // A bug or an unexpected API failure: retry with backoff, never crash the loop.
      result = { writes: 0, healthy: false, error: { message: errorMessage(error), transient: true } };
      log.error('Reconcile failed unexpectedly', { namespace: key, error: errorMessage(error) });
    }
    // A namespace that is gone (or no longer served) and holds nothing of ours leaves nothing behind.
    if (this.namespaces.get(key) === undefined && this.secretsInformer.list(key).length === 0) this.lastResults.delete(key);
    else this.lastResults.set(key, { ...result, at: clock.now(), count: (this.lastResults.get(key)?.count ?? 0) + 1 });
    if (result.error !== undefined) {
      end({ result: 'error' });
      const delay = this.queue.addRateLimited(key);
      log.warn('Reconcile failed, retrying', {
        namespace: key,
        retryInMs: delay,
        transient: result.error.transient,
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
