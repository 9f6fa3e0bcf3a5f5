// SDK clients for the controller's own identity, one per endpoint, reused because they keep their
// connections. Bounded: at most `max` are kept (the least recently used goes first), and one unused
// for `idleMs` is released. A client is never destroyed under a request it is serving: it goes when
// that request is done, if it must; so while more than `max` endpoints are in use at once, the pool
// holds those in use and no more.

export interface Destroyable {
  destroy(): void;
}

export interface ClientPoolOptions {
  readonly max: number;
  readonly idleMs: number;
  readonly now?: () => number;
}

interface Slot<C> {
  readonly client: C;
  users: number;
  lastUsed: number;
}

export class ClientPool<C extends Destroyable> {
  readonly #slots = new Map<string, Slot<C>>();
  readonly #max: number;
  readonly #idleMs: number;
  readonly #now: () => number;

  constructor(options: ClientPoolOptions) {
    this.#max = Math.max(1, options.max);
    this.#idleMs = options.idleMs;
    this.#now = options.now ?? Date.now;
  }

  /** Runs work with the client for key, made by make when there is none. */
  async use<T>(key: string, make: () => C, work: (client: C) => Promise<T>): Promise<T> {
    let slot = this.#slots.get(key);
    // Map order is use order: a slot used again moves to the end.
    if (slot !== undefined) this.#slots.delete(key);
    else slot = { client: make(), users: 0, lastUsed: this.#now() };
    this.#slots.set(key, slot);
    slot.users++;
    this.#trim();
    try {
      return await work(slot.client);
    } finally {
      slot.users--;
      slot.lastUsed = this.#now();
      this.#trim();
    }
  }

  /** Clients kept now. */
  get size(): number {
    return this.#slots.size;
  }

  /** Releases every client not in use. */
  clear(): void {
    for (const [key, slot] of this.#slots) {
      if (slot.users > 0) continue;
      this.#slots.delete(key);
      slot.client.destroy();
    }
  }

  #trim(): void {
    const now = this.#now();
    for (const [key, slot] of this.#slots) {
      if (slot.users > 0) continue;
      if (this.#slots.size > this.#max || now - slot.lastUsed >= this.#idleMs) {
        this.#slots.delete(key);
        slot.client.destroy();
      }
    }
  }
}
