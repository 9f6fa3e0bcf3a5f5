// Our own writes, remembered until the informer has seen them. A watch event arrives a moment after
// the write that caused it; a reconcile in that moment would read the old object from the cache,
// decide on stale state and fail its precondition (409/422). Merging recent writes into what the
// cache returns avoids that. An entry ends when the cache shows the same resourceVersion, when a
// write fails on a conflict (someone else wrote since), or after a time limit.

import type { KubernetesObject } from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';

interface Entry<T> {
  /** The object as the API server returned it; undefined for a deletion. */
  readonly object: T | undefined;
  readonly at: number;
}

export class RecentWrites<T extends KubernetesObject> {
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #byNamespace = new Map<string, Map<string, Entry<T>>>();

  constructor(clock: Clock, ttlMs = 30_000) {
    this.#clock = clock;
    this.#ttlMs = ttlMs;
  }

  wrote(namespace: string, name: string, object: T | undefined): void {
    let entries = this.#byNamespace.get(namespace);
    if (entries === undefined) {
      entries = new Map();
      this.#byNamespace.set(namespace, entries);
    }
    entries.set(name, { object, at: this.#clock.now() });
  }

  forget(namespace: string, name: string): void {
    const entries = this.#byNamespace.get(namespace);
    entries?.delete(name);
    if (entries?.size === 0) this.#byNamespace.delete(namespace);
  }

  /** The cache's objects in a namespace, with our newer writes in place of what it has not seen yet. */
  merge(namespace: string, cached: readonly T[]): readonly T[] {
    const entries = this.#byNamespace.get(namespace);
    if (entries === undefined) return cached;
    const now = this.#clock.now();
    const byName = new Map(cached.map((object) => [object.metadata?.name ?? '', object]));
    for (const [name, entry] of entries) {
      const seen = byName.get(name);
      const caughtUp =
        entry.object === undefined ? seen === undefined : seen?.metadata?.resourceVersion === entry.object.metadata?.resourceVersion;
      if (caughtUp || now - entry.at > this.#ttlMs) {
        entries.delete(name);
        continue;
      }
      if (entry.object === undefined) byName.delete(name);
      else byName.set(name, entry.object);
    }
    if (entries.size === 0) this.#byNamespace.delete(namespace);
    return [...byName.values()];
  }
}
