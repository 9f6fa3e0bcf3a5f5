// Our own writes, remembered until the informer has seen them. A watch event arrives a moment after
// the write that caused it; a reconcile in that moment would read the old object from the cache,
// decide on stale state and fail its precondition (409/422). Merging recent writes into what the
// cache returns avoids that. An entry ends when the cache shows the same resourceVersion or a later
// one (someone else wrote after us: their object is the truth, and hiding it would hide a tenant's
// change to our Secret until the time limit), when a write fails on a conflict, or after a time limit.

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
      const caughtUp = entry.object === undefined ? seen === undefined : seenOrLater(seen?.metadata?.resourceVersion, entry.object.metadata?.resourceVersion);
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

/**
 * Whether the cache's resourceVersion is the one we wrote or a later one. resourceVersions are opaque
 * by contract; every API server backed by etcd gives its revision as a decimal integer, and only such
 * pairs are compared by order. Any other pair counts as caught up only when equal.
 */
function seenOrLater(seen: string | undefined, written: string | undefined): boolean {
  if (seen === undefined || written === undefined) return seen === written && seen !== undefined;
  if (seen === written) return true;
  const decimal = /^[0-9]{1,20}$/;
  return decimal.test(seen) && decimal.test(written) && BigInt(seen) > BigInt(written);
}
