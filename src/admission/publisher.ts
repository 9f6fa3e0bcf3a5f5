// Keeps the admission policy's parameter ConfigMap (--admission-params) equal to what the caches say.
// Level-triggered like the controller: informer changes mark a namespace dirty; a flush recomputes the
// dirty namespaces' facts from the caches and applies the ConfigMap only when its data changed. Only
// the leader writes (the write gate refuses a standby, which retries once it leads).

import type { V1ConfigMap, V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import type { Clock, Timer } from '../clock.ts';
import type { Settings } from '../config/settings.ts';
import { describeKubeError, type KubeApi } from '../kube/api.ts';
import type { Logger } from '../log.ts';
import { managedBy } from '../controller/secrets.ts';
import { namespaceFacts, paramsData, type NamespaceFacts } from './params.ts';

export interface ParamsCache {
  namespace(name: string): V1Namespace | undefined;
  namespaceNames(): readonly string[];
  serviceAccountsIn(namespace: string): readonly V1ServiceAccount[];
}

export interface PublisherOptions {
  readonly api: Pick<KubeApi, 'applyConfigMap'>;
  readonly cache: ParamsCache;
  readonly settings: () => Settings;
  /** The ConfigMap's namespace and name. */
  readonly namespace: string;
  readonly name: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Changes seen within this long are written together, ms. */
  readonly debounceMs?: number;
  /** Wait before retrying a failed write, ms. */
  readonly retryMs?: number;
  /** Everything is recomputed and applied again at least this often (someone may have edited the ConfigMap), ms. */
  readonly resyncMs: number;
}

export class AdmissionParamsPublisher {
  readonly #options: PublisherOptions;
  readonly #facts = new Map<string, NamespaceFacts>();
  readonly #dirty = new Set<string>();
  #all = false;
  #written: string | undefined;
  #timer: Timer | undefined;
  #flushing: Promise<void> | undefined;
  #running = false;
  #skippedReported = false;
  #resync: NodeJS.Timeout | undefined;

  constructor(options: PublisherOptions) {
    this.#options = options;
  }

  /** Starts publishing: every namespace is looked at once (call after the caches synced). */
  start(): void {
    this.#running = true;
    this.touchAll();
    this.#resync = setInterval(() => this.touchAll(), this.#options.resyncMs);
    this.#resync.unref();
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#resync !== undefined) clearInterval(this.#resync);
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#flushing;
  }

  touch(namespace: string | undefined): void {
    if (namespace === undefined || namespace === '') return;
    this.#dirty.add(namespace);
    this.#schedule(this.#options.debounceMs ?? 10);
  }

  /**
   * Every namespace again, and an apply even if the data looks unchanged: after a settings change
   * (default Secret name, policy rules) and on each resync, which also undoes another writer's edits.
   */
  touchAll(): void {
    this.#all = true;
    this.#written = undefined;
    this.#schedule(this.#options.debounceMs ?? 10);
  }

  /** Resolves when what is known now has been written (tests). */
  async flushed(): Promise<void> {
    while (this.#timer !== undefined || this.#flushing !== undefined) {
      if (this.#flushing !== undefined) await this.#flushing;
      else await this.#flush();
    }
  }

  #schedule(ms: number): void {
    if (!this.#running || this.#timer !== undefined) return;
    this.#timer = this.#options.clock.after(ms, () => {
      this.#timer = undefined;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#flushing !== undefined) {
      // One write at a time; what changed meanwhile goes in the next.
      await this.#flushing;
      if (this.#dirty.size > 0 || this.#all) this.#schedule(0);
      return;
    }
    this.#flushing = this.#write().finally(() => {
      this.#flushing = undefined;
    });
    await this.#flushing;
  }

  async #write(): Promise<void> {
    const { cache, settings, log } = this.#options;
    const current = settings();
    const names = this.#all ? new Set([...cache.namespaceNames(), ...this.#facts.keys()]) : new Set(this.#dirty);
    this.#all = false;
    this.#dirty.clear();
    for (const name of names) {
      const namespace = cache.namespace(name);
      const facts = namespace === undefined ? undefined : namespaceFacts(namespace, cache.serviceAccountsIn(name), current);
      if (facts === undefined || (facts.excluded === undefined && facts.serviceAccounts.size === 0)) this.#facts.delete(name);
      else this.#facts.set(name, facts);
    }
    const { data, skipped } = paramsData(this.#facts, current);
    if (skipped > 0 && !this.#skippedReported) {
      this.#skippedReported = true;
      log.warn('Admission parameters: ServiceAccount entries too long for a ConfigMap key were left out', { skipped });
    }
    const text = JSON.stringify(data);
    if (text === this.#written) return;
    try {
      await this.#options.api.applyConfigMap(this.#configMap(data));
      this.#written = text;
      log.info('Applied admission parameters', { namespace: this.#options.namespace, name: this.#options.name, entries: Object.keys(data).length - 1 });
    } catch (error) {
      // Not the leader, or the API failed: the data is recomputed and tried again.
      log.debug('Admission parameters not written', { error: describeKubeError(error) });
      this.#all = true;
      this.#timerRetry();
    }
  }

  #timerRetry(): void {
    if (!this.#running || this.#timer !== undefined) return;
    this.#timer = this.#options.clock.after(this.#options.retryMs ?? 5_000, () => {
      this.#timer = undefined;
      void this.#flush();
    });
  }

  #configMap(data: Record<string, string>): V1ConfigMap {
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: this.#options.name,
        namespace: this.#options.namespace,
        labels: { [managedBy.key]: managedBy.value },
        annotations: { 'ecr-login/purpose': 'Parameters of the kube-ecrlogin MutatingAdmissionPolicy; written by the controller.' },
      },
      data,
    };
  }
}
