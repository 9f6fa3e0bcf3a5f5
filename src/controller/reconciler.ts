// Reconcile one namespace: observe (a snapshot from the caches), plan (pure), apply (the only writes).
// Level-triggered: it reads the current state every time, whatever event brought the key here.

import type { V1Namespace, V1OwnerReference, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import { describeSource } from '../annotations.ts';
import { TokenError, type IssuedToken, type TokenBroker } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { StaticTarget } from '../config/options.ts';
import type { Settings } from '../config/settings.ts';
import { describeKubeError, statusOf, type KubeApi } from '../kube/api.ts';
import { reasons, type EventRecorder, type Reason } from '../kube/events.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { tokenEndpoints } from '../registry.ts';
import { nameOf, resolveIntents } from './intents.ts';
import { type Grant, type Intents, type Problem, type Snapshot } from './model.ts';
import { planSecrets, planServiceAccounts, tokenFreshFor, tokenNeed, type SecretWrite, type TokenNeed, type TokenOutcome } from './plan.ts';
import { isManaged, isOriginalLogin, isOurs, managedSelector, ownerNamespace, readSecretState, secretAnnotations } from './secrets.ts';
import { type ObjectRef } from '../kube/objects.ts';

/** What the reconciler needs of the informer caches: reads, and being told of its own writes. */
export interface ReconcilerCache {
  namespace(name: string): V1Namespace | undefined;
  serviceAccountsIn(namespace: string): readonly V1ServiceAccount[];
  /** Managed Secrets (our label) in a namespace. */
  secrets(namespace: string): readonly V1Secret[];
  /** Tells the cache about our own write (undefined object: deleted), until its watch catches up. */
  wrote(kind: 'Secret' | 'ServiceAccount', namespace: string, name: string, object: V1Secret | V1ServiceAccount | undefined): void;
  /** Forgets our write of an object after a conflict: someone else wrote it since. */
  conflicted(kind: 'Secret' | 'ServiceAccount', namespace: string, name: string): void;
}

export interface ReconcilerOptions {
  readonly cache: ReconcilerCache;
  readonly settings: () => Settings;
  readonly broker: TokenBroker;
  readonly api: KubeApi;
  readonly events: EventRecorder;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  /**
   * How often the controller's resync looks at every namespace, ms: what is due later than that is not
   * scheduled (the resync gets there first, and schedules it then).
   */
  readonly resyncMs: number;
  readonly target?: StaticTarget;
  /** See pendingGraceMs in intents.ts (tests shorten it). */
  readonly pendingGraceMs?: number;
}

export interface ReconcileResult {
  /** Look again after this long (a scheduled refresh). */
  readonly requeueAfterMs?: number;
  /** Something failed; the queue retries with backoff. */
  readonly error?: { readonly message: string };
  /** Secrets written, and whether every annotated object here got what it asked for. */
  readonly writes: number;
  readonly healthy: boolean;
  /** Secrets created (absent: none). */
  readonly issued?: number;
  /** Answered from the last reconcile: nothing it reads has changed and nothing is due (see Settled). */
  readonly settled?: true;
}

export interface ReconcileOptions {
  /**
   * Part of the controller's first pass after it starts: a Secret created is counted in the result
   * (`issued`) for the controller's one Event about the pass, and not announced in its namespace.
   */
  readonly firstPass?: boolean;
}

const problemReasons: readonly Reason[] = [
  reasons.InvalidAnnotation,
  reasons.UnknownAnnotation,
  reasons.ServiceAccountPending,
  reasons.PolicyDenied,
  reasons.SecretConflict,
  reasons.ServiceAccountMissing,
];

export class Reconciler {
  readonly #options: ReconcilerOptions;
  /** Per namespace, its last reconcile if it changed nothing and found nothing wrong (see Settled). */
  readonly #settled = new Map<string, Settled>();

  constructor(options: ReconcilerOptions) {
    this.#options = options;
  }

  /** Forgets what the last reconcile of a namespace saw (it is no longer served). */
  forget(namespace: string): void {
    this.#settled.delete(namespace);
  }

  /**
   * Brings one namespace to what its annotations ask. An aborted `signal` (the controller's deadline)
   * stops it before its next AWS wait or write, with the signal's reason: every step is safe to stop
   * after, and the next pass starts again from what is there.
   */
  async reconcile(namespaceName: string, signal?: AbortSignal, options: ReconcileOptions = {}): Promise<ReconcileResult> {
    const { cache, clock, events } = this.#options;
    const namespace = cache.namespace(namespaceName);
    if (namespace === undefined || namespace.metadata?.deletionTimestamp !== undefined) {
      // Gone or going: the namespace controller deletes what is in it; nothing for us to do.
      events.forgetNamespace(namespaceName);
      this.#options.metrics.keepSecrets(namespaceName, []);
      this.#settled.delete(namespaceName);
      return { writes: 0, healthy: true };
    }
    const observed: Snapshot = {
      namespace,
      serviceAccounts: cache.serviceAccountsIn(namespaceName),
      secrets: cache.secrets(namespaceName),
      settings: this.#options.settings(),
      now: clock.now(),
      ...(this.#options.target?.namespace === namespaceName ? { target: this.#options.target } : {}),
      ...(this.#options.pendingGraceMs !== undefined ? { pendingGraceMs: this.#options.pendingGraceMs } : {}),
    };
    const inputs = inputsOf(observed);
    const settled = this.#settled.get(namespaceName);
    if (settled !== undefined && inputs !== undefined && settled.inputs === inputs && settled.settings === observed.settings && observed.now < settled.until) {
      // Nothing it read has changed, and nothing is due: the same answer as last time, without planning again.
      if (settled.unchanged > 0) this.#options.metrics.refreshes.inc({ outcome: 'unchanged' }, settled.unchanged);
      return { writes: 0, healthy: true, settled: true, ...requeue(settled.until, observed.now, this.#options.resyncMs) };
    }
    this.#settled.delete(namespaceName);
    const run = new Run(options.firstPass === true);
    // Before asking AWS for anything: a Secret name taken by a Secret we do not own cannot be served.
    const { snapshot, intents } = await this.#checkUnmanaged(observed, resolveIntents(observed), run);
    this.#reportProblems(intents.annotated, intents.problems);
    // A typo'd key or a ServiceAccount still to come is said, but fails nothing (a `once` pass exits 0).
    if (intents.problems.some((problem) => problem.reason !== 'UnknownAnnotation' && problem.reason !== 'ServiceAccountPending')) run.unhealthy();

    const needs = new Map<Grant, TokenNeed>(intents.grants.map((grant) => [grant, tokenNeed(snapshot, grant)]));
    const outcomes = new Map<Grant, TokenOutcome>();
    await Promise.all(
      intents.grants.map(async (grant) => {
        const need = needs.get(grant);
        if (need === undefined || need.reuse) return;
        outcomes.set(grant, await this.#obtain(grant, tokenFreshFor(snapshot, grant), signal));
      }),
    );
    const plan = planSecrets(snapshot, intents, needs, outcomes);
    const available = new Set(snapshot.secrets.map((secret) => nameOf(secret)).filter((name) => !plan.deletes.some((d) => nameOf(d) === name)));
    signal?.throwIfAborted();
    for (const write of plan.writes) {
      signal?.throwIfAborted();
      if (await this.#write(write, run)) available.add(write.grant.secretName);
      else if (write.existing === undefined) available.delete(write.grant.secretName);
    }
    for (const grant of plan.unchanged) {
      this.#options.metrics.refreshes.inc({ outcome: 'unchanged' });
      this.#recovered(grant);
    }
    for (const { grant, error } of plan.failed) this.#failed(grant, error, run);

    for (const secret of plan.foreign) this.#reportForeign(secret);
    const owned = new Set(snapshot.secrets.filter((secret) => isOurs(secret)).map((secret) => nameOf(secret)));
    let patchesFailed = false;
    for (const patch of planServiceAccounts(snapshot.serviceAccounts, intents.grants, available, intents.keep, owned)) {
      signal?.throwIfAborted();
      try {
        const patched = await this.#options.api.patchServiceAccount(namespaceName, patch.serviceAccount, patch.ops);
        this.#options.cache.wrote('ServiceAccount', namespaceName, patch.serviceAccount, patched);
        run.writes++;
        this.#options.log.info('Patched ServiceAccount', {
          namespace: namespaceName,
          name: patch.serviceAccount,
          added: patch.added,
          removed: patch.removed,
        });
      } catch (error) {
        // 422 (our test op failed) or 409: the ServiceAccount changed since we read it; look again.
        this.#options.cache.conflicted('ServiceAccount', namespaceName, patch.serviceAccount);
        run.fail(`patching ServiceAccount ${namespaceName}/${patch.serviceAccount}: ${describeKubeError(error)}`);
        patchesFailed = true;
      }
    }

    // A Secret is deleted only once no ServiceAccount patch failed: an entry naming it is removed
    // only while the Secret is still ours to see (see planServiceAccounts), so it goes first.
    if (!patchesFailed) {
      for (const secret of plan.deletes) {
        signal?.throwIfAborted();
        await this.#delete(secret, run);
      }
    }

    this.#recordExpiries(namespaceName, intents.grants, plan.writes);
    this.#options.metrics.keepSecrets(
      namespaceName,
      intents.grants.map((grant) => grant.secretName),
    );
    const lookAgainAt = [plan.nextRefreshAt, intents.recheckAt].filter((at): at is number => at !== undefined);
    const until = lookAgainAt.length === 0 ? undefined : Math.min(...lookAgainAt);
    if (run.changedNothing && inputs !== undefined) {
      this.#settled.set(namespaceName, { inputs, settings: observed.settings, until: until ?? Number.POSITIVE_INFINITY, unchanged: plan.unchanged.length });
    }
    return run.result(until, clock.now(), this.#options.resyncMs);
  }

  async #obtain(grant: Grant, acceptable: (token: IssuedToken) => boolean, signal: AbortSignal | undefined): Promise<TokenOutcome> {
    try {
      const tokens = new Map<string, IssuedToken>();
      await Promise.all(
        [...tokenEndpoints(grant.registries)].map(async ([region, endpoint]) => {
          tokens.set(region, await this.#options.broker.token(grant.identity, endpoint, acceptable, signal));
        }),
      );
      return { ok: true, value: tokens };
    } catch (error) {
      if (signal?.aborted === true) throw signal.reason;
      const tokenError = error instanceof TokenError ? error : new TokenError('GetAuthorizationToken', 'transient', errorMessage(error));
      return { ok: false, error: tokenError };
    }
  }

  /**
   * Our cache only holds labelled Secrets. A grant whose Secret it lacks is normally new, and its
   * Secret is created (a same-named Secret makes the create fail with 409: see #write). Where a
   * same-named Secret is known (a conflict reported before), or may be adopted (--target-adopt), a
   * live read tells a Secret we do not own (left untouched, reported) from one that is, or becomes, ours.
   */
  async #checkUnmanaged(snapshot: Snapshot, intents: Intents, run: Run): Promise<{ snapshot: Snapshot; intents: Intents }> {
    const { api, events } = this.#options;
    const namespace = snapshot.namespace.metadata?.name ?? '';
    const lagging: V1Secret[] = [];
    const blocked = new Set<Grant>();
    const problems: Problem[] = [];
    const adopting = (grant: Grant): boolean => grant.source.kind === 'Target' && this.#options.target?.adopt === true;
    const unknown = intents.grants.filter(
      (grant) =>
        !snapshot.secrets.some((secret) => nameOf(secret) === grant.secretName) && (events.active(grant.ref, reasons.SecretConflict) || adopting(grant)),
    );
    await Promise.all(
      unknown.map(async (grant) => {
        let live: V1Secret | undefined;
        try {
          live = await api.readSecret(namespace, grant.secretName);
        } catch (error) {
          blocked.add(grant);
          run.fail(`reading Secret ${namespace}/${grant.secretName}: ${describeKubeError(error)}`);
          return;
        }
        if (live === undefined) return;
        if (isManaged(live)) {
          lagging.push(live);
          return;
        }
        if (
          adopting(grant) &&
          isOriginalLogin(
            live,
            grant.registries.map((r) => r.host),
          )
        ) {
          // The original kube-ecrlogin's Secret: taken over in place (labelled on the next write), never recreated.
          this.#options.log.info('Adopting Secret', { namespace, name: grant.secretName, source: describeSource(grant.source) });
          lagging.push(live);
          return;
        }
        blocked.add(grant);
        problems.push({ ref: grant.ref, reason: 'SecretConflict', message: unmanagedMessage(grant) });
      }),
    );
    if (lagging.length === 0 && blocked.size === 0) return { snapshot, intents };
    return {
      snapshot: { ...snapshot, secrets: [...snapshot.secrets, ...lagging] },
      intents: {
        ...intents,
        grants: intents.grants.filter((grant) => !blocked.has(grant)),
        problems: [...intents.problems, ...problems],
      },
    };
  }

  /** Writes one Secret; returns whether it now holds what we wrote. */
  async #write(write: SecretWrite, run: Run): Promise<boolean> {
    const { api, log, metrics, events } = this.#options;
    const { grant, secret, existing } = write;
    const namespace = grant.source.namespace;
    try {
      if (existing === undefined) {
        this.#options.cache.wrote('Secret', namespace, grant.secretName, await api.createSecret(secret));
        metrics.refreshes.inc({ outcome: 'issued' });
        log.info('Created Secret', { namespace, name: grant.secretName, source: describeSource(grant.source), registries: grant.registries.length });
        run.issued++;
        if (!run.firstPass)
          events.emit(grant.ref, 'Normal', reasons.CredentialsIssued, `Created Secret ${grant.secretName} with credentials for ${registriesOf(grant)}`);
      } else {
        let resourceVersion = existing.metadata?.resourceVersion ?? '';
        const owners = secret.metadata?.ownerReferences ?? [];
        const ownersOf = (refs: readonly V1OwnerReference[]): string => JSON.stringify(refs.map((o) => [o.kind, o.name, o.uid]));
        if (ownersOf(existing.metadata?.ownerReferences ?? []) !== ownersOf(owners)) {
          // An owner change (the name moved from one object to another): exactly the new owner, first.
          const reowned = await api.setSecretOwners(namespace, grant.secretName, resourceVersion, owners);
          resourceVersion = reowned.metadata?.resourceVersion ?? resourceVersion;
          run.writes++;
        }
        this.#options.cache.wrote('Secret', namespace, grant.secretName, await api.applySecret(secret, resourceVersion));
        metrics.refreshes.inc({ outcome: 'refreshed' });
        log.info('Applied Secret', {
          namespace,
          name: grant.secretName,
          source: describeSource(grant.source),
          expiresAt: secret.metadata?.annotations?.[secretAnnotations.expiresAt],
        });
      }
      run.writes++;
      this.#recovered(grant);
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status === 409 && existing === undefined && (await this.#unmanagedAfterConflict(grant))) {
        run.unhealthy();
        return false;
      }
      // 409: created or changed by someone else since we looked. Look again.
      if (status === 409) this.#options.cache.conflicted('Secret', namespace, grant.secretName);
      run.fail(`writing Secret ${namespace}/${grant.secretName}: ${describeKubeError(error)}`);
      metrics.refreshes.inc({ outcome: 'failed' });
      return false;
    }
  }

  /**
   * After a create failed with 409: whether the Secret in the way is one we do not own. If so it is
   * reported (and, from now on, checked before any token is fetched for it); if it is ours (the watch
   * has not delivered it yet), the caller retries.
   */
  async #unmanagedAfterConflict(grant: Grant): Promise<boolean> {
    const live = await this.#options.api.readSecret(grant.source.namespace, grant.secretName).catch(() => undefined);
    if (live === undefined || isManaged(live)) return false;
    this.#report({ ref: grant.ref, reason: 'SecretConflict', message: unmanagedMessage(grant) });
    return true;
  }

  #failed(grant: Grant, error: TokenError, run: Run): void {
    const { events, log, metrics } = this.#options;
    const message = `Could not get registry credentials for ${registriesOf(grant)}: ${error.message}. The current Secret, if any, is kept.`;
    events.warnOnce(grant.ref, reasons.RefreshFailed, message);
    log.warn('Refresh failed', {
      namespace: grant.source.namespace,
      name: grant.secretName,
      source: describeSource(grant.source),
      api: error.api,
      errorClass: error.kind,
      error: error.message,
    });
    metrics.refreshes.inc({ outcome: 'failed' });
    metrics.setRefreshFailing(grant.source.namespace, grant.secretName, true);
    run.fail(error.message);
  }

  #recovered(grant: Grant): void {
    this.#options.metrics.setRefreshFailing(grant.source.namespace, grant.secretName, false);
    if (this.#options.events.resolve(grant.ref, reasons.RefreshFailed)) {
      this.#options.events.emit(grant.ref, 'Normal', reasons.RefreshRecovered, `Secret ${grant.secretName} has fresh credentials again`);
    }
  }

  async #delete(secret: V1Secret, run: Run): Promise<void> {
    const { api, log, events } = this.#options;
    const namespace = secret.metadata?.namespace ?? '';
    const name = nameOf(secret);
    try {
      await api.deleteSecret(namespace, name, secret.metadata?.uid ?? '', secret.metadata?.resourceVersion ?? '');
      this.#options.cache.wrote('Secret', namespace, name, undefined);
      run.writes++;
      log.info('Deleted Secret', { namespace, name, source: secret.metadata?.annotations?.[secretAnnotations.owner] });
      const owner = ownerRef(secret);
      if (owner !== undefined) {
        events.emit(owner, 'Normal', reasons.CredentialsRemoved, `Deleted Secret ${name}: nothing asks for it any more`);
      }
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) return; // already gone: done
      this.#options.cache.conflicted('Secret', namespace, name);
      run.fail(`deleting Secret ${namespace}/${name}: ${describeKubeError(error)}`);
    }
  }

  /** A Secret with our label that is not ours (see isOurs): said once, in its namespace, and left alone. */
  #reportForeign(secret: V1Secret): void {
    const regarding = { kind: 'Secret', namespace: secret.metadata?.namespace ?? '', name: nameOf(secret) } as const;
    if (this.#options.events.active(regarding, reasons.ForeignSecret)) return;
    const message = `Secret ${regarding.name} carries the label ${managedSelector} but kube-ecrlogin did not write it for an object in this namespace; it is left alone. Remove the label, or the Secret`;
    this.#options.events.warnOnce(regarding, reasons.ForeignSecret, message);
    this.#options.log.warn('Foreign Secret left alone', {
      namespace: regarding.namespace,
      name: regarding.name,
      owner: secret.metadata?.annotations?.[secretAnnotations.owner],
    });
  }

  #reportProblems(annotated: readonly ObjectRef[], problems: readonly Problem[]): void {
    const { events } = this.#options;
    for (const problem of problems) this.#report(problem);
    // A problem no longer present is resolved, so that its return is reported again.
    for (const ref of annotated) {
      for (const reason of problemReasons) {
        if (!problems.some((p) => p.ref === ref && p.reason === reason)) events.resolve(ref, reason);
      }
    }
  }

  /** A Warning Event unless already said; a log line (and a denial count) when the problem is new. */
  #report(problem: Problem): void {
    const { events, log, metrics } = this.#options;
    const fresh = !events.active(problem.ref, problem.reason);
    events.warnOnce(problem.ref, problem.reason, problem.message);
    if (!fresh) return;
    log.warn(problemLogMessage[problem.reason], {
      kind: problem.ref.kind,
      namespace: problem.ref.namespace ?? problem.ref.name,
      name: problem.ref.name,
      reason: problem.reason,
      error: problem.message,
    });
    if (problem.reason === 'PolicyDenied') metrics.policyDenials.inc({ rule: problem.rule ?? '' });
  }

  #recordExpiries(namespace: string, grants: readonly Grant[], writes: readonly SecretWrite[]): void {
    for (const grant of grants) {
      const written = writes.find((w) => w.grant === grant)?.secret;
      const secret = written ?? this.#options.cache.secrets(namespace).find((s) => nameOf(s) === grant.secretName);
      if (secret === undefined) continue;
      const state = readSecretState(secret);
      if (!state.ok || state.value.expiresAt === undefined) continue;
      this.#options.metrics.setExpiry(namespace, grant.secretName, state.value.expiresAt / 1000);
    }
  }
}

