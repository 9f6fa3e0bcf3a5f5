// What the informer caches keep of each object. A cache holds one copy of every Namespace,
// ServiceAccount and managed Secret in the cluster, so it drops what the controller never reads
// (managedFields, often the largest part of an object) and shares equal Secret payloads: namespaces
// served by the same identity and registries hold byte-identical `.dockerconfigjson` values.

import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';

/** Drops metadata.managedFields, in place (the object is fresh from the API server, not yet cached). */
export function withoutManagedFields<T extends KubernetesObject>(object: T): T {
  if (object.metadata?.managedFields !== undefined) delete object.metadata.managedFields;
  return object;
}

/** Hands out one shared copy of equal strings; remembers at most `max` of them, the newest. */
export class Interner {
  readonly #values = new Map<string, string>();
  readonly #max: number;

  constructor(max = 4096) {
    this.#max = max;
  }

  intern(value: string): string {
    const known = this.#values.get(value);
    if (known !== undefined) return known;
    if (this.#values.size >= this.#max) {
      const oldest = this.#values.keys().next();
      if (oldest.done !== true) this.#values.delete(oldest.value);
    }
    this.#values.set(value, value);
    return value;
  }

  get size(): number {
    return this.#values.size;
  }
}

/** A Secret as the cache keeps it: no managedFields, its data values shared with equal ones. */
export function secretForCache(interner: Interner): (secret: V1Secret) => V1Secret {
  return (secret) => {
    withoutManagedFields(secret);
    const data = secret.data;
    if (data !== undefined) for (const key of Object.keys(data)) data[key] = interner.intern(data[key] ?? '');
    return secret;
  };
}
