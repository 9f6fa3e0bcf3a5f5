// Planning, pure: from the snapshot, the intents and the tokens obtained, the Secrets to write or
// delete, the ServiceAccount patches and when to look again. Nothing here writes: the reconciler
// carries the plan out.

import type { V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import type { IssuedToken, TokenError } from '../broker.ts';
import { describeSource, pullSecretsRecord } from '../annotations.ts';
import type { Grant, Intents, Snapshot } from './model.ts';
import { nameOf, pullSecretsFor } from './intents.ts';
import { buildSecret, combinedTimes, isManaged, isOurs, readSecretState, secretDiffers, secretRefreshAt } from './secrets.ts';
import { type JsonPatchOp } from '../kube/objects.ts';
import type { Result } from '../result.ts';

/** Whether a grant can keep its Secret as it is, or needs tokens (and newer than which). */
export type TokenNeed = { readonly reuse: true; readonly refreshAt: number } | { readonly reuse: false; readonly reason: string };

export function tokenNeed(snapshot: Snapshot, grant: Grant): TokenNeed {
  const existing = snapshot.secrets.find((secret) => nameOf(secret) === grant.secretName);
  if (existing === undefined) return { reuse: false, reason: 'no Secret yet' };
  const read = readSecretState(existing);
  if (!read.ok) return { reuse: false, reason: `Secret unreadable: ${read.error}` };
  const state = read.value;
  if (state.specHash !== grant.specHash) return { reuse: false, reason: 'registries or identity changed' };
  // The name moved to another object: rewritten for its new owner (annotation and owner references), in place.
  if (state.owner !== describeSource(grant.source)) return { reuse: false, reason: 'owner changed' };
  // Written before Secrets carried a hash of their data: once more, so that the cache can compare.
  if (state.dataHash === undefined) return { reuse: false, reason: 'written by an earlier version' };
  const refreshAt = secretRefreshAt(grant.source.namespace, grant.secretName, state, snapshot.settings.refresh);
  if (snapshot.now < refreshAt) return { reuse: true, refreshAt };
  return { reuse: false, reason: 'token due for refresh' };
}

/**
 * Whether a cached token is fresh enough for a grant's Secret: not due by the Secret's own schedule
 * within minInterval. The slack keeps the tokens of a multi-region Secret, issued moments apart,
 * from being refreshed in two writes a moment apart.
 */
export function tokenFreshFor(snapshot: Snapshot, grant: Grant): (token: IssuedToken) => boolean {
  const { refresh } = snapshot.settings;
  return (token) => secretRefreshAt(grant.source.namespace, grant.secretName, token, refresh) > snapshot.now + refresh.minInterval;
}

/** The tokens a grant's Secret is built from, one per region, or why they could not be obtained. */
export type TokenOutcome = Result<ReadonlyMap<string, IssuedToken>, TokenError>;

export interface SecretWrite {
  readonly grant: Grant;
  readonly secret: V1Secret;
  /** The Secret as it is now; undefined when it is to be created. */
  readonly existing?: V1Secret;
}

export interface SecretPlan {
  readonly writes: readonly SecretWrite[];
  /** Grants whose Secret is right as it is. */
  readonly unchanged: readonly Grant[];
  readonly failed: readonly { readonly grant: Grant; readonly error: TokenError }[];
  /** Our Secrets nothing asks for any more. */
  readonly deletes: readonly V1Secret[];
  /** Secrets with our label that are not ours to touch (see isOurs): left alone, reported. */
  readonly foreign: readonly V1Secret[];
  /** The earliest time a Secret here is due, epoch ms. */
  readonly nextRefreshAt: number | undefined;
}

export function planSecrets(
  snapshot: Snapshot,
  intents: Intents,
  needs: ReadonlyMap<Grant, TokenNeed>,
  outcomes: ReadonlyMap<Grant, TokenOutcome>,
): SecretPlan {
  const writes: SecretWrite[] = [];
  const unchanged: Grant[] = [];
  const failed: { grant: Grant; error: TokenError }[] = [];
  let nextRefreshAt: number | undefined;
  const due = (at: number): void => {
    nextRefreshAt = nextRefreshAt === undefined ? at : Math.min(nextRefreshAt, at);
  };

  for (const grant of intents.grants) {
    const existing = snapshot.secrets.find((secret) => nameOf(secret) === grant.secretName);
    const need = needs.get(grant);
    if (need?.reuse) {
      unchanged.push(grant);
      due(need.refreshAt);
      continue;
    }
    const outcome = outcomes.get(grant);
    if (outcome === undefined) continue;
    if (!outcome.ok) {
      failed.push({ grant, error: outcome.error });
      continue;
    }
    const secret = buildSecret(grant, outcome.value);
    const times = combinedTimes([...outcome.value.values()]);
    due(secretRefreshAt(grant.source.namespace, grant.secretName, times, snapshot.settings.refresh));
    if (existing !== undefined && !secretDiffers(existing, secret)) unchanged.push(grant);
    else writes.push({ grant, secret, ...(existing !== undefined ? { existing } : {}) });
  }

  const wanted = new Set([...intents.grants.map((g) => g.secretName), ...intents.keep]);
  // Only ever a Secret we wrote, for an object in its own namespace, whatever the snapshot holds.
  const labelled = snapshot.secrets.filter((secret) => isManaged(secret) && !wanted.has(nameOf(secret)));
  const deletes = labelled.filter((secret) => isOurs(secret));
  const foreign = labelled.filter((secret) => !isOurs(secret));
  return { writes, unchanged, failed, deletes, foreign, nextRefreshAt };
}

/** Records, on each ServiceAccount, which imagePullSecrets entries kube-ecrlogin added. */
export const pullSecretsAnnotation = pullSecretsRecord;

export interface ServiceAccountPatch {
  readonly serviceAccount: string;
  readonly ops: readonly JsonPatchOp[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/**
 * The imagePullSecrets edits. `available` names the Secrets that exist (or were just written):
 * an entry is only added for a Secret that is there. An entry is only removed if the
 * ecr-login/pull-secrets annotation records that we added it AND it names a Secret of ours in this
 * namespace (`owned`): the annotation is on an object the tenant can edit, so it is a hint, never a
 * licence. Every other entry is kept as it is.
 */
export function planServiceAccounts(
  serviceAccounts: readonly V1ServiceAccount[],
  grants: readonly Grant[],
  available: ReadonlySet<string>,
  keep: ReadonlySet<string>,
  owned: ReadonlySet<string>,
): ServiceAccountPatch[] {
  const patches: ServiceAccountPatch[] = [];
  for (const sa of serviceAccounts) {
    const name = nameOf(sa);
    if (sa.metadata?.deletionTimestamp !== undefined) continue;
    const desired = new Set(pullSecretsFor(grants, name).filter((secret) => available.has(secret)));
    const listed = (sa.imagePullSecrets ?? []).map((ref) => ref.name ?? '');
    const recordedText = sa.metadata?.annotations?.[pullSecretsAnnotation];
    const recorded = parseRecorded(recordedText);

    const add = [...desired].filter((secret) => !listed.includes(secret)).sort();
    // Ours, no longer wanted, and not kept because its object's annotation is merely broken.
    const removeNames = recorded.filter((secret) => !desired.has(secret) && !keep.has(secret) && listed.includes(secret) && owned.has(secret));
    const nextRecorded = [...recorded.filter((secret) => listed.includes(secret) && !removeNames.includes(secret)), ...add].sort();

    const nextText = nextRecorded.join(',');
    if (add.length === 0 && removeNames.length === 0 && nextText === (recordedText ?? '')) continue;

    const ops: JsonPatchOp[] = [{ op: 'test', path: '/metadata/resourceVersion', value: sa.metadata?.resourceVersion ?? '' }];
    const removeIndexes = listed
      .map((secret, index) => (removeNames.includes(secret) ? index : -1))
      .filter((index) => index >= 0)
      .reverse();
    for (const index of removeIndexes) ops.push({ op: 'remove', path: `/imagePullSecrets/${index}` });
    if (add.length > 0) {
      if (sa.imagePullSecrets === undefined) ops.push({ op: 'add', path: '/imagePullSecrets', value: add.map((n) => ({ name: n })) });
      else for (const secret of add) ops.push({ op: 'add', path: '/imagePullSecrets/-', value: { name: secret } });
    }
    const annotationPath = `/metadata/annotations/${escapePointer(pullSecretsAnnotation)}`;
    if (nextText !== (recordedText ?? '')) {
      if (nextRecorded.length === 0) ops.push({ op: 'remove', path: annotationPath });
      else if (sa.metadata?.annotations === undefined) ops.push({ op: 'add', path: '/metadata/annotations', value: { [pullSecretsAnnotation]: nextText } });
      else ops.push({ op: 'add', path: annotationPath, value: nextText });
    }
    patches.push({ serviceAccount: name, ops, added: add, removed: removeNames });
  }
  return patches;
}

function parseRecorded(text: string | undefined): string[] {
  if (text === undefined) return [];
  return [
    ...new Set(
      text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    ),
  ];
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
