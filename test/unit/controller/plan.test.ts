// Planning, pure: which Secrets to reuse, write or delete, when to look again, and the
// imagePullSecrets patches, which never touch an entry kube-ecrlogin did not add.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import { TokenError } from '../../../src/broker.ts';
import { resolveIntents } from '../../../src/controller/intents.ts';
import { type Grant, type Snapshot } from '../../../src/controller/model.ts';
import {
  planSecrets,
  planServiceAccounts,
  pullSecretsAnnotation,
  tokenFreshFor,
  tokenNeed,
  type TokenNeed,
  type TokenOutcome,
} from '../../../src/controller/plan.ts';
import { buildSecret, dataWrittenByUs, readSecretState, secretRefreshAt } from '../../../src/controller/secrets.ts';
import { east, hour, namespace, serviceAccount, settingsFrom, snapshot, t0, token, west } from '../../support/snapshot.ts';
import { type JsonPatchOp } from '../../../src/kube/objects.ts';

const bothRegions = { 'ecr-login/server': `${east},${west}` };

function grantsOf(snap: Snapshot): readonly Grant[] {
  return resolveIntents(snap).grants;
}

function tokensAt(issuedAt: number, password = 'p'): Map<string, ReturnType<typeof token>> {
  return new Map([
    ['us-east-1', token(`${password}-east`, issuedAt)],
    ['eu-west-1', token(`${password}-west`, issuedAt)],
  ]);
}

/** The Secret a namespace annotated with both regions holds after a write at issuedAt. */
/** A Secret we wrote, as the cache holds it (marked as written by us). */
function writtenSecret(issuedAt: number, password = 'p'): V1Secret {
  const grant = grantsOf(snapshot({ namespace: namespace('team-a', bothRegions) }))[0]!;
  const secret = buildSecret(grant, tokensAt(issuedAt, password));
  return { ...secret, metadata: { ...secret.metadata, annotations: { ...secret.metadata?.annotations, [dataWrittenByUs]: 'true' } } };
}

function withoutDataHash(secret: V1Secret): V1Secret {
  const { 'ecr-login/data-hash': _hash, ...annotations } = secret.metadata?.annotations ?? {};
  return { ...secret, metadata: { ...secret.metadata, annotations } };
}

