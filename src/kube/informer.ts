// A list-watch cache (client-node's ListWatch) that does not give up: client-node stops an informer
// for good on any watch error other than 410 Gone, so this restarts it with capped backoff, never
// twice at once, and knows whether it has completed a list (synced). It lists in pages, as
// client-go's reflector does, so that a large cluster's list is never held whole in memory twice.

import { ApiException, ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { errorMessage, type Logger } from '../log.ts';

export type ChangeKind = 'add' | 'update' | 'delete';
export type ChangeHandler<T> = (object: T, kind: ChangeKind) => void;

/** One page of a list: the request's `limit` and `continue` parameters; neither for a whole list. */
export interface ListPage {
  readonly limit?: number;
  readonly _continue?: string;
}

/** client-go's page size for a reflector's list. */
export const defaultListPageSize = 500;

export interface InformerOptions<T extends KubernetesObject> {
  readonly name: string;
  readonly config: KubeConfig;
  /** The collection's API path, e.g. /api/v1/namespaces. */
  readonly path: string;
  /** Reads one page of the collection (the page's parameters spread into the list call). */
  readonly list: (page: ListPage) => Promise<KubernetesListObject<T>>;
  /** Objects per list page (default 500). */
  readonly listPageSize?: number;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly log: Logger;
  readonly minRestartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
  /**
   * Applied to every object before it is cached (list and watch alike), e.g. to drop fields the
   * controller never reads: the cache holds one of these per object in the cluster.
   */
  readonly transform?: (object: T) => T;
}

export class Informer<T extends KubernetesObject> {
  readonly #options: InformerOptions<T>;
  readonly #cache: ListWatch<T>;
  readonly #handlers: ChangeHandler<T>[] = [];
  #listed = false;
  #stopped = true;
  #starting: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #restartDelay: number;

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.#restartDelay = options.minRestartDelayMs ?? 1_000;
    const transform = options.transform;
    const list = async (): Promise<KubernetesListObject<T>> => {
      const result = await listInPages(options.list, options.listPageSize ?? defaultListPageSize, transform);
      this.#listed = true;
      return result;
    };
    const watch = transform === undefined ? new Watch(options.config) : new TransformingWatch(options.config, transform);
    this.#cache = new ListWatch<T>(options.path, watch, list, false, options.labelSelector, options.fieldSelector);
    this.#cache.on('add', (object: T) => this.#emit(object, 'add'));
    this.#cache.on('update', (object: T) => this.#emit(object, 'update'));
    this.#cache.on('delete', (object: T) => this.#emit(object, 'delete'));
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
    this.#restartDelay = this.#options.minRestartDelayMs ?? 1_000;
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
    this.#restartDelay = Math.min(delay * 2, this.#options.maxRestartDelayMs ?? 30_000);
    this.#options.log.warn('Watch failed, restarting', { informer: this.#options.name, delayMs: delay, error: errorMessage(error) });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#stopped) void this.#startOnce();
    }, delay);
    this.#restartTimer.unref();
  }
}

/**
 * Reads a whole collection in pages of `pageSize`, transforming each page's objects as it arrives.
 * Every page comes from the first page's snapshot, so the result's resourceVersion is the one to
 * watch from. When that snapshot is compacted away before the last page (410 Gone on a continue
 * token), it lists once more in one request, as client-go's pager does.
 */
export async function listInPages<T extends KubernetesObject>(
  list: (page: ListPage) => Promise<KubernetesListObject<T>>,
  pageSize: number,
  transform?: (object: T) => T,
): Promise<KubernetesListObject<T>> {
  const each = transform ?? ((object: T): T => object);
  const first = await list({ limit: pageSize });
  const items: T[] = [];
  for (let page = first; ;) {
    // A metadata-only list of nothing says `items: null`.
    for (const item of (page.items as T[] | null) ?? []) items.push(each(item));
    const next = page.metadata?._continue;
    if (next === undefined || next === '') break;
    try {
      page = await list({ limit: pageSize, _continue: next });
    } catch (error) {
      if (!(error instanceof ApiException && error.code === 410)) throw error;
      const whole = await list({});
      return { ...whole, items: ((whole.items as T[] | null) ?? []).map(each) };
    }
  }
  const { _continue: _, remainingItemCount: __, ...metadata } = first.metadata ?? {};
  return { ...first, metadata, items };
}

/** A Watch whose events carry transformed objects (ERROR and BOOKMARK events pass through). */
class TransformingWatch<T> extends Watch {
  readonly #transform: (object: T) => T;

  constructor(config: KubeConfig, transform: (object: T) => T) {
    super(config);
    this.#transform = transform;
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      queryParams,
      (phase, apiObj: unknown, watchObj?: unknown) => {
        callback(phase, phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? this.#transform(apiObj as T) : apiObj, watchObj);
      },
      done,
    );
  }
}
