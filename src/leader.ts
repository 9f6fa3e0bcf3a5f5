// Leader election on a coordination.k8s.io/v1 Lease, with client-go's leaderelection semantics:
// - A candidate takes the Lease when it is free (no holder, or released) or when its record has not
//   changed for the record's own leaseDurationSeconds, measured on our clock from when we saw it
//   change (observedTime), never from the renewTime written by another machine: clock skew does not
//   matter.
// - The leader renews every retryPeriod. It stops leading when it has not renewed for renewDeadline
//   (each attempt is cut off at that deadline, so a hung request cannot keep it leading), or at once
//   when it finds another holder. renewDeadline < leaseDuration, so it stops before a standby may take over.
// - release() (a clean shutdown) writes an empty holder with a 1 s duration, so a standby takes over
//   on its next retry instead of waiting for expiry. It waits for an attempt in flight first, so the
//   two writes do not race.
// - Lease times are MicroTime: client-node's V1MicroTime serializes with six fractional digits; a
//   plain Date has three and the apiserver rejects it.
// Writes by anything but the leader are refused by leaderOnly(), which run() wraps around the KubeApi.

import { ApiException, CoordinationV1Api, V1MicroTime, type CoreV1Event, type KubeConfig, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import type { Clock } from './clock.ts';
import { countedWrite, describeKubeError, type KubeApi } from './kube/api.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

export interface LeaseApi {
  /** Undefined when the Lease does not exist. */
  read(namespace: string, name: string): Promise<V1Lease | undefined>;
  /** Fails with 409 when it exists already. */
  create(namespace: string, lease: V1Lease): Promise<V1Lease>;
  /** Replaces the Lease (an update); fails with 409 when its resourceVersion is stale. */
  replace(namespace: string, name: string, lease: V1Lease): Promise<V1Lease>;
}

export function leaseApi(config: KubeConfig, metrics?: Metrics): LeaseApi {
  const api = config.makeApiClient(CoordinationV1Api);
  const counted = <T>(verb: 'create' | 'update', write: () => Promise<T>): Promise<T> => countedWrite(metrics, verb, 'leases', write);
  return {
    async read(namespace, name) {
      try {
        return await api.readNamespacedLease({ namespace, name });
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) return undefined;
        throw error;
      }
    },
    create: (namespace, lease) => counted('create', () => api.createNamespacedLease({ namespace, body: lease })),
    replace: (namespace, name, lease) => counted('update', () => api.replaceNamespacedLease({ namespace, name, body: lease })),
  };
}

export interface LeaderElectorOptions {
  readonly api: LeaseApi;
  readonly namespace: string;
  readonly name: string;
  /** This candidate's identity (the Pod name): the Lease's holderIdentity while it leads. */
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** [0, 1) for the jitter of acquire retries (client-go's JitterFactor 1.2). Default Math.random. */
  readonly random?: () => number;
}

/** client-go: a candidate waits retryPeriod * [1, 1 + 1.2) between attempts to acquire. */
const jitterFactor = 1.2;

export class LeaderElector {
  readonly #options: LeaderElectorOptions;
  #leader = false;
  #stopped = false;
  /** The last Lease we read or wrote, and when (our clock) we first saw that version of it. */
  #observed: V1Lease | undefined;
  #observedAt = 0;
  /** When the last successful acquire or renew was sent (a write can only have landed after it). */
  #lastRenew = 0;
  /** The attempt in flight, for release() to wait on. */
  #attempt: Promise<boolean> | undefined;
  #sleep: { readonly wake: () => void } | undefined;
  #onLost: (() => void) | undefined;