describe('tokenNeed', () => {
  const ns = namespace('team-a', bothRegions);
  const grant = grantsOf(snapshot({ namespace: ns }))[0]!;
  const refreshAt = secretRefreshAt('team-a', 'ecr-login', { issuedAt: t0, expiresAt: t0 + 12 * hour }, snapshot({ namespace: ns }).settings.refresh);

  const cases: { name: string; secrets: V1Secret[]; now: number; expect: TokenNeed }[] = [
    { name: 'a grant without a Secret needs tokens', secrets: [], now: t0, expect: { reuse: false, reason: 'no Secret yet' } },
    { name: 'a fresh Secret is reused until its refresh time', secrets: [writtenSecret(t0)], now: t0 + hour, expect: { reuse: true, refreshAt } },
    {
      name: 'a Secret at its refresh time needs tokens',
      secrets: [writtenSecret(t0)],
      now: refreshAt,
      expect: { reuse: false, reason: 'token due for refresh' },
    },
    {
      name: 'a Secret for other registries or another identity needs tokens',
      secrets: [
        {
          ...writtenSecret(t0),
          metadata: { ...writtenSecret(t0).metadata, annotations: { ...writtenSecret(t0).metadata?.annotations, 'ecr-login/spec-hash': 'old' } },
        },
      ],
      now: t0,
      expect: { reuse: false, reason: 'registries or identity changed' },
    },
    {
      name: 'a Secret whose name moved to another object needs rewriting for its new owner',
      secrets: [
        {
          ...writtenSecret(t0),
          metadata: {
            ...writtenSecret(t0).metadata,
            annotations: { ...writtenSecret(t0).metadata?.annotations, 'ecr-login/owner': 'ServiceAccount/team-a/builder' },
          },
        },
      ],
      now: t0,
      expect: { reuse: false, reason: 'owner changed' },
    },
    {
      name: 'a Secret an earlier version wrote (no data hash) is written once more',
      secrets: [withoutDataHash(writtenSecret(t0))],
      now: t0,
      expect: { reuse: false, reason: 'written by an earlier version' },
    },
    {
      name: 'an unreadable Secret needs tokens and says why',
      secrets: [{ ...writtenSecret(t0), type: 'Opaque' }],
      now: t0,
      expect: { reuse: false, reason: 'Secret unreadable: type is Opaque' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(tokenNeed(snapshot({ namespace: ns, secrets: c.secrets, now: c.now }), grant), c.expect));
  }

  it('a cached token is fresh enough unless the Secret would be due within the minimum interval', () => {
    const snap = snapshot({ namespace: ns, now: t0 + 10 * hour, settings: settingsFrom('refresh: {margin: 50%, jitter: 0%, minInterval: 1m}') });
    const fresh = tokenFreshFor(snap, grant);
    const issuedDueIn = (ms: number): ReturnType<typeof token> => token('x', snap.now + ms - 6 * hour);
    assert.equal(fresh(issuedDueIn(hour)), true, 'due in an hour');
    assert.equal(fresh(issuedDueIn(61_000)), true, 'due just after the minimum interval');
    assert.equal(fresh(issuedDueIn(60_000)), false, 'due at the minimum interval');
    assert.equal(fresh(issuedDueIn(30_000)), false, 'due within the minimum interval');
    assert.equal(fresh(issuedDueIn(-hour)), false, 'due already');
  });
});

describe('planSecrets', () => {
  const ns = namespace('team-a', bothRegions);

  function plan(parts: {
    secrets?: V1Secret[];
    now?: number;
    outcome?: TokenOutcome;
    extraNamespace?: Record<string, string>;
    serviceAccounts?: V1ServiceAccount[];
  }) {
    const snap = snapshot({
      namespace: parts.extraNamespace ? namespace('team-a', parts.extraNamespace) : ns,
      secrets: parts.secrets ?? [],
      now: parts.now ?? t0,
      serviceAccounts: parts.serviceAccounts ?? [],
    });
    const intents = resolveIntents(snap);
    const needs = new Map(intents.grants.map((g) => [g, tokenNeed(snap, g)]));
    const outcomes = new Map<Grant, TokenOutcome>();
    for (const g of intents.grants) if (!needs.get(g)?.reuse && parts.outcome) outcomes.set(g, parts.outcome);
    return { snap, intents, result: planSecrets(snap, intents, needs, outcomes) };
  }

  it('reuses a fresh Secret without tokens and schedules its refresh', () => {
    const { result, snap } = plan({ secrets: [writtenSecret(t0)], now: t0 + hour });
    assert.equal(result.writes.length, 0);
    assert.equal(result.unchanged.length, 1);
    assert.equal(result.deletes.length, 0);
    assert.equal(result.nextRefreshAt, secretRefreshAt('team-a', 'ecr-login', { issuedAt: t0, expiresAt: t0 + 12 * hour }, snap.settings.refresh));
  });

  it('writes a new Secret when there is none, and schedules by the new tokens', () => {
    const { result, snap } = plan({ outcome: { ok: true, value: tokensAt(t0) } });
    assert.equal(result.writes.length, 1);
    assert.equal(result.writes[0]?.existing, undefined);
    assert.equal(result.writes[0]?.secret.metadata?.name, 'ecr-login');
    assert.equal(result.nextRefreshAt, secretRefreshAt('team-a', 'ecr-login', { issuedAt: t0, expiresAt: t0 + 12 * hour }, snap.settings.refresh));
  });

  it('the refresh scheduled after a write is the one read back from the written Secret', () => {
    for (const tokens of [
      tokensAt(t0),
      new Map([
        ['us-east-1', token('a', t0, null)],
        ['eu-west-1', token('b', t0, t0 + 20 * hour)],
      ]),
      new Map([
        ['us-east-1', token('a', t0, t0 + 3 * hour)],
        ['eu-west-1', token('b', t0 + 5_000, t0 + 2 * hour)],
      ]),
    ]) {
      const { result, snap } = plan({ outcome: { ok: true, value: tokens } });
      const written = result.writes[0]!.secret;
      const state = readSecretState(written);
      assert.ok(state.ok);
      assert.equal(result.nextRefreshAt, secretRefreshAt('team-a', 'ecr-login', state.value, snap.settings.refresh));
    }
  });

  it('rewrites a due Secret with the new tokens, naming the existing one', () => {
    const old = writtenSecret(t0 - 10 * hour, 'old');
    const { result } = plan({ secrets: [old], now: t0, outcome: { ok: true, value: tokensAt(t0, 'new') } });
    assert.equal(result.writes.length, 1);
    assert.equal(result.writes[0]?.existing, old);
  });

  it('does not write a Secret whose new content equals the old', () => {
    const { result } = plan({ secrets: [writtenSecret(t0 - 10 * hour)], now: t0, outcome: { ok: true, value: tokensAt(t0 - 10 * hour) } });
    assert.equal(result.writes.length, 0);
    assert.equal(result.unchanged.length, 1);
  });

  it('a token failure is reported and the existing Secret is neither written nor deleted', () => {
    const old = writtenSecret(t0 - 10 * hour);
    const error = new TokenError('GetAuthorizationToken', 'transient', 'ThrottlingException: Rate exceeded');
    const { result } = plan({ secrets: [old], now: t0, outcome: { ok: false, error } });
    assert.deepEqual(
      result.failed.map((f) => f.error),
      [error],
    );
    assert.equal(result.writes.length, 0);
    assert.equal(result.deletes.length, 0);
    assert.equal(result.nextRefreshAt, undefined);
  });

  it('deletes a managed Secret nothing asks for any more', () => {
    const stale = writtenSecret(t0);
    const { result } = plan({ secrets: [stale], extraNamespace: {} });
    assert.deepEqual(result.deletes, [stale]);
  });

  it('never deletes a labelled Secret it did not write, nor one whose owner is in another namespace: it reports them', () => {
    const stale = writtenSecret(t0);
    const forged = { ...stale, metadata: { ...stale.metadata, annotations: { ...stale.metadata?.annotations, [dataWrittenByUs]: 'no' } } };
    const elsewhere = {
      ...stale,
      metadata: { ...stale.metadata, name: 'x', annotations: { ...stale.metadata?.annotations, 'ecr-login/owner': 'Namespace/kube-system' } },
    };
    const { result } = plan({ secrets: [forged, elsewhere], extraNamespace: {} });
    assert.deepEqual(result.deletes, []);
    assert.deepEqual(result.foreign, [forged, elsewhere]);
  });

  it('never deletes a Secret without the managed-by label, even if a snapshot holds one', () => {
    const stale = writtenSecret(t0);
    const unmanaged = { ...stale, metadata: { ...stale.metadata, labels: {} } };
    const { result } = plan({ secrets: [unmanaged], extraNamespace: {} });
    assert.deepEqual(result.deletes, []);
  });

  it('keeps the Secret of an object whose annotation became invalid', () => {
    const kept = writtenSecret(t0);
    const { result, intents } = plan({ secrets: [kept], extraNamespace: { 'ecr-login/server': 'docker.io' } });
    assert.deepEqual(
      intents.problems.map((p) => p.reason),
      ['InvalidAnnotation'],
    );
    assert.deepEqual(result.deletes, []);
  });

  it('keeps a Secret a grant still claims even when its tokens were not obtained this time', () => {
    const snap = snapshot({ namespace: ns, secrets: [writtenSecret(t0 - 10 * hour)], now: t0 });
    const intents = resolveIntents(snap);
    const result = planSecrets(snap, intents, new Map(), new Map());
    assert.deepEqual(result.deletes, []);
    assert.deepEqual(result.writes, []);
  });

  it('schedules the earliest refresh of several Secrets', () => {
    const sa = serviceAccount('team-a', 'builder', { annotations: { 'ecr-login/server': east } });
    const snap = snapshot({ namespace: ns, serviceAccounts: [sa], now: t0 });
    const intents = resolveIntents(snap);
    const [nsGrant, saGrant] = intents.grants;
    const outcomes = new Map<Grant, TokenOutcome>([
      [nsGrant!, { ok: true, value: tokensAt(t0) }],
      [saGrant!, { ok: true, value: new Map([['us-east-1', token('x', t0, t0 + 2 * hour)]]) }],
    ]);
    const result = planSecrets(snap, intents, new Map(), outcomes);
    assert.equal(result.writes.length, 2);
    assert.equal(result.nextRefreshAt, secretRefreshAt('team-a', 'ecr-login-builder', { issuedAt: t0, expiresAt: t0 + 2 * hour }, snap.settings.refresh));
  });
});

// ServiceAccount patches.

/** Applies the RFC 6902 operations planServiceAccounts emits to a copy of a ServiceAccount. */
function applyPatch(sa: V1ServiceAccount, ops: readonly JsonPatchOp[]): V1ServiceAccount {
  const doc = structuredClone(sa) as unknown as Record<string, unknown>;
  for (const op of ops) {
    const path = op.path
      .split('/')
      .slice(1)
      .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = path.pop() ?? '';
    let parent: unknown = doc;
    for (const segment of path) parent = (parent as Record<string, unknown>)[segment];
    if (typeof parent !== 'object' || parent === null) throw new Error(`${op.op} ${op.path}: no parent`);
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (op.op === 'test') assert.deepEqual(parent[index], op.value, `test ${op.path}`);
      else if (op.op === 'add') parent.splice(index, 0, op.value);
      else if (op.op === 'replace') parent[index] = op.value;
      else {
        assert.ok(index < parent.length, `remove ${op.path}: out of range`);
        parent.splice(index, 1);
      }
    } else {
      const object = parent as Record<string, unknown>;
      if (op.op === 'test') assert.deepEqual(object[last], op.value, `test ${op.path}`);
      else if (op.op === 'add' || op.op === 'replace') object[last] = op.value;
      else {
        assert.ok(last in object, `remove ${op.path}: absent`);
        Reflect.deleteProperty(object, last);
      }
    }
  }
  return doc;
}