const problemLogMessage: Record<Problem['reason'], string> = {
  InvalidAnnotation: 'Invalid annotation',
  UnknownAnnotation: 'Unknown annotation',
  ServiceAccountPending: 'ServiceAccount pending',
  PolicyDenied: 'Denied by policy',
  SecretConflict: 'Secret name conflict',
  ServiceAccountMissing: 'Identity ServiceAccount missing',
};

/** Collects what one reconcile did and how it ended. */
class Run {
  writes = 0;
  issued = 0;
  readonly firstPass: boolean;
  #errors: string[] = [];
  #healthy = true;

  constructor(firstPass: boolean) {
    this.firstPass = firstPass;
  }

  fail(message: string): void {
    this.#errors.push(message);
    this.#healthy = false;
  }

  /** Whether it wrote nothing, and every annotated object got what it asked for. */
  get changedNothing(): boolean {
    return this.writes === 0 && this.issued === 0 && this.#healthy && this.#errors.length === 0;
  }

  unhealthy(): void {
    this.#healthy = false;
  }

  result(nextRefreshAt: number | undefined, now: number, resyncMs: number): ReconcileResult {
    const base = {
      writes: this.writes,
      healthy: this.#healthy,
      ...(this.issued > 0 ? { issued: this.issued } : {}),
      ...requeue(nextRefreshAt, now, resyncMs),
    };
    return this.#errors.length > 0 ? { ...base, error: { message: this.#errors.join('; ') } } : base;
  }
}

