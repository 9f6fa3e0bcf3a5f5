// The invariants of a chaos run, sampled continuously as admin, straight from kube-apiserver (never
// through the controller's proxy):
//   - coverage: every expected Secret holds a token that has not expired (its ecr-login/expires-at, and
//     the expiry inside every registry password the AWS test server issued);
//   - Secrets we do not own keep their resourceVersion; ServiceAccounts we must not touch too;
//   - imagePullSecrets entries we did not add are never lost;
//   - a managed Secret is never deleted and recreated (its uid stays);
//   - convergence: every expected Secret valid and not overdue for refresh, and our entries present.
// While the apiserver cannot be read (it or etcd is down), nothing can change a Secret either, so the
// last state read is judged against the current time.

import * as k8s from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';

/** A Secret the controller must keep valid. */
export interface Target {
  readonly namespace: string;
  readonly secret: string;
  readonly hosts: readonly string[];
}

export interface ObjectKey {
  readonly namespace: string;
  readonly name: string;
}

/** imagePullSecrets entries on a ServiceAccount: ours to be added, or others' never to be lost. */
export interface PullEntries {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly names: readonly string[];
}

export interface Expectations {
  readonly targets: readonly Target[];
  /** Entries the controller adds (convergence). */
  readonly ours: readonly PullEntries[];
  /** Entries someone else put there (never lost). */
  readonly theirs: readonly PullEntries[];
  /** Secrets we do not own (resourceVersion never changes). */
  readonly decoySecrets: readonly ObjectKey[];
  /** ServiceAccounts the controller has no reason to touch (resourceVersion never changes). */
  readonly decoyServiceAccounts: readonly ObjectKey[];
}

export interface RefreshTiming {
  /** The refresh margin: a Secret is due this long before its expiry (at the latest). */
  readonly marginMs: number;
  /** How late past its due time a Secret may be before it counts as overdue. */
  readonly graceMs: number;
}

export const managedBy = { key: 'app.kubernetes.io/managed-by', value: 'kube-ecrlogin' } as const;

/** Why a Secret does not hold a usable token at `now`, or undefined when it does. */
export function tokenProblem(secret: k8s.V1Secret | undefined, hosts: readonly string[], now: number): string | undefined {
  if (secret === undefined) return 'missing';
  if (secret.metadata?.labels?.[managedBy.key] !== managedBy.value) return 'not labelled as managed';
  if (secret.type !== 'kubernetes.io/dockerconfigjson') return `type ${String(secret.type)}`;
  const expiresAt = Date.parse(secret.metadata.annotations?.['ecr-login/expires-at'] ?? '');
  if (!Number.isFinite(expiresAt)) return 'no ecr-login/expires-at';
  if (expiresAt <= now) return `expired ${((now - expiresAt) / 1000).toFixed(1)} s ago`;
  let auths: Record<string, { username?: unknown; password?: unknown; auth?: unknown } | undefined>;
  try {
    const text = Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8');
    auths = (JSON.parse(text) as { auths: typeof auths }).auths;
  } catch {
    return '.dockerconfigjson is not JSON';
  }
  for (const host of hosts) {
    const entry = auths[host];
    if (entry === undefined) return `no auths entry for ${host}`;
    const { username, password, auth } = entry;
    if (typeof username !== 'string' || typeof password !== 'string') return `no credentials for ${host}`;
    if (auth !== Buffer.from(`${username}:${password}`).toString('base64')) return `auth for ${host} does not match`;
    const expiration = issuedExpiry(password);
    if (expiration === undefined) return `the password for ${host} is not a token the AWS test server issued`;
    if (expiration <= now) return `the token for ${host} expired ${((now - expiration) / 1000).toFixed(1)} s ago`;
  }
  return undefined;
}