const pullNames = (sa: V1ServiceAccount): string[] => (sa.imagePullSecrets ?? []).map((ref) => ref.name ?? '');

/** Grants as resolveIntents makes them, for a namespace annotation targeting the given ServiceAccounts. */
function grantsFor(secretName: string, listed: string): Grant[] {
  const snap = snapshot({
    namespace: namespace('team-a', { 'ecr-login/server': east, 'ecr-login/secret-name': secretName, 'ecr-login/service-accounts': listed }),
  });
  return [...grantsOf(snap)];
}

/** Secrets of ours in the namespace: any entry the tests expect removed names one of them. */
const ours = new Set(['ecr-login', 'team-pull']);

describe('planServiceAccounts', () => {
  it("never removes an entry the record names unless a Secret of ours in the namespace has that name (the record is the tenant's to forge)", () => {
    const sa = serviceAccount('team-a', 'default', {
      imagePullSecrets: ['platform-pull', 'ecr-login'],
      annotations: { [pullSecretsAnnotation]: 'ecr-login,platform-pull' },
    });
    const [patch] = planServiceAccounts([sa], [], new Set(), new Set(), new Set(['ecr-login']));
    assert.deepEqual(patch?.removed, ['ecr-login']);
    assert.deepEqual(pullNames(applyPatch(sa, patch.ops)), ['platform-pull']);
    assert.deepEqual(planServiceAccounts([sa], [], new Set(), new Set(), new Set()), [], 'no Secret of ours: nothing removed, no write');
  });

  it('adds the entry and records it on a ServiceAccount without imagePullSecrets or annotations', () => {
    const sa = serviceAccount('team-a', 'default', { resourceVersion: '7' });
    const patches = planServiceAccounts([sa], grantsFor('ecr-login', 'default'), new Set(['ecr-login']), new Set(), ours);
    assert.deepEqual(patches, [
      {
        serviceAccount: 'default',
        added: ['ecr-login'],
        removed: [],
        ops: [
          { op: 'test', path: '/metadata/resourceVersion', value: '7' },
          { op: 'add', path: '/imagePullSecrets', value: [{ name: 'ecr-login' }] },
          { op: 'add', path: '/metadata/annotations', value: { [pullSecretsAnnotation]: 'ecr-login' } },
        ],
      },
    ]);
  });

  it('appends after the entries someone else added, and adds the record next to other annotations', () => {
    const sa = serviceAccount('team-a', 'default', { imagePullSecrets: ['dockerhub'], annotations: { note: 'x' } });
    const [patch] = planServiceAccounts([sa], grantsFor('ecr-login', 'default'), new Set(['ecr-login']), new Set(), ours);
    assert.deepEqual(patch?.ops.slice(1), [
      { op: 'add', path: '/imagePullSecrets/-', value: { name: 'ecr-login' } },
      { op: 'add', path: '/metadata/annotations/ecr-login~1pull-secrets', value: 'ecr-login' },
    ]);
    assert.deepEqual(pullNames(applyPatch(sa, patch.ops)), ['dockerhub', 'ecr-login']);
  });

  it('adds nothing for a Secret that does not exist (yet)', () => {
    const sa = serviceAccount('team-a', 'default');
    assert.deepEqual(planServiceAccounts([sa], grantsFor('ecr-login', 'default'), new Set(), new Set(), ours), []);
  });

  it('leaves alone a ServiceAccount the grant does not target', () => {
    const sa = serviceAccount('team-a', 'other');
    assert.deepEqual(planServiceAccounts([sa], grantsFor('ecr-login', 'default'), new Set(['ecr-login']), new Set(), ours), []);
  });

  it('* covers every ServiceAccount', () => {
    const sas = [serviceAccount('team-a', 'a'), serviceAccount('team-a', 'b')];
    assert.deepEqual(
      planServiceAccounts(sas, grantsFor('ecr-login', '*'), new Set(['ecr-login']), new Set(), ours).map((p) => p.serviceAccount),
      ['a', 'b'],
    );
  });

  it('skips a ServiceAccount that is being deleted', () => {
    const sa = serviceAccount('team-a', 'default', { deleting: true });
    assert.deepEqual(planServiceAccounts([sa], grantsFor('ecr-login', 'default'), new Set(['ecr-login']), new Set(), ours), []);
  });

  it('does nothing when the entry is there and recorded', () => {
    const sa = serviceAccount('team-a', 'default', { imagePullSecrets: ['ecr-login'], annotations: { [pullSecretsAnnotation]: 'ecr-login' } });
    assert.deepEqual(planServiceAccounts([sa], grantsFor('ecr-login', 'default'), new Set(['ecr-login']), new Set(), ours), []);
  });

  it('does not claim an entry someone else listed, so it never removes it later', () => {
    const sa = serviceAccount('team-a', 'default', { imagePullSecrets: ['ecr-login'] });
    assert.deepEqual(planServiceAccounts([sa], grantsFor('ecr-login', 'default'), new Set(['ecr-login']), new Set(), ours), []);
    assert.deepEqual(planServiceAccounts([sa], [], new Set(), new Set(), ours), [], 'not removed when nothing wants it');
  });

  it('removes an entry it added once nothing wants it, and the record with it', () => {
    const sa = serviceAccount('team-a', 'default', {
      imagePullSecrets: ['dockerhub', 'ecr-login', 'quay'],
      annotations: { [pullSecretsAnnotation]: 'ecr-login' },
    });
    const [patch] = planServiceAccounts([sa], [], new Set(), new Set(), ours);
    assert.deepEqual(patch?.removed, ['ecr-login']);
    assert.deepEqual(patch?.ops.slice(1), [
      { op: 'remove', path: '/imagePullSecrets/1' },
      { op: 'remove', path: '/metadata/annotations/ecr-login~1pull-secrets' },
    ]);
    const after = applyPatch(sa, patch.ops);
    assert.deepEqual(pullNames(after), ['dockerhub', 'quay']);
    assert.equal(after.metadata?.annotations?.[pullSecretsAnnotation], undefined);
  });

  it('removes duplicate entries of its own Secret from the end first, so the indexes stay right', () => {
    const sa = serviceAccount('team-a', 'default', {
      imagePullSecrets: ['ecr-login', 'other', 'ecr-login'],
      annotations: { [pullSecretsAnnotation]: 'ecr-login' },
    });
    const [patch] = planServiceAccounts([sa], [], new Set(), new Set(), ours);
    assert.deepEqual(
      patch?.ops.filter((op) => op.op === 'remove' && op.path.startsWith('/imagePullSecrets')).map((op) => op.path),
      ['/imagePullSecrets/2', '/imagePullSecrets/0'],
    );
    assert.deepEqual(pullNames(applyPatch(sa, patch.ops)), ['other']);
  });

  it("keeps its entry while the owning object's annotation is merely broken", () => {
    const sa = serviceAccount('team-a', 'default', { imagePullSecrets: ['ecr-login'], annotations: { [pullSecretsAnnotation]: 'ecr-login' } });
    assert.deepEqual(planServiceAccounts([sa], [], new Set(), new Set(['ecr-login']), ours), []);
  });

  it('adds its entry back after someone removed it, and keeps the record right', () => {
    const sa = serviceAccount('team-a', 'default', { imagePullSecrets: [], annotations: { [pullSecretsAnnotation]: 'ecr-login' } });
    const [patch] = planServiceAccounts([sa], grantsFor('ecr-login', 'default'), new Set(['ecr-login']), new Set(), ours);
    assert.deepEqual(patch?.added, ['ecr-login']);
    const after = applyPatch(sa, patch.ops);
    assert.deepEqual(pullNames(after), ['ecr-login']);
    assert.equal(after.metadata?.annotations?.[pullSecretsAnnotation], 'ecr-login');
  });

  it('drops a record whose entry someone removed, without touching the list', () => {
    const sa = serviceAccount('team-a', 'default', { imagePullSecrets: ['dockerhub'], annotations: { [pullSecretsAnnotation]: 'ecr-login' } });
    const [patch] = planServiceAccounts([sa], [], new Set(), new Set(), ours);
    assert.deepEqual(patch?.ops.slice(1), [{ op: 'remove', path: '/metadata/annotations/ecr-login~1pull-secrets' }]);
  });

  it('guards every patch with the resourceVersion it was planned from', () => {
    const sa = serviceAccount('team-a', 'default', { resourceVersion: '4242' });
    const [patch] = planServiceAccounts([sa], grantsFor('ecr-login', 'default'), new Set(['ecr-login']), new Set(), ours);
    assert.deepEqual(patch?.ops[0], { op: 'test', path: '/metadata/resourceVersion', value: '4242' });
  });
});

