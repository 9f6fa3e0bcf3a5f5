// The controller's status, published for `kube-ecrlogin doctor` in a ConfigMap of its own namespace
// (--status-config-map, default kube-ecrlogin-status): the version, the replica that wrote it, the
// config in force and why, and the namespaces whose last reconcile failed. The doctor reads it with
// the controller's own RBAC (get on that one ConfigMap), so that it can tell what runs, not only what
// the ConfigMap says.
//
// Written by the leader only (the write gate refuses a standby), only when it changed, and at most
// once per --status-interval: nothing in it changes in a steady state (no counters, no times but the
// time of the write and when each failure began), so a steady state writes nothing. It holds no
// credential: error messages are those of the Events, redacted again and cut short.

import type { V1ConfigMap } from '@kubernetes/client-node';
import type { Clock, Timer } from './clock.ts';
import type { ConfigInForce } from './config/source.ts';
import { managedBy } from './controller/secrets.ts';
import { describeKubeError, type KubeApi } from './kube/api.ts';
import { NotLeaderError } from './leader.ts';
import { redactString, type Logger } from './log.ts';
import type { Result } from './result.ts';

export const statusKey = 'status.json';

/** How many failing namespaces the status names (the newest failures); the count covers them all. */
export const errorsShown = 5;
const maxReasonLength = 200;

export interface NamespaceFailure {
  readonly namespace: string;
  /** The last reconcile's error, as its Events say it. */
  readonly reason: string;
  /** When this namespace's reconciles started failing (ISO time). */
  readonly since: string;
}

export interface ControllerStatus {
  readonly version: string;
  /** The replica that wrote it (POD_NAME): the leader. */
  readonly instance: string;
  readonly leaderElection: boolean;
  /** When this status was written; it is written only when something else in it changed. */
  readonly updatedAt: string;
  readonly config: ConfigInForce;
  readonly namespaces: {
    /** Namespaces whose last reconcile failed (retried with backoff). */
    readonly failing: number;
    /** Namespaces with an annotated object that cannot be served as annotated (their Events say why). */
    readonly unhealthy: number;
  };
  /** The newest failures, at most errorsShown. */
  readonly errors: readonly NamespaceFailure[];
}

/** The last reconcile of a namespace, as the controller keeps it. */
export interface LastResult {
  readonly error?: { readonly message: string };
  readonly healthy: boolean;
  /** When it ran, ms. */
  readonly at: number;
}

export interface StatusInputs {
  readonly version: string;
  readonly instance: string;
  readonly leaderElection: boolean;
  readonly config: () => ConfigInForce;
  readonly results: () => Iterable<readonly [string, LastResult]>;
}

export interface StatusPublisherOptions extends StatusInputs {
  readonly api: Pick<KubeApi, 'applyConfigMap'>;
  /** The ConfigMap's namespace and name. */
  readonly namespace: string;
  readonly name: string;
  /** Looked at, and written if it changed, this often, ms. */
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly log: Logger;
}

export class StatusPublisher {
  readonly #options: StatusPublisherOptions;
  /** Each failing namespace, and since when (derived again from the results every time). */
  #failing = new Map<string, { reason: string; since: number }>();
  /** What was last written (without its time); undefined until the first write succeeds. */
  #written: string | undefined;
  #timer: Timer | undefined;
  #running = false;
  #writing: Promise<void> | undefined;
  /** When the last write was sent, ms. */
  #lastWrite: number | undefined;
  /** The last write's error, said once (until a write succeeds or it changes). */
  #lastError: string | undefined;

  constructor(options: StatusPublisherOptions) {
    this.#options = options;
  }