/**
 * When to look at a namespace again for something due at `at`: at least 1 s on. Nothing is scheduled
 * for what is due after the next resync, which looks at every namespace anyway: one timer per
 * namespace would wake it a second time in every resync period.
 */
function requeue(at: number | undefined, now: number, resyncMs: number): { requeueAfterMs?: number } {
  if (at === undefined || at - now > resyncMs) return {};
  return { requeueAfterMs: Math.max(at - now, 1_000) };
}

/**
 * A reconcile that wrote nothing and found nothing wrong, with what it read. The plan is a function of
 * the snapshot, the settings and the time: while the Namespace, its ServiceAccounts and its Secrets are
 * at the same resourceVersions, the settings are the same object and nothing is due (a refresh, a
 * pending ServiceAccount to report), a resync of it is answered from here. Each pass of the resync is
 * then a comparison per namespace, not a plan; any change in the cache, a settings reload, or the time
 * something is due, and the namespace is reconciled in full. Failures and problems are never remembered:
 * they are looked at again every time.
 */
interface Settled {
  /** The resourceVersions read (see inputsOf). */
  readonly inputs: string;
  readonly settings: Settings;
  /** When its answer may change with time alone (a Secret due, a pending ServiceAccount to report), epoch ms. */
  readonly until: number;
  /** Secrets it found up to date (the refreshes metric counts them on each pass). */
  readonly unchanged: number;
}

