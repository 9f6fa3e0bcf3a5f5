// A list-watch cache (client-node's ListWatch) that does not give up: client-node stops an informer
// for good on any watch error other than 410 Gone, so this restarts it with capped backoff, never
// twice at once, and knows whether it has completed a list (synced).

import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { errorMessage, type Logger } from '../log.ts';

export type ChangeKind = 'add' | 'update' | 'delete';
export type ChangeHandler<T> = (object: T, kind: ChangeKind) => void;

export interface InformerOptions<T extends KubernetesObject> {
  readonly name: string;
  readonly config: KubeConfig;
  /** The collection's API path, e.g. /api/v1/namespaces. */
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly log: Logger;
  readonly minRestartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
}

export class Informer<T extends KubernetesObject> {
  readonly #o: InformerOptions<T>;
  readonly #cache: ListWatch<T>;
  readonly #handlers: ChangeHandler<T>[] = [];
  #listed = false;
  #stopped = true;
  #starting: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #restartDelay: number;
  /** When the cache last heard from the apiserver (a list, an event, a reconnect). */
  lastContact = 0;
  restarts = 0;

  constructor(options: InformerOptions<T>) {
    this.#o = options;
    this.#restartDelay = options.minRestartDelayMs ?? 1_000;
    const list = async (): Promise<KubernetesListObject<T>> => {
      const result = await options.list();
      this.#listed = true;
      this.lastContact = Date.now();
      return result;
    };
    this.#cache = new ListWatch<T>(options.path, new Watch(options.config), list, false, options.labelSelector, options.fieldSelector);
    this.#cache.on('add', (object: T) => this.#emit(object, 'add'));
    this.#cache.on('update', (object: T) => this.#emit(object, 'update'));
    this.#cache.on('delete', (object: T) => this.#emit(object, 'delete'));
    this.#cache.on('connect', () => {
      this.lastContact = Date.now();
    });
    this.#cache.on('error', (error: unknown) => this.#onError(error));
  }

  on(handler: ChangeHandler<T>): void {
    this.#handlers.push(handler);
  }

  /** Starts the list-watch and resolves after the first successful list (retrying until then). */
  async start(): Promise<void> {
    this.#stopped = false;
    // #listed and #stopped change while we wait: read them through a call, not a narrowed field.
    const waiting = (): boolean => !this.#listed && !this.#stopped;
    await this.#startOnce();
    while (waiting()) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.#restartDelay, 1_000)));
      if (waiting() && this.#restartTimer === undefined && this.#starting === undefined) await this.#startOnce();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    await this.#cache.stop();
  }

  get synced(): boolean {
    return this.#listed;
  }

  list(namespace?: string): readonly T[] {
    return this.#cache.list(namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#cache.get(name, namespace);
  }

  #emit(object: T, kind: ChangeKind): void {
    this.lastContact = Date.now();
    this.#restartDelay = this.#o.minRestartDelayMs ?? 1_000;
    for (const handler of this.#handlers) handler(object, kind);
  }

  #startOnce(): Promise<void> {
    this.#starting ??= this.#cache
      .start()
      .catch((error: unknown) => this.#onError(error))
      .finally(() => {
        this.#starting = undefined;
      });
    return this.#starting;
  }

  #onError(error: unknown): void {
    if (this.#stopped || this.#restartTimer !== undefined) return;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(delay * 2, this.#o.maxRestartDelayMs ?? 30_000);
    this.restarts++;
    this.#o.log.warn('Watch failed, restarting', { informer: this.#o.name, delayMs: delay, error: errorMessage(error) });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#stopped) void this.#startOnce();
    }, delay);
    this.#restartTimer.unref();
  }
}
