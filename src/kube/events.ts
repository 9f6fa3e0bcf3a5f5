// Kubernetes Events, on transitions and failures only. The recorder remembers what it last said
// about each object and reason, so a failure repeated on every retry produces one Event, and a
// recovery is announced once. Like client-go's broadcaster, it sends in the background, a few at a
// time: a reconcile never waits for an Event, and a slow or throttled Event API slows no Secret.

import type { CoreV1Event } from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';

import { errorMessage, type Logger } from '../log.ts';
import type { KubeApi } from './api.ts';
import { type ObjectRef } from './objects.ts';

export const reasons = {
  CredentialsIssued: 'CredentialsIssued',
  CredentialsRemoved: 'CredentialsRemoved',
  RefreshFailed: 'RefreshFailed',
  RefreshRecovered: 'RefreshRecovered',
  InvalidAnnotation: 'InvalidAnnotation',
  UnknownAnnotation: 'UnknownAnnotation',
  ServiceAccountPending: 'ServiceAccountPending',
  PolicyDenied: 'PolicyDenied',
  SecretConflict: 'SecretConflict',
  ServiceAccountMissing: 'ServiceAccountMissing',
  ConfigInvalid: 'ConfigInvalid',
  ConfigReloaded: 'ConfigReloaded',
  ForeignSecret: 'ForeignSecret',
} as const;

export type Reason = (typeof reasons)[keyof typeof reasons];
export type EventType = 'Normal' | 'Warning';

/** The object an Event is about; ConfigMap is the controller's own config. */
export type Regarding = ObjectRef | { readonly kind: 'ConfigMap' | 'Secret'; readonly name: string; readonly namespace: string; readonly uid?: string };

export interface EventRecorderOptions {
  readonly api: KubeApi;
  readonly clock: Clock;
  readonly log: Logger;
  /** Pod name, for reportingInstance. */
  readonly instance: string;
  /** Events sent at once (default 2). */
  readonly concurrency?: number;
  /** Events waiting beyond this many are dropped, with a log line (default 4096). */
  readonly maxPending?: number;
}

export class EventRecorder {
  readonly #options: EventRecorderOptions;
  /** Key of the object an Event is about -> reason -> last message said. */
  readonly #said = new Map<string, Map<string, string>>();
  readonly #pending: CoreV1Event[] = [];
  #sending = 0;
  #idle: (() => void)[] = [];

  constructor(options: EventRecorderOptions) {
    this.#options = options;
  }

  /**
   * Queues an Event to be sent (Normal events for transitions the caller detected).
   *
   * What concerns a Namespace is said where its tenant looks: an Event about a cluster-scoped object
   * can only live in `default`, which tenants usually cannot read (and where every tenant's would be
   * side by side), and `kubectl describe namespace` shows none. So it is recorded, in full, on the
   * namespace's `default` ServiceAccount, in that namespace (`kubectl get events -n NS`); a Warning also
   * leaves an Event on the Namespace in `default` for the cluster's admins, which names the reason and
   * the namespace only: no registry, account or role of any tenant.
   */
  emit(regarding: Regarding, type: EventType, reason: Reason, message: string): void {
    if (regarding.kind !== 'Namespace') {
      this.#queue(regarding, type, reason, message);
      return;
    }
    this.#queue({ kind: 'ServiceAccount', namespace: regarding.name, name: 'default' }, type, reason, `Namespace ${regarding.name}: ${message}`);
    if (type === 'Warning') {
      this.#queue(regarding, type, reason, `${reason} in namespace ${regarding.name}: its Events say why (kubectl get events -n ${regarding.name})`);
    }
  }

  #queue(regarding: Regarding, type: EventType, reason: Reason, message: string): void {
    const { clock, log, instance, maxPending = 4096 } = this.#options;
    const now = new Date(clock.now());
    // Events about cluster-scoped objects (Namespaces) live in `default`, as client-go puts them.
    const namespace = regarding.namespace ?? 'default';
    const event: CoreV1Event = {
      metadata: { generateName: `${regarding.name}.`, namespace },
      involvedObject: {
        apiVersion: 'v1',
        kind: regarding.kind,
        name: regarding.name,
        ...(regarding.namespace !== undefined ? { namespace: regarding.namespace } : {}),
        ...(regarding.uid !== undefined ? { uid: regarding.uid } : {}),
      },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: 'kube-ecrlogin' },
      reportingComponent: 'kube-ecrlogin',
      reportingInstance: instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    if (this.#pending.length >= maxPending) {
      log.warn('Dropped Event: too many waiting to be sent', {
        reason,
        kind: regarding.kind,
        name: regarding.name,
        namespace: regarding.namespace,
        waiting: this.#pending.length,
      });
      return;
    }
    this.#pending.push(event);
    this.#pump();
  }

  /** Emits a Warning unless the same reason and message were already said about this object. */
  warnOnce(regarding: Regarding, reason: Reason, message: string): void {
    const said = this.#saidAbout(regarding);
    if (said.get(reason) === message) return;
    said.set(reason, message);
    this.emit(regarding, 'Warning', reason, message);
  }

  /** Resolves when every queued Event has been sent (or failed), or false after timeoutMs. */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.#pending.length === 0 && this.#sending === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idle = this.#idle.filter((waiter) => waiter !== done);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idle.push(done);
    });
  }

  #pump(): void {
    const { api, log, concurrency = 2 } = this.#options;
    while (this.#sending < concurrency) {
      const event = this.#pending.shift();
      if (event === undefined) break;
      this.#sending++;
      api
        .createEvent(event)
        .catch((error: unknown) => {
          // Events are best effort: failing to report must not fail the work.
          const { reason, involvedObject: object } = event;
          log.warn('Could not record Event', { reason, kind: object.kind, name: object.name, namespace: object.namespace, error: errorMessage(error) });
        })
        .finally(() => {
          this.#sending--;
          this.#pump();
          if (this.#pending.length === 0 && this.#sending === 0) {
            const waiters = this.#idle;
            this.#idle = [];
            for (const waiter of waiters) waiter();
          }
        });
    }
  }

  /** Whether a warning for reason is in force for this object. */
  active(regarding: Regarding, reason: Reason): boolean {
    return this.#said.get(keyOf(regarding))?.has(reason) ?? false;
  }

  /** Forgets a warning; returns whether one was in force (so the caller can announce recovery). */
  resolve(regarding: Regarding, reason: Reason): boolean {
    const said = this.#said.get(keyOf(regarding));
    const had = said?.delete(reason) ?? false;
    if (said?.size === 0) this.#said.delete(keyOf(regarding));
    return had;
  }

  /** Forgets everything about objects in a namespace (it is gone). */
  forgetNamespace(namespace: string): void {
    for (const key of this.#said.keys()) if (key.startsWith(`${namespace}/`) || key === `/${namespace}`) this.#said.delete(key);
  }

  #saidAbout(regarding: Regarding): Map<string, string> {
    const key = keyOf(regarding);
    let said = this.#said.get(key);
    if (said === undefined) {
      said = new Map();
      this.#said.set(key, said);
    }
    return said;
  }
}

function keyOf(regarding: Regarding): string {
  return `${regarding.namespace ?? ''}/${regarding.kind === 'Namespace' ? regarding.name : `${regarding.kind}/${regarding.name}`}`;
}