/** The resourceVersions of every object a reconcile reads; undefined if any has none (nothing is remembered then). */
function inputsOf(snapshot: Snapshot): string | undefined {
  const versions = (objects: readonly { metadata?: { resourceVersion?: string } }[]): string | undefined => {
    const list = objects.map((object) => object.metadata?.resourceVersion ?? '');
    return list.includes('') ? undefined : list.join(',');
  };
  const parts = [versions([snapshot.namespace]), versions(snapshot.serviceAccounts), versions(snapshot.secrets)];
  return parts.includes(undefined) ? undefined : parts.join('|');
}

function unmanagedMessage(grant: Grant): string {
  return `Secret ${grant.secretName} exists and is not managed by kube-ecrlogin; it is left untouched`;
}

function registriesOf(grant: Grant): string {
  return grant.registries.map((r) => r.host).join(', ');
}

/** The object a Secret of ours served, from its owner annotation: only ever one in the Secret's namespace. */
function ownerRef(secret: V1Secret): ObjectRef | undefined {
  const namespace = secret.metadata?.namespace ?? '';
  if (ownerNamespace(secret) !== namespace) return undefined;
  const [kind, , name] = (secret.metadata?.annotations?.[secretAnnotations.owner] ?? '').split('/');
  if (kind === 'Namespace' || kind === 'Target') return { kind: 'Namespace', name: namespace };
  if (kind === 'ServiceAccount' && name !== undefined) return { kind: 'ServiceAccount', namespace, name };
  return undefined;
}