/** The expiry (ms) inside a password the AWS test server issued (a base64 JSON envelope, as ECR's). */
export function issuedExpiry(password: string): number | undefined {
  try {
    const envelope = JSON.parse(Buffer.from(password, 'base64').toString('utf8')) as Record<string, unknown>;
    if (typeof envelope['payload'] !== 'string' || envelope['type'] !== 'DATA_KEY') return undefined;
    const expiration = envelope['expiration'];
    return typeof expiration === 'number' ? expiration * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export function expiresAtOf(secret: k8s.V1Secret | undefined): number | undefined {
  const at = Date.parse(secret?.metadata?.annotations?.['ecr-login/expires-at'] ?? '');
  return Number.isFinite(at) ? at : undefined;
}

export interface Sample {
  readonly at: number;
  /** The apiserver could not be read: judged on the last state read. */
  readonly stale: boolean;
  readonly total: number;
  readonly valid: number;
  /** "namespace/secret: why" for each target without a valid token. */
  readonly invalid: readonly string[];
  /** Smallest time left on any target's token, ms. */
  readonly headroomMs: number;
  readonly converged: boolean;
  /** Resident set sizes by replica name, bytes. */
  readonly rss: Readonly<Record<string, number>>;
}

export interface Violation {
  readonly at: number;
  readonly kind: 'decoy-secret' | 'decoy-service-account' | 'pull-secret-lost' | 'secret-recreated' | 'recovery' | 'memory';
  readonly detail: string;
}

export interface Coverage {
  readonly samples: number;
  readonly staleSamples: number;
  readonly checks: number;
  readonly valid: number;
  /** valid / checks (1 when there were no checks). */
  readonly ratio: number;
  readonly minHeadroomMs: number;
  /** The first few failures, for the report. */
  readonly failures: readonly string[];
}

export interface SamplerOptions {
  readonly core: k8s.CoreV1Api;
  readonly expectations: Expectations;
  readonly timing: RefreshTiming;
  readonly intervalMs?: number;
  /** Read each namespace on its own (a shared cluster) instead of one cluster-wide list (a private one). */
  readonly perNamespace?: boolean;
  /** Memory of the controller processes, sampled with everything else. */
  readonly rss?: () => Readonly<Record<string, number | undefined>>;
  readonly readTimeoutMs?: number;
}

interface World {
  readonly secrets: Map<string, k8s.V1Secret>;
  readonly serviceAccounts: Map<string, k8s.V1ServiceAccount>;
}

const keyOf = (namespace: string, name: string): string => `${namespace}/${name}`;

export class Sampler {
  readonly #o: SamplerOptions;
  readonly samples: Sample[] = [];
  readonly violations: Violation[] = [];
  #probes: Target[] = [];
  #last: World | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  readonly #decoyVersions = new Map<string, string>();
  readonly #decoySaVersions = new Map<string, string>();
  readonly #uids = new Map<string, string>();
  readonly #reported = new Set<string>();
  #waiters: (() => void)[] = [];

  constructor(options: SamplerOptions) {
    this.#o = options;
  }

  /** Records the decoys' resourceVersions as they are now, then samples until stop(). */
  async start(): Promise<void> {
    const world = await this.#read();
    for (const decoy of this.#o.expectations.decoySecrets) {
      const rv = world.secrets.get(keyOf(decoy.namespace, decoy.name))?.metadata?.resourceVersion;
      if (rv === undefined) throw new Error(`decoy Secret ${keyOf(decoy.namespace, decoy.name)} does not exist`);
      this.#decoyVersions.set(keyOf(decoy.namespace, decoy.name), rv);
    }
    for (const decoy of this.#o.expectations.decoyServiceAccounts) {
      const rv = world.serviceAccounts.get(keyOf(decoy.namespace, decoy.name))?.metadata?.resourceVersion;
      if (rv === undefined) throw new Error(`decoy ServiceAccount ${keyOf(decoy.namespace, decoy.name)} does not exist`);
      this.#decoySaVersions.set(keyOf(decoy.namespace, decoy.name), rv);
    }
    this.#last = world;
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** A Secret that must appear for convergence (not counted in coverage), e.g. after a fault clears. */
  addProbe(target: Target): void {
    this.#probes.push(target);
  }

  removeProbe(namespace: string): void {
    this.#probes = this.#probes.filter((probe) => probe.namespace !== namespace);
  }

  /** Adds a violation found outside the sampler (recovery too slow, memory growth). */
  report(violation: Violation): void {
    this.violations.push(violation);
  }

  /** The latest state read. */
  get latest(): World | undefined {
    return this.#last;
  }

  /** The earliest time any target's Secret may be refreshed next, from the latest state. */
  nextRefreshAt(jitter: number): number | undefined {
    const times = this.#o.expectations.targets
      .map((t) => expiresAtOf(this.#last?.secrets.get(keyOf(t.namespace, t.secret))))
      .filter((at): at is number => at !== undefined)
      .map((at) => at - this.#o.timing.marginMs * (1 + jitter));
    return times.length === 0 ? undefined : Math.min(...times);
  }

  coverage(from: number, to: number): Coverage {
    let checks = 0;
    let valid = 0;
    let stale = 0;
    let minHeadroomMs = Number.POSITIVE_INFINITY;
    const failures: string[] = [];
    let count = 0;
    for (const sample of this.samples) {
      if (sample.at < from || sample.at >= to) continue;
      count++;
      checks += sample.total;
      valid += sample.valid;
      if (sample.stale) stale++;
      minHeadroomMs = Math.min(minHeadroomMs, sample.headroomMs);
      for (const failure of sample.invalid) {
        if (failures.length < 5) failures.push(`${new Date(sample.at).toISOString()} ${failure}`);
      }
    }
    return { samples: count, staleSamples: stale, checks, valid, ratio: checks === 0 ? 1 : valid / checks, minHeadroomMs, failures };
  }

  violationsBetween(from: number, to: number): Violation[] {
    return this.violations.filter((v) => v.at >= from && v.at < to);
  }

  /** The first converged sample taken at or after `after`, waiting for it up to timeoutMs. */
  async waitConverged(after: number, timeoutMs: number): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.samples.find((s) => s.at >= after && s.converged);
      if (found !== undefined) return found.at;
      if (Date.now() > deadline || !this.#running) return undefined;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async #run(): Promise<void> {
    const interval = this.#o.intervalMs ?? 300;
    while (this.#running) {
      const started = Date.now();
      await this.sampleOnce();
      for (const wake of this.#waiters.splice(0)) wake();
      await sleep(Math.max(0, interval - (Date.now() - started)));
    }
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Reads the world once and judges it. */
  async sampleOnce(): Promise<Sample> {
    let world: World;
    let stale = false;
    try {
      world = await this.#read();
      this.#last = world;
    } catch {
      if (this.#last === undefined) throw new Error('the apiserver could not be read before the first sample');
      world = this.#last;
      stale = true;
    }
    const now = Date.now();
    const sample = this.#judge(world, now, stale);
    this.samples.push(sample);
    return sample;
  }

  #judge(world: World, now: number, stale: boolean): Sample {
    const { expectations, timing } = this.#o;
    const invalid: string[] = [];
    let valid = 0;
    let headroomMs = Number.POSITIVE_INFINITY;
    let overdue = false;
    for (const target of expectations.targets) {
      const key = keyOf(target.namespace, target.secret);
      const secret = world.secrets.get(key);
      const problem = tokenProblem(secret, target.hosts, now);
      if (problem === undefined) valid++;
      else invalid.push(`${key}: ${problem}`);
      const expiresAt = expiresAtOf(secret);
      if (expiresAt !== undefined) {
        headroomMs = Math.min(headroomMs, expiresAt - now);
        if (now > expiresAt - timing.marginMs + timing.graceMs) overdue = true;
      }
      const uid = secret?.metadata?.uid;
      if (uid !== undefined) {
        const first = this.#uids.get(key);
        if (first === undefined) this.#uids.set(key, uid);
        else if (first !== uid) this.#violate(now, 'secret-recreated', `${key} was deleted and created again (uid ${first} -> ${uid})`, `${key}:${uid}`);
      }
    }
    for (const decoy of expectations.decoySecrets) {
      const key = keyOf(decoy.namespace, decoy.name);
      const rv = world.secrets.get(key)?.metadata?.resourceVersion;
      if (rv !== this.#decoyVersions.get(key)) {
        this.#violate(
          now,
          'decoy-secret',
          `Secret ${key} we do not own changed: resourceVersion ${this.#decoyVersions.get(key) ?? '?'} -> ${rv ?? 'deleted'}`,
          `${key}:${rv ?? ''}`,
        );
      }
    }
    for (const decoy of expectations.decoyServiceAccounts) {
      const key = keyOf(decoy.namespace, decoy.name);
      const rv = world.serviceAccounts.get(key)?.metadata?.resourceVersion;
      if (rv !== this.#decoySaVersions.get(key)) {
        this.#violate(
          now,
          'decoy-service-account',
          `ServiceAccount ${key} changed: resourceVersion ${this.#decoySaVersions.get(key) ?? '?'} -> ${rv ?? 'deleted'}`,
          `${key}:${rv ?? ''}`,
        );
      }
    }
    for (const entries of expectations.theirs) {
      const key = keyOf(entries.namespace, entries.serviceAccount);
      const sa = world.serviceAccounts.get(key);
      const listed = new Set((sa?.imagePullSecrets ?? []).map((ref) => ref.name));
      for (const name of entries.names) {
        if (!listed.has(name))
          this.#violate(
            now,
            'pull-secret-lost',
            `ServiceAccount ${key} lost imagePullSecrets entry ${name}`,
            `${key}:${name}:${sa?.metadata?.resourceVersion ?? ''}`,
          );
      }
    }
    const oursPresent = expectations.ours.every((entries) => {
      const listed = new Set((world.serviceAccounts.get(keyOf(entries.namespace, entries.serviceAccount))?.imagePullSecrets ?? []).map((ref) => ref.name));
      return entries.names.every((name) => listed.has(name));
    });
    const probesValid = this.#probes.every((probe) => tokenProblem(world.secrets.get(keyOf(probe.namespace, probe.secret)), probe.hosts, now) === undefined);
    const rss: Record<string, number> = {};
    for (const [name, bytes] of Object.entries(this.#o.rss?.() ?? {})) if (bytes !== undefined) rss[name] = bytes;
    return {
      at: now,
      stale,
      total: expectations.targets.length,
      valid,
      invalid,
      headroomMs,
      converged: !stale && valid === expectations.targets.length && !overdue && oursPresent && probesValid,
      rss,
    };
  }

  #violate(at: number, kind: Violation['kind'], detail: string, dedupe: string): void {
    if (this.#reported.has(`${kind}|${dedupe}`)) return;
    this.#reported.add(`${kind}|${dedupe}`);
    this.violations.push({ at, kind, detail });
  }

  async #read(): Promise<World> {
    const { core, expectations, perNamespace, readTimeoutMs = 3_000 } = this.#o;
    const namespaces = new Set([
      ...expectations.targets.map((t) => t.namespace),
      ...this.#probes.map((t) => t.namespace),
      ...expectations.decoySecrets.map((d) => d.namespace),
      ...expectations.decoyServiceAccounts.map((d) => d.namespace),
      ...expectations.ours.map((d) => d.namespace),
      ...expectations.theirs.map((d) => d.namespace),
    ]);
    const read = async (): Promise<[k8s.V1Secret[], k8s.V1ServiceAccount[]]> => {
      if (perNamespace === true) {
        const lists = await Promise.all(
          [...namespaces].map(async (namespace) => Promise.all([core.listNamespacedSecret({ namespace }), core.listNamespacedServiceAccount({ namespace })])),
        );
        return [lists.flatMap(([s]) => s.items), lists.flatMap(([, a]) => a.items)];
      }
      const [s, a] = await Promise.all([core.listSecretForAllNamespaces(), core.listServiceAccountForAllNamespaces()]);
      const mine = (item: k8s.KubernetesObject): boolean => namespaces.has(item.metadata?.namespace ?? '');
      return [s.items.filter(mine), a.items.filter(mine)];
    };
    let timer: NodeJS.Timeout | undefined;
    const [secrets, serviceAccounts] = await Promise.race([
      read(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('read timed out')), readTimeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    return {
      secrets: new Map(secrets.map((s) => [keyOf(s.metadata?.namespace ?? '', s.metadata?.name ?? ''), s])),
      serviceAccounts: new Map(serviceAccounts.map((a) => [keyOf(a.metadata?.namespace ?? '', a.metadata?.name ?? ''), a])),
    };
  }
}