describe('planServiceAccounts properties', () => {
  const names = ['ecr-login', 'ecr-login-a', 'pull', 'dockerhub', 'quay'];
  const state = fc.record({
    listed: fc.array(fc.constantFrom(...names), { maxLength: 5 }),
    recorded: fc.option(
      fc.array(fc.constantFrom(...names, ' ', ''), { maxLength: 4 }).map((r) => r.join(',')),
      { nil: undefined },
    ),
    otherAnnotations: fc.boolean(),
    hasList: fc.boolean(),
    wanted: fc.subarray(['ecr-login', 'ecr-login-a', 'pull']),
    available: fc.subarray(['ecr-login', 'ecr-login-a', 'pull']),
    keep: fc.subarray(['ecr-login', 'ecr-login-a', 'pull']),
  });

  type State = typeof state extends fc.Arbitrary<infer T> ? T : never;

  function build(s: State): V1ServiceAccount {
    const annotations: Record<string, string> = {
      ...(s.otherAnnotations ? { note: 'x' } : {}),
      ...(s.recorded !== undefined ? { [pullSecretsAnnotation]: s.recorded } : {}),
    };
    return serviceAccount('team-a', 'default', {
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      ...(s.hasList || s.listed.length > 0 ? { imagePullSecrets: s.listed } : {}),
    });
  }

  it('never removes an entry it did not record, adds only available wanted Secrets, and converges in one patch', () => {
    fc.assert(
      fc.property(state, (s) => {
        const sa = build(s);
        const grants = s.wanted.flatMap((secret) => grantsFor(secret, 'default'));
        const available = new Set(s.available);
        const keep = new Set(s.keep);
        const patches = planServiceAccounts([sa], grants, available, keep, ours);
        if (patches.length === 0) return;
        const [patch] = patches;
        const recorded = (s.recorded ?? '').split(',').map((x) => x.trim());
        for (const removed of patch!.removed) {
          assert.ok(recorded.includes(removed), `removed ${removed}, which was not recorded`);
          assert.ok(!keep.has(removed), `removed kept ${removed}`);
        }
        for (const added of patch!.added) assert.ok(available.has(added) && s.wanted.includes(added), `added ${added}`);
        const after = applyPatch(sa, patch!.ops);
        const before = pullNames(sa);
        for (const name of before) {
          if (!patch!.removed.includes(name)) assert.ok(pullNames(after).includes(name), `${name} disappeared`);
        }
        assert.deepEqual(
          planServiceAccounts([{ ...after, metadata: { ...after.metadata, resourceVersion: '101' } }], grants, available, keep, ours),
          [],
          'a second pass changes nothing',
        );
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('planning with settings', () => {
  it("a policy denial plans the deletion of the denied object's Secret", () => {
    const snap = snapshot({
      namespace: namespace('team-a', bothRegions),
      secrets: [writtenSecret(t0)],
      settings: settingsFrom('rules: [{name: b-only, namespaces: {names: [team-b]}}]'),
    });
    const intents = resolveIntents(snap);
    const result = planSecrets(snap, intents, new Map(), new Map());
    assert.deepEqual(
      result.deletes.map((s) => s.metadata?.name),
      ['ecr-login'],
    );
  });
});
