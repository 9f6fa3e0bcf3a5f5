// The informer caches the controller reads: the metadata of every Namespace (or those the selector
// picks), every ServiceAccount, and the metadata of every Secret carrying our label, each trimmed to
// what is read (see trim.ts); plus our own writes until their watch events arrive (recent-writes.ts). Built first:
// the reconciler reads them, then the controller drives both (controller-runtime's order).

import { CoreV1Api, type KubeConfig, type V1Namespace, type V1Secret, type V1ServiceAccount } from '@kubernetes/client-node';
import { annotationPrefix, maxValueLength } from '../annotations.ts';
import type { Clock } from '../clock.ts';
import { Informer } from '../kube/informer.ts';
import { metadataOnly } from '../kube/metadata.ts';
import { fieldManager } from '../kube/objects.ts';
import { RecentWrites } from '../kube/recent-writes.ts';
import { metadataForCache, namespaceForCache, withoutManagedFields } from '../kube/trim.ts';
import type { Logger } from '../log.ts';
import type { ReconcilerCache } from './reconciler.ts';
import { argocdSecretType, dataWrittenBy, dataWrittenByUs, managedBy, managedSelector } from './secrets.ts';

/**
 * What the Secret cache keeps: metadata only (no data crosses the wire), the managed-by label, our
 * annotations (each at most one character longer than any valid value), and whether another field
 * manager wrote the data. A Secret someone made to look like ours costs a few hundred bytes.
 */
export const secretMetadata = metadataForCache<V1Secret>(
  {
    labels: [managedBy.key, argocdSecretType.key],
    annotationPrefix,
    maxValueLength,
    fieldManager,
    writtenByOthers: dataWrittenBy,
    writtenByUs: dataWrittenByUs,
  },
  { apiVersion: 'v1', kind: 'Secret' },
);

export interface CachesOptions {
  readonly config: KubeConfig;
  readonly clock: Clock;
  readonly log: Logger;
  /** Only namespaces with these labels are cached (a label selector), e.g. for sharding. */
  readonly namespaceSelector?: string;
  /** Longest wait before restarting a failed watch, ms. */
  readonly maxRestartDelayMs: number;
}

/** Which cache saw a change. */
export type CachedKind = 'Namespace' | 'ServiceAccount' | 'Secret';

/**
 * The one way to read the caches: every reader (reconciler, controller, admission webhook, readiness,
 * `once`) goes through these methods, so our recent writes are seen everywhere the cache is.
 */
export class Caches implements ReconcilerCache {
  readonly #log: Logger;
  readonly #namespaces: Informer<V1Namespace>;
  readonly #serviceAccounts: Informer<V1ServiceAccount>;
  readonly #secrets: Informer<V1Secret>;
  readonly #recentSecrets: RecentWrites<V1Secret>;
  readonly #recentServiceAccounts: RecentWrites<V1ServiceAccount>;

  constructor(options: CachesOptions) {
    const { config, clock, log, maxRestartDelayMs } = options;
    this.#log = log;
    this.#recentSecrets = new RecentWrites(clock);
    this.#recentServiceAccounts = new RecentWrites(clock);
    const core = config.makeApiClient(CoreV1Api);
    // Namespaces and Secrets: metadata only (what is read of a Namespace is its labels and annotations).
    const metadata = metadataOnly(config);
    const metadataCore = metadata.makeApiClient(CoreV1Api);
    const nsSelector = options.namespaceSelector;
    this.#namespaces = new Informer<V1Namespace>({
      name: 'namespaces',
      config: metadata,
      path: '/api/v1/namespaces',
      list: (page) => metadataCore.listNamespace({ ...page, ...(nsSelector !== undefined ? { labelSelector: nsSelector } : {}) }),
      ...(nsSelector !== undefined ? { labelSelector: nsSelector } : {}),
      log,
      maxRestartDelayMs,
      transform: namespaceForCache(annotationPrefix),
    });
    this.#serviceAccounts = new Informer<V1ServiceAccount>({
      name: 'serviceaccounts',
      config,
      path: '/api/v1/serviceaccounts',
      list: (page) => core.listServiceAccountForAllNamespaces(page),
      log,
      maxRestartDelayMs,
      transform: withoutManagedFields,
    });
    this.#secrets = new Informer<V1Secret>({
      name: 'secrets',
      config: metadata,
      path: '/api/v1/secrets',
      list: (page) => metadataCore.listSecretForAllNamespaces({ ...page, labelSelector: managedSelector }),
      labelSelector: managedSelector,
      log,
      maxRestartDelayMs,
      transform: secretMetadata,
    });
  }

  /** Calls `handler` with the namespace of every object added, changed or deleted in any cache. */
  onChange(handler: (namespace: string | undefined, kind: CachedKind) => void): void {
    this.#namespaces.on((ns) => handler(ns.metadata?.name, 'Namespace'));
    this.#serviceAccounts.on((sa) => handler(sa.metadata?.namespace, 'ServiceAccount'));
    this.#secrets.on((secret) => handler(secret.metadata?.namespace, 'Secret'));
  }

  namespace(name: string): V1Namespace | undefined {
    return this.#namespaces.get(name);
  }

  namespaceNames(): string[] {
    return this.#namespaces.list().map((ns) => ns.metadata?.name ?? '');
  }

  serviceAccountsIn(namespace: string): readonly V1ServiceAccount[] {
    return this.#recentServiceAccounts.merge(namespace, this.#serviceAccounts.list(namespace));
  }

  secrets(namespace: string): readonly V1Secret[] {
    return this.#recentSecrets.merge(namespace, this.#secrets.list(namespace));
  }

  /** Every namespace holding a managed Secret, cached or not (a namespace left out by the selector, say). */
  namespacesWithSecrets(): Set<string> {
    return new Set(
      this.#secrets
        .list()
        .map((secret) => secret.metadata?.namespace ?? '')
        .filter((name) => name !== ''),
    );
  }

  /** Managed Secrets in the namespaces served. */
  managedSecretCount(): number {
    return this.#secrets.list().filter((secret) => this.namespace(secret.metadata?.namespace ?? '') !== undefined).length;
  }

  /** Whether the Namespace cache has its first list (until then, no namespace is known to be out of scope). */
  get namespacesSynced(): boolean {
    return this.#namespaces.synced;
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

  /** Starts the informers and waits for their first lists. */
  async sync(): Promise<void> {
    await Promise.all([this.#namespaces.start(), this.#serviceAccounts.start(), this.#secrets.start()]);
    this.#log.info('Caches synced', {
      namespaces: this.#namespaces.list().length,
      serviceAccounts: this.#serviceAccounts.list().length,
      secrets: this.#secrets.list().length,
    });
  }

  get synced(): boolean {
    return this.#namespaces.synced && this.#serviceAccounts.synced && this.#secrets.synced;
  }

  async stop(): Promise<void> {
    await Promise.all([this.#namespaces.stop(), this.#serviceAccounts.stop(), this.#secrets.stop()]);
  }
}
