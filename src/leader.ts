// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
// a candidate takes the Lease when it is free or its holder has not renewed it for leaseDuration
// (measured on our own clock, from when we last saw it change, so clock skew does not matter); the
// leader renews every retryPeriod and gives up if it cannot renew within renewDeadline; a clean
// shutdown releases the Lease so a standby takes over at once. Lease times are MicroTime.

import {
  ApiException,
  CoordinationV1Api,
  V1MicroTime,
  type KubeConfig,
  type V1Lease,
} from '@kubernetes/client-node';
import type { Clock } from './clock.ts';
import { errorMessage, type Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

export interface LeaseApi {
  read(namespace: string, name: string): Promise<V1Lease | undefined>;
  create(namespace: string, lease: V1Lease): Promise<V1Lease>;
  /** Replaces the Lease; fails with 409 when resourceVersion is stale. */
  replace(namespace: string, name: string, lease: V1Lease): Promise<V1Lease>;
}

export function leaseApi(config: KubeConfig, metrics?: Metrics): LeaseApi {
  const api = config.makeApiClient(CoordinationV1Api);
  const counted = async <T>(verb: 'create' | 'apply', write: () => Promise<T>): Promise<T> => {
    try {
      const result = await write();
      metrics?.recordWrite(verb, 'leases', true);
      return result;
    } catch (error) {
      metrics?.recordWrite(verb, 'leases', false);
      throw error;
    }
  };
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
    replace: (namespace, name, lease) => counted('apply', () => api.replaceNamespacedLease({ namespace, name, body: lease })),
  };
}

export interface LeaderElectorOptions {
  readonly api: LeaseApi;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics?: Metrics;
}

export class LeaderElector {
  readonly #o: LeaderElectorOptions;
  #leader = false;
  #stopped = false;
  /** The last Lease we read or wrote, and when (our clock) its content last changed. */
  #observed: V1Lease | undefined;
  #observedAt = 0;
  #lastRenew = 0;
  #timer: { cancel(): void } | undefined;
  #wake: (() => void) | undefined;
  #onLost: (() => void) | undefined;

  constructor(options: LeaderElectorOptions) {
    this.#o = options;
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  /** Resolves once this candidate holds the Lease; keeps renewing it afterwards. */
  async acquire(onLost: () => void): Promise<boolean> {
    this.#onLost = onLost;
    const { log, identity, namespace, name } = this.#o;
    log.info('Waiting for leadership', { lease: `${namespace}/${name}`, identity });
    while (!this.#stopped) {
      if (await this.#tryAcquireOrRenew()) {
        this.#setLeader(true);
        this.#lastRenew = this.#o.clock.now();
        log.info('Became leader', { lease: `${namespace}/${name}`, identity });
        void this.#renewLoop();
        return true;
      }
      await this.#sleep(this.#o.retryPeriodMs);
    }
    return false;
  }

  /** Stops campaigning; a leader releases the Lease so that a standby takes over at once. */
  async release(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#wake?.();
    if (!this.#leader) return;
    this.#setLeader(false);
    const lease = this.#observed;
    if (lease?.spec?.holderIdentity !== this.#o.identity) return;
    const now = new V1MicroTime(this.#o.clock.now());
    try {
      await this.#o.api.replace(this.#o.namespace, this.#o.name, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now },
      });
      this.#o.log.info('Released leadership', { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity });
    } catch (error) {
      this.#o.log.warn('Could not release the Lease; it expires by itself', { error: errorMessage(error) });
    }
  }

  async #renewLoop(): Promise<void> {
    const leading = (): boolean => this.#leader && !this.#stopped;
    while (leading()) {
      await this.#sleep(this.#o.retryPeriodMs);
      if (!leading()) return;
      if (await this.#tryAcquireOrRenew()) {
        this.#lastRenew = this.#o.clock.now();
        continue;
      }
      if (this.#o.clock.now() - this.#lastRenew >= this.#o.renewDeadlineMs || this.#observed?.spec?.holderIdentity !== this.#o.identity) {
        this.#setLeader(false);
        this.#o.log.error('Lost leadership', { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity });
        this.#onLost?.();
        return;
      }
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity, clock, log } = this.#o;
    const now = clock.now();
    const durationSeconds = Math.ceil(this.#o.leaseDurationMs / 1000);
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
      const heldByOther = holder !== '' && holder !== identity;
      const expiresAt = this.#observedAt + (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
      if (heldByOther && now < expiresAt) return false;
      const takingOver = holder !== identity;
      const updated = await api.replace(namespace, name, {
        ...current,
        spec: {
          ...spec,
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: new V1MicroTime(now),
          ...(takingOver ? { acquireTime: new V1MicroTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
        },
      });
      this.#observe(updated, now);
      return true;
    } catch (error) {
      const conflict = error instanceof ApiException && (error.code === 409 || error.code === 422);
      if (!conflict) log.warn('Lease update failed', { lease: `${namespace}/${name}`, error: errorMessage(error) });
      return false;
    }
  }

  #observe(lease: V1Lease, now: number): void {
    const before = this.#observed?.metadata?.resourceVersion;
    if (before !== lease.metadata?.resourceVersion) {
      this.#observed = lease;
      this.#observedAt = now;
    }
  }

  #setLeader(leader: boolean): void {
    this.#leader = leader;
    this.#o.metrics?.leader.set(leader ? 1 : 0);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = this.#o.clock.after(ms, resolve);
    });
  }
}
