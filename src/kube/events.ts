// Kubernetes Events, on transitions and failures only. The recorder remembers what it last said
// about each object and reason, so a failure repeated on every retry produces one Event, and a
// recovery is announced once.

import type { CoreV1Event } from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';
import type { ObjectRef } from '../controller/intents.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { KubeApi } from './api.ts';

export const reasons = {
  CredentialsIssued: 'CredentialsIssued',
  CredentialsRemoved: 'CredentialsRemoved',
  RefreshFailed: 'RefreshFailed',
  RefreshRecovered: 'RefreshRecovered',
  InvalidAnnotation: 'InvalidAnnotation',
  PolicyDenied: 'PolicyDenied',
  SecretConflict: 'SecretConflict',
  ServiceAccountMissing: 'ServiceAccountMissing',
  PullSecretAdded: 'PullSecretAdded',
  ConfigInvalid: 'ConfigInvalid',
  ConfigReloaded: 'ConfigReloaded',
} as const;

export type Reason = (typeof reasons)[keyof typeof reasons];
export type EventType = 'Normal' | 'Warning';

/** The object an Event is about; ConfigMap is the controller's own config. */
export type EventTarget = ObjectRef | { readonly kind: 'ConfigMap'; readonly name: string; readonly namespace: string; readonly uid?: string };

export interface EventRecorderOptions {
  readonly api: KubeApi;
  readonly clock: Clock;
  readonly log: Logger;
  /** Pod name, for reportingInstance. */
  readonly instance: string;
}

export class EventRecorder {
  readonly #options: EventRecorderOptions;
  /** target key -> reason -> last message said. */
  readonly #said = new Map<string, Map<string, string>>();

  constructor(options: EventRecorderOptions) {
    this.#options = options;
  }

  /** Emits an Event now (Normal events for transitions the caller detected). */
  async emit(target: EventTarget, type: EventType, reason: Reason, message: string): Promise<void> {
    const { api, clock, log, instance } = this.#options;
    const now = new Date(clock.now());
    // Events about cluster-scoped objects (Namespaces) live in `default`, as client-go puts them.
    const namespace = target.namespace ?? 'default';
    const event: CoreV1Event = {
      metadata: { generateName: `${target.name}.`, namespace },
      involvedObject: {
        apiVersion: 'v1',
        kind: target.kind,
        name: target.name,
        ...(target.namespace !== undefined ? { namespace: target.namespace } : {}),
        ...(target.uid !== undefined ? { uid: target.uid } : {}),
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
    try {
      await api.createEvent(event);
    } catch (error) {
      // Events are best effort: failing to report must not fail the work.
      log.warn('Could not record Event', { reason, kind: target.kind, name: target.name, namespace: target.namespace, error: errorMessage(error) });
    }
  }

  /** Emits a Warning unless the same reason and message were already said about this object. */
  async warnOnce(target: EventTarget, reason: Reason, message: string): Promise<void> {
    const said = this.#forTarget(target);
    if (said.get(reason) === message) return;
    said.set(reason, message);
    await this.emit(target, 'Warning', reason, message);
  }

  /** Whether a warning for reason is in force for this object. */
  active(target: EventTarget, reason: Reason): boolean {
    return this.#said.get(keyOf(target))?.has(reason) ?? false;
  }

  /** Forgets a warning; returns whether one was in force (so the caller can announce recovery). */
  resolve(target: EventTarget, reason: Reason): boolean {
    const said = this.#said.get(keyOf(target));
    const had = said?.delete(reason) ?? false;
    if (said?.size === 0) this.#said.delete(keyOf(target));
    return had;
  }

  /** Forgets everything about objects in a namespace (it is gone). */
  forgetNamespace(namespace: string): void {
    for (const key of this.#said.keys()) if (key.startsWith(`${namespace}/`) || key === `/${namespace}`) this.#said.delete(key);
  }

  #forTarget(target: EventTarget): Map<string, string> {
    const key = keyOf(target);
    let said = this.#said.get(key);
    if (said === undefined) {
      said = new Map();
      this.#said.set(key, said);
    }
    return said;
  }
}

function keyOf(target: EventTarget): string {
  return `${target.namespace ?? ''}/${target.kind === 'Namespace' ? target.name : `${target.kind}/${target.name}`}`;
}