  /** Starts looking at once, then every interval. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Looks again as soon as the interval allows (this replica just became the leader). */
  nudge(): void {
    if (!this.#running || this.#writing !== undefined) return;
    this.#timer?.cancel();
    const due = this.#lastWrite === undefined ? 0 : this.#lastWrite + this.#options.intervalMs - this.#options.clock.now();
    this.#schedule(Math.max(0, due));
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#writing;
  }

  /**
   * The status as it would be written now, without its time. Derives which namespaces fail, and
   * since when, from the last results (what it remembers is only what fails now).
   */
  current(): Omit<ControllerStatus, 'updatedAt'> {
    const { version, instance, leaderElection } = this.#options;
    const failing = new Map<string, { reason: string; since: number }>();
    let unhealthy = 0;
    for (const [namespace, result] of this.#options.results()) {
      if (result.error === undefined) {
        if (!result.healthy) unhealthy++;
        continue;
      }
      const reason = shortReason(result.error.message);
      // A failure that goes on keeps its start, even when its message changes.
      failing.set(namespace, { reason, since: this.#failing.get(namespace)?.since ?? result.at });
    }
    // Only what fails now is remembered: a namespace that recovered, or is gone, leaves nothing.
    this.#failing = failing;
    const errors = [...failing]
      .sort(([a, x], [b, y]) => y.since - x.since || a.localeCompare(b))
      .slice(0, errorsShown)
      .map(([namespace, { reason, since }]) => ({ namespace, reason, since: new Date(since).toISOString() }));
    return { version, instance, leaderElection, config: this.#options.config(), namespaces: { failing: failing.size, unhealthy }, errors };
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    this.#timer = this.#options.clock.after(ms, () => {
      this.#timer = undefined;
      this.#writing = this.#tick().finally(() => {
        this.#writing = undefined;
        this.#schedule(this.#options.intervalMs);
      });
    });
  }

  async #tick(): Promise<void> {
    const { api, clock, log, namespace, name } = this.#options;
    const status = this.current();
    const text = JSON.stringify(status);
    if (text === this.#written) return;
    const body: ControllerStatus = { ...status, updatedAt: new Date(clock.now()).toISOString() };
    try {
      const sending = api.applyConfigMap(statusConfigMap(namespace, name, body));
      this.#lastWrite = clock.now();
      await sending;
      this.#written = text;
      this.#lastError = undefined;
      log.debug('Published status', { namespace, name, failing: status.namespaces.failing });
    } catch (error) {
      // Not the leader (nothing was sent), or the API failed: tried again on the next tick.
      if (error instanceof NotLeaderError) {
        this.#lastWrite = undefined;
        return;
      }
      const message = describeKubeError(error);
      if (message !== this.#lastError) log.warn('Could not publish the status that kube-ecrlogin doctor reads', { namespace, name, error: message });
      this.#lastError = message;
    }
  }
}

function shortReason(message: string): string {
  const line = redactString(message.replace(/\s+/g, ' ').trim());
  return line.length > maxReasonLength ? `${line.slice(0, maxReasonLength - 1)}…` : line;
}

export function statusConfigMap(namespace: string, name: string, status: ControllerStatus): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace,
      labels: { [managedBy.key]: managedBy.value },
      annotations: { 'ecr-login/purpose': "The running controller's status, for kube-ecrlogin doctor; written by the leader when it changes." },
    },
    data: { [statusKey]: `${JSON.stringify(status, null, 2)}\n` },
  };
}

/** The status a ConfigMap holds, or why it holds none. */
export function readStatus(configMap: V1ConfigMap): Result<ControllerStatus> {
  const text = configMap.data?.[statusKey];
  if (text === undefined) return { ok: false, error: `it has no key ${statusKey}` };
  try {
    const status = JSON.parse(text) as Partial<ControllerStatus>;
    if (typeof status.version !== 'string' || typeof status.updatedAt !== 'string' || status.config === undefined || !Array.isArray(status.errors)) {
      return { ok: false, error: `its ${statusKey} is not a status this doctor understands` };
    }
    return { ok: true, value: status as ControllerStatus };
  } catch (error) {
    return { ok: false, error: `its ${statusKey} is not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
}
