// The managed pull Secret: built from a grant and its tokens, read back, and compared without
// counting a mere re-issue as a change.

import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Secret } from '@kubernetes/client-node';
import { resolveIntents } from '../../src/controller/intents.ts';
import { type Grant } from '../../src/controller/model.ts';
import {
  buildSecret,
  combinedTimes,
  dockerConfigKey,
  isManaged,
  isOriginalLogin,
  dataWrittenBy,
  readSecretState,
  secretDiffers,
  secretRefreshAt,
} from '../../src/controller/secrets.ts';
import { parseDockerConfig } from '../../src/dockerconfig.ts';
import { refreshTime } from '../../src/refresh.ts';
import { defaultSettings } from '../../src/config/settings.ts';
import { east, east2, hour, namespace, roleA, serviceAccount, snapshot, t0, token, west } from '../support/snapshot.ts';

function grant(annotations: Record<string, string>, onServiceAccount = false): Grant {
  const snap = onServiceAccount
    ? snapshot({ namespace: namespace('team-a'), serviceAccounts: [serviceAccount('team-a', 'builder', { annotations })] })
    : snapshot({ namespace: namespace('team-a', annotations) });
  const grants = resolveIntents(snap).grants;
  assert.equal(grants.length, 1);
  return grants[0]!;
}

const tokens = new Map([
  ['us-east-1', token('east-password', t0, t0 + 12 * hour)],
  ['eu-west-1', token('west-password', t0 + 1_000, t0 + 11 * hour)],
]);

function dockerConfig(secret: V1Secret): ReturnType<typeof parseDockerConfig> {
  return parseDockerConfig(Buffer.from(secret.data?.[dockerConfigKey] ?? '', 'base64').toString('utf8'));
}

describe('buildSecret', () => {
  it('a namespace with two regions gets one Secret with two auths', () => {
    const secret = buildSecret(grant({ 'ecr-login/server': `${east},${west}` }), tokens);
    assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
    assert.deepEqual(Object.keys(secret.data ?? {}), ['.dockerconfigjson']);
    assert.deepEqual(dockerConfig(secret), {
      ok: true,
      value: [
        { host: west, username: 'AWS', password: 'west-password' },
        { host: east, username: 'AWS', password: 'east-password' },
      ],
    });
  });

  it("two registries in one region share that region's token", () => {
    const secret = buildSecret(grant({ 'ecr-login/server': `${east},${east2}` }), tokens);
    const logins = dockerConfig(secret);
    assert.ok(logins.ok);
    assert.deepEqual(
      logins.value.map((l) => l.password),
      ['east-password', 'east-password'],
    );
  });

  it('marks the Secret as managed and records owner, registries, identity, times, spec hash and data hash', () => {
    const g = grant({ 'ecr-login/server': `${east},${west}`, 'ecr-login/role-arn': roleA });
    const secret = buildSecret(g, tokens);
    assert.equal(secret.metadata?.name, 'ecr-login');
    assert.equal(secret.metadata?.namespace, 'team-a');
    assert.deepEqual(secret.metadata?.labels, { 'app.kubernetes.io/managed-by': 'kube-ecrlogin' });
    assert.deepEqual(secret.metadata?.annotations, {
      'ecr-login/owner': 'Namespace/team-a',
      'ecr-login/registries': `${east},${west}`,
      'ecr-login/identity': `role ${roleA}`,
      'ecr-login/issued-at': new Date(t0).toISOString(),
      'ecr-login/expires-at': new Date(t0 + 11 * hour).toISOString(),
      'ecr-login/spec-hash': g.specHash,
      'ecr-login/data-hash': createHash('sha256')
        .update(secret.data?.['.dockerconfigjson'] ?? '')
        .digest('hex')
        .slice(0, 16),
    });
    assert.equal(secret.metadata?.ownerReferences, undefined, 'a Namespace Secret has no owner reference');
    assert.ok(isManaged(secret));
  });

  it("a ServiceAccount's Secret is owned by the ServiceAccount, so it goes with it", () => {
    const secret = buildSecret(grant({ 'ecr-login/server': east }, true), tokens);
    assert.deepEqual(secret.metadata?.ownerReferences, [{ apiVersion: 'v1', kind: 'ServiceAccount', name: 'builder', uid: 'uid-sa-builder' }]);
  });

  it('a token without an expiry leaves the expires-at annotation out', () => {
    const secret = buildSecret(grant({ 'ecr-login/server': east }), new Map([['us-east-1', token('p', t0, null)]]));
    assert.equal(secret.metadata?.annotations?.['ecr-login/expires-at'], undefined);
  });

  it('refuses to build without a token for a region it needs', () => {
    assert.throws(() => buildSecret(grant({ 'ecr-login/server': `${east},${west}` }), new Map([['us-east-1', token('p')]])), /no token for region eu-west-1/);
  });
});