  constructor(options: LeaderElectorOptions) {
    this.#options = options;
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  /**
   * Whether this replica may write now: it leads, and its last renewal is less than renewDeadline
   * old (after that it is about to step down, and a standby may soon take over).
   */
  canWrite(): boolean {
    return this.#leader && !this.#stopped && this.#options.clock.now() - this.#lastRenew < this.#options.renewDeadlineMs;
  }

  /** The holder of the Lease as last seen ('' when released or never seen). */
  get observedHolder(): string {
    return this.#observed?.spec?.holderIdentity ?? '';
  }

  /**
   * Campaigns until this candidate holds the Lease (true) or release() is called (false). Once
   * leading, it keeps renewing in the background; onLost runs if it stops leading other than by release().
   */
  async acquire(onLost: () => void): Promise<boolean> {
    this.#onLost = onLost;
    const { log, identity, retryPeriodMs, clock } = this.#options;
    const random = this.#options.random ?? Math.random;
    log.info('Waiting for leadership', { lease: this.#leaseName, identity });
    // #stopped changes while we wait: read it through a call, not a narrowed field.
    const stopped = (): boolean => this.#stopped;
    while (!stopped()) {
      const started = clock.now();
      if (await this.#attemptOnce(this.#options.renewDeadlineMs)) {
        // release() came while we were acquiring: it gives the Lease back (it saw us as the holder).
        if (stopped()) return false;
        this.#lastRenew = started;
        this.#setLeader(true);
        log.info('Became leader', { lease: this.#leaseName, identity });
        void this.#renewLoop();
        return true;
      }
      await this.#wait(retryPeriodMs * (1 + random() * jitterFactor));
    }
    return false;
  }

  /**
   * Stops campaigning and leading. If this candidate holds the Lease, it is released at once (empty
   * holder, 1 s duration) so that a standby takes over on its next retry.
   */
  async release(): Promise<void> {
    const { api, namespace, name, identity, clock, log } = this.#options;
    this.#stopped = true;
    this.#sleep?.wake();
    this.#setLeader(false);
    if (this.#attempt !== undefined) await withTimeout(clock, this.#attempt, this.#options.renewDeadlineMs);
    const lease = this.#observed;
    if (lease === undefined || lease.spec?.holderIdentity !== identity) return;
    const now = new V1MicroTime(clock.now());
    const spec: V1LeaseSpec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now };
    try {
      const released = await withTimeout(clock, api.replace(namespace, name, { ...lease, spec }), this.#options.renewDeadlineMs);
      if (released === undefined) throw new Error(`no answer within ${this.#options.renewDeadlineMs} ms`);
      this.#observe(released, clock.now());
      log.info('Released leadership', { lease: this.#leaseName, identity });
    } catch (error) {
      log.warn('Could not release the Lease; it expires by itself', { lease: this.#leaseName, error: describeKubeError(error) });
    }
  }

  get #leaseName(): string {
    return `${this.#options.namespace}/${this.#options.name}`;
  }

  async #renewLoop(): Promise<void> {
    const { clock, renewDeadlineMs, retryPeriodMs, identity, log } = this.#options;
    const leading = (): boolean => this.#leader && !this.#stopped;
    while (leading()) {
      const deadline = this.#lastRenew + renewDeadlineMs;
      await this.#wait(Math.min(retryPeriodMs, deadline - clock.now()));
      if (!leading()) return;
      const started = clock.now();
      const renewed = started < deadline && (await this.#attemptOnce(deadline - started));
      if (!leading()) return;
      if (renewed) {
        this.#lastRenew = started;
        continue;
      }
      const taken = this.observedHolder !== identity;
      if (!taken && clock.now() < deadline) continue;
      this.#setLeader(false);
      log.error('Lost leadership', {
        lease: this.#leaseName,
        identity,
        reason: taken ? `the Lease is held by ${this.observedHolder || 'nobody'}` : `not renewed within ${renewDeadlineMs} ms`,
      });
      this.#onLost?.();
      return;
    }
  }

  /** One tryAcquireOrRenew, given up (false) after timeoutMs. */
  async #attemptOnce(timeoutMs: number): Promise<boolean> {
    const attempt = this.#tryAcquireOrRenew();
    this.#attempt = attempt;
    return (await withTimeout(this.#options.clock, attempt, timeoutMs)) ?? false;
  }

  /** client-go's tryAcquireOrRenew: true when we hold the Lease after this call. */
  async #tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity, clock, log } = this.#options;
    const now = clock.now();
    const durationSeconds = Math.ceil(this.#options.leaseDurationMs / 1000);
    try {
      const current = await api.read(namespace, name);
      if (current === undefined) {
        const created = await api.create(namespace, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: new V1MicroTime(now),
            renewTime: new V1MicroTime(now),
            leaseTransitions: 0,
          },
        });
        this.#observe(created, now);
        return true;
      }
      this.#observe(current, now);
      const spec = current.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const ours = holder === identity;
      const valid = this.#observedAt + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 > now;
      if (holder !== '' && valid && !ours) return false;
      const updated = await api.replace(namespace, name, {
        ...current,
        spec: {
          ...spec,
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: new V1MicroTime(now),
          // A renewal keeps the acquisition; a takeover (of an expired or released Lease) is a transition.
          acquireTime: ours && spec.acquireTime !== undefined ? spec.acquireTime : new V1MicroTime(now),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
        },
      });
      this.#observe(updated, now);
      return true;
    } catch (error) {
      // 409: someone else wrote it since we read it; we look again on the next try.
      if (!(error instanceof ApiException && error.code === 409)) {
        log.warn('Lease update failed', { lease: this.#leaseName, error: describeKubeError(error) });
      }
      return false;
    }
  }

  #observe(lease: V1Lease, now: number): void {
    if (this.#observed?.metadata?.resourceVersion === lease.metadata?.resourceVersion) return;
    const before = this.observedHolder;
    this.#observed = lease;
    this.#observedAt = now;
    const holder = this.observedHolder;
    if (holder !== before && holder !== '' && holder !== this.#options.identity) {
      this.#options.log.info('New leader', { lease: this.#leaseName, leader: holder });
    }
  }

  #setLeader(leader: boolean): void {
    this.#leader = leader;
    this.#options.metrics?.leader.set(leader ? 1 : 0);
  }

  /** Sleeps ms on the clock; release() wakes it. */
  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#options.clock.after(Math.max(0, ms), () => {
        this.#sleep = undefined;
        resolve();
      });
      this.#sleep = {
        wake: () => {
          timer.cancel();
          this.#sleep = undefined;
          resolve();
        },
      };
    });
  }
}

/** The promise's value, or undefined once timeoutMs passed on the clock (the promise is left to settle). */
function withTimeout<T>(clock: Clock, promise: Promise<T>, timeoutMs: number): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve, reject) => {
    const timer = clock.after(Math.max(0, timeoutMs), () => resolve(undefined));
    promise.then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (error: unknown) => {
        timer.cancel();
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Raised for a write attempted by a replica that does not lead. */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
}

/**
 * The KubeApi with every write allowed only while `mayWrite()`: a standby, or a leader that is
 * stepping down or shutting down, never writes Secrets, ServiceAccounts or tokens (a NotLeaderError),
 * and its Events are dropped (a standby reports nothing; the leader reports the same things).
 */
export function leaderOnly(api: KubeApi, mayWrite: () => boolean, log: Logger): KubeApi {
  const refuse = (what: string): Promise<never> => Promise.reject(new NotLeaderError(`not the leader: not writing ${what}`));
  return {
    createSecret: (secret) => (mayWrite() ? api.createSecret(secret) : refuse(`Secret ${secret.metadata?.namespace}/${secret.metadata?.name}`)),
    applySecret: (secret, resourceVersion) =>
      mayWrite() ? api.applySecret(secret, resourceVersion) : refuse(`Secret ${secret.metadata?.namespace}/${secret.metadata?.name}`),
    deleteSecret: (namespace, name, uid, resourceVersion) =>
      mayWrite() ? api.deleteSecret(namespace, name, uid, resourceVersion) : refuse(`Secret ${namespace}/${name}`),
    readSecret: (namespace, name) => api.readSecret(namespace, name),
    setSecretOwners: (namespace, name, resourceVersion, owners) =>
      mayWrite() ? api.setSecretOwners(namespace, name, resourceVersion, owners) : refuse(`Secret ${namespace}/${name}`),
    patchServiceAccount: (namespace, name, ops) => (mayWrite() ? api.patchServiceAccount(namespace, name, ops) : refuse(`ServiceAccount ${namespace}/${name}`)),
    createEvent: (event: CoreV1Event) => {
      if (mayWrite()) return api.createEvent(event);
      log.debug('Not the leader: Event not recorded', {
        reason: event.reason,
        kind: event.involvedObject.kind,
        namespace: event.involvedObject.namespace,
        name: event.involvedObject.name,
      });
      return Promise.resolve();
    },
    applyConfigMap: (configMap) =>
      mayWrite() ? api.applyConfigMap(configMap) : refuse(`ConfigMap ${configMap.metadata?.namespace}/${configMap.metadata?.name}`),
    requestToken: (namespace, name, audience, expirationSeconds) =>
      mayWrite() ? api.requestToken(namespace, name, audience, expirationSeconds) : refuse(`a TokenRequest for ${namespace}/${name}`),
  };
}

/** Whether this replica may write; open until run() makes it follow the leader elector. */
export class WriteGate {
  #mayWrite: () => boolean = () => true;

  get open(): boolean {
    return this.#mayWrite();
  }

  follow(mayWrite: () => boolean): void {
    this.#mayWrite = mayWrite;
  }
}