describe('combinedTimes', () => {
  const cases: { name: string; tokens: { issuedAt: number; expiresAt: number | undefined }[]; expect: { issuedAt: number; expiresAt: number | undefined } }[] =
    [
      {
        name: 'the oldest issue and the earliest expiry',
        tokens: [
          { issuedAt: t0 + 5, expiresAt: t0 + 10 * hour },
          { issuedAt: t0, expiresAt: t0 + 12 * hour },
        ],
        expect: { issuedAt: t0, expiresAt: t0 + 10 * hour },
      },
      {
        name: 'no expiry at all stays unknown',
        tokens: [
          { issuedAt: t0, expiresAt: undefined },
          { issuedAt: t0 + 1, expiresAt: undefined },
        ],
        expect: { issuedAt: t0, expiresAt: undefined },
      },
      {
        name: 'a token without an expiry counts as living 12 hours when another has one',
        tokens: [
          { issuedAt: t0, expiresAt: undefined },
          { issuedAt: t0, expiresAt: t0 + 20 * hour },
        ],
        expect: { issuedAt: t0, expiresAt: t0 + 12 * hour },
      },
    ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(combinedTimes(c.tokens.map((t) => ({ username: 'AWS', password: 'p', ...t }))), c.expect));
  }
});

describe('readSecretState', () => {
  const g = grant({ 'ecr-login/server': `${east},${west}` });
  const built = buildSecret(g, tokens);

  it('reads back what buildSecret wrote', () => {
    const state = readSecretState(built);
    assert.ok(state.ok, state.ok ? '' : state.error);
    assert.equal(state.value.owner, 'Namespace/team-a');
    assert.equal(state.value.specHash, g.specHash);
    assert.equal(state.value.issuedAt, t0);
    assert.equal(state.value.expiresAt, t0 + 11 * hour);
  });

  it('reads the same from the metadata alone, as the cache holds it', () => {
    const { data: _data, type: _type, ...metadataOnly } = built;
    assert.deepEqual(readSecretState(metadataOnly), readSecretState(built));
  });

  const broken: { name: string; secret: V1Secret; says: RegExp }[] = [
    { name: 'an Opaque Secret cannot be trusted', secret: { ...built, type: 'Opaque' }, says: /type is Opaque/ },
    { name: 'a Secret without a type cannot be trusted', secret: withoutType(built), says: /type is unset/ },
    { name: 'a Secret without the .dockerconfigjson key cannot be trusted', secret: { ...built, data: {} }, says: /no \.dockerconfigjson key/ },
    {
      name: 'a Secret whose .dockerconfigjson is not JSON cannot be trusted',
      secret: { ...built, data: { '.dockerconfigjson': Buffer.from('{').toString('base64') } },
      says: /not JSON/,
    },
    {
      name: 'a Secret without an issue time cannot be trusted',
      secret: withAnnotations(built, { 'ecr-login/issued-at': undefined }),
      says: /issued-at is missing or not a time/,
    },
    {
      name: 'a Secret with a garbled issue time cannot be trusted',
      secret: withAnnotations(built, { 'ecr-login/issued-at': 'yesterday' }),
      says: /issued-at is missing or not a time/,
    },
    {
      name: 'a Secret with a garbled expiry cannot be trusted',
      secret: withAnnotations(built, { 'ecr-login/expires-at': 'soon' }),
      says: /expires-at is not a time/,
    },
    {
      name: 'a Secret whose data no longer matches its hash cannot be trusted',
      secret: { ...built, data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') } },
      says: /does not match annotation ecr-login\/data-hash/,
    },
    {
      name: 'a Secret whose data another manager wrote cannot be trusted',
      secret: withAnnotations(built, { [dataWrittenBy]: 'kubectl-edit' }),
      says: /changed by kubectl-edit/,
    },
  ];
  for (const c of broken) {
    it(c.name, () => {
      const state = readSecretState(c.secret);
      assert.ok(!state.ok);
      assert.match(state.error, c.says);
    });
  }
});

function withoutType(secret: V1Secret): V1Secret {
  const { type: _type, ...rest } = secret;
  return rest;
}

function withAnnotations(secret: V1Secret, changes: Record<string, string | undefined>): V1Secret {
  const merged = { ...secret.metadata?.annotations, ...changes };
  const annotations = Object.fromEntries(Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return { ...secret, metadata: { ...secret.metadata, annotations } };
}

describe('secretDiffers', () => {
  const g = grant({ 'ecr-login/server': east });
  const built = buildSecret(g, tokens);

  it('a Secret does not differ from itself', () => assert.equal(secretDiffers(built, built), false));

  it('the same token re-issued later is not a change', () => {
    const reissued = buildSecret(g, new Map([['us-east-1', { ...token('east-password', t0 + hour, t0 + 12 * hour) }]]));
    assert.equal(secretDiffers(built, reissued), false);
  });

  const changed: { name: string; existing: V1Secret }[] = [
    { name: 'another password is a change', existing: buildSecret(g, new Map([['us-east-1', token('other')]])) },
    { name: 'another expiry is a change', existing: withAnnotations(built, { 'ecr-login/expires-at': new Date(t0).toISOString() }) },
    { name: 'another owner is a change', existing: withAnnotations(built, { 'ecr-login/owner': 'Namespace/other' }) },
    { name: 'another spec hash is a change', existing: withAnnotations(built, { 'ecr-login/spec-hash': 'x' }) },
    { name: 'a missing registries annotation is a change', existing: withAnnotations(built, { 'ecr-login/registries': undefined }) },
    { name: 'an extra data key is a change', existing: { ...built, data: { ...built.data, extra: 'eA==' } } },
    { name: 'another type is a change', existing: { ...built, type: 'Opaque' } },
    { name: 'a missing managed-by label is a change', existing: { ...built, metadata: { ...built.metadata, labels: {} } } },
    {
      name: 'an owner reference the desired Secret lacks is a change',
      existing: { ...built, metadata: { ...built.metadata, ownerReferences: [{ apiVersion: 'v1', kind: 'ServiceAccount', name: 'x', uid: 'u' }] } },
    },
  ];
  for (const c of changed) {
    it(c.name, () => assert.equal(secretDiffers(c.existing, built), true));
  }

  it('from the metadata alone: the same data hash is no change, another is', () => {
    const { data: _data, type: _type, ...metadataOnly } = built;
    assert.equal(secretDiffers(metadataOnly, built), false);
    const other = buildSecret(g, new Map([['us-east-1', token('other')]]));
    assert.equal(secretDiffers(metadataOnly, other), true);
    assert.equal(secretDiffers(withAnnotations(metadataOnly, { [dataWrittenBy]: 'kubectl-edit' }), built), true, 'data another manager wrote');
  });

  it('annotations and labels someone else added are not a change', () => {
    const existing: V1Secret = {
      ...built,
      metadata: {
        ...built.metadata,
        labels: { ...built.metadata?.labels, team: 'a' },
        annotations: { ...built.metadata?.annotations, 'example.com/note': 'x' },
      },
    };
    assert.equal(secretDiffers(existing, built), false);
  });
});

describe('secretRefreshAt', () => {
  const times = { issuedAt: t0, expiresAt: t0 + 12 * hour };

  it('is stable for the same Secret and token', () => {
    assert.equal(
      secretRefreshAt('team-a', 'ecr-login', times, defaultSettings.refresh),
      secretRefreshAt('team-a', 'ecr-login', times, defaultSettings.refresh),
    );
  });

  it('spreads different Secrets with the same token times within the jitter window', () => {
    const window = 6 * hour * defaultSettings.refresh.jitter;
    const ats = ['a', 'b', 'c', 'd', 'e'].map((ns) => secretRefreshAt(ns, 'ecr-login', times, defaultSettings.refresh));
    assert.ok(new Set(ats).size > 1, 'jitter differs between Secrets');
    for (const at of ats) assert.ok(at <= t0 + 6 * hour && at >= t0 + 6 * hour - window);
  });

  it('is the refresh time of the token times with some seed', () => {
    const at = secretRefreshAt('team-a', 'ecr-login', times, { ...defaultSettings.refresh, jitter: 0 });
    assert.equal(at, refreshTime(times, { ...defaultSettings.refresh, jitter: 0 }));
  });
});

describe('isOriginalLogin: what --target-adopt may take over', () => {
  const secret = (
    auths: Record<string, { username: string; password: string }>,
    extra: Record<string, string> = {},
    type = 'kubernetes.io/dockerconfigjson',
  ): V1Secret => ({
    metadata: { name: 'regcred' },
    type,
    data: {
      [dockerConfigKey]: Buffer.from(
        JSON.stringify({
          auths: Object.fromEntries(
            Object.entries(auths).map(([host, l]) => [host, { ...l, auth: Buffer.from(`${l.username}:${l.password}`).toString('base64') }]),
          ),
        }),
      ).toString('base64'),
      ...extra,
    },
  });
  const cases: [string, V1Secret, boolean][] = [
    ["the original's docker-registry Secret for the target host", secret({ [east]: { username: 'AWS', password: 'p' } }), true],
    ['one written with an https:// server', secret({ [`https://${east}`]: { username: 'AWS', password: 'p' } }), true],
    ['one for another registry', secret({ 'https://index.docker.io/v1/': { username: 'AWS', password: 'p' } }), false],
    ['one that also holds another registry', secret({ [east]: { username: 'AWS', password: 'p' }, [west]: { username: 'AWS', password: 'q' } }), false],
    ['one whose user is not AWS', secret({ [east]: { username: 'robot', password: 'p' } }), false],
    ['one with more keys', secret({ [east]: { username: 'AWS', password: 'p' } }, { note: 'eA==' }), false],
    ['an Opaque Secret', secret({ [east]: { username: 'AWS', password: 'p' } }, {}, 'Opaque'), false],
    ['one with no logins', secret({}), false],
  ];
  for (const [name, candidate, expected] of cases) {
    it(`${expected ? 'adopts' : 'refuses'} ${name}`, () => {
      assert.equal(isOriginalLogin(candidate, [east]), expected);
    });
  }
});
