// The chaos invariants must be able to fail: an expired or forged token, a touched decoy, a lost
// imagePullSecrets entry, a recreated Secret and an unreadable apiserver are each seen for what they are.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as k8s from '@kubernetes/client-node';
import { Sampler, issuedExpiry, tokenProblem, type Expectations } from '../../chaos/invariants.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const now = Date.parse('2026-01-01T00:00:00Z');

/** A password shaped as the AWS test server issues them. */
function password(expiresAtMs: number): string {
  return Buffer.from(JSON.stringify({ payload: 'p', datakey: 'd', version: '2', type: 'DATA_KEY', expiration: Math.floor(expiresAtMs / 1000) })).toString(
    'base64',
  );
}

function managedSecret(namespace: string, expiresAtMs: number, options: { uid?: string; pw?: string; hosts?: string[]; auth?: string } = {}): k8s.V1Secret {
  const pw = options.pw ?? password(expiresAtMs);
  const auths = Object.fromEntries(
    (options.hosts ?? [east]).map((host) => [host, { username: 'AWS', password: pw, auth: options.auth ?? Buffer.from(`AWS:${pw}`).toString('base64') }]),
  );
  return {
    metadata: {
      name: 'ecr-login',
      namespace,
      uid: options.uid ?? 'uid-1',
      resourceVersion: '1',
      labels: { 'app.kubernetes.io/managed-by': 'kube-ecrlogin' },
      annotations: { 'ecr-login/expires-at': new Date(expiresAtMs).toISOString() },
    },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths })).toString('base64') },
  };
}

describe('tokenProblem', () => {
  const cases: { name: string; secret: k8s.V1Secret | undefined; says: RegExp | undefined }[] = [
    { name: 'a fresh token is valid', secret: managedSecret('a', now + 60_000), says: undefined },
    { name: 'a missing Secret is not', secret: undefined, says: /missing/ },
    { name: 'an expired expires-at is not', secret: managedSecret('a', now - 1_000), says: /expired 1\.0 s ago/ },
    {
      name: 'a token that expired while expires-at says otherwise is not',
      secret: managedSecret('a', now + 60_000, { pw: password(now - 5_000) }),
      says: /the token for .* expired 5\.0 s ago/,
    },
    {
      name: 'a password the AWS test server did not issue is not',
      secret: managedSecret('a', now + 60_000, { pw: 'hunter2' }),
      says: /not a token the AWS test server issued/,
    },
    { name: 'an auth that does not match is not', secret: managedSecret('a', now + 60_000, { auth: 'eA==' }), says: /does not match/ },
    { name: 'a Secret without the registry asked for is not', secret: managedSecret('a', now + 60_000, { hosts: ['other'] }), says: /no auths entry for/ },
    {
      name: 'a Secret without our label is not',
      secret: { ...managedSecret('a', now + 60_000), metadata: { ...managedSecret('a', now + 60_000).metadata, labels: {} } },
      says: /not labelled as managed/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const problem = tokenProblem(c.secret, [east], now);
      if (c.says === undefined) assert.equal(problem, undefined);
      else assert.match(problem ?? '', c.says);
    });
  }

  it('reads the expiry inside an issued password', () => {
    assert.equal(issuedExpiry(password(now)), now);
    assert.equal(issuedExpiry('not base64 JSON'), undefined);
  });
});

/** A CoreV1Api that answers cluster-wide lists from a mutable world, or fails when told to. */
function fakeCore(world: { secrets: k8s.V1Secret[]; serviceAccounts: k8s.V1ServiceAccount[]; down: boolean }): k8s.CoreV1Api {
  const fail = (): Promise<never> => Promise.reject(new Error('connection refused'));
  return {
    listSecretForAllNamespaces: () => (world.down ? fail() : Promise.resolve({ items: world.secrets })),
    listServiceAccountForAllNamespaces: () => (world.down ? fail() : Promise.resolve({ items: world.serviceAccounts })),
  } as unknown as k8s.CoreV1Api;
}

describe('Sampler', () => {
  const expectations: Expectations = {
    targets: [{ namespace: 'a', secret: 'ecr-login', hosts: [east] }],
    ours: [{ namespace: 'a', serviceAccount: 'default', names: ['ecr-login'] }],
    theirs: [{ namespace: 'a', serviceAccount: 'builder', names: ['dockerhub'] }],
    decoySecrets: [{ namespace: 'a', name: 'decoy' }],
    decoyServiceAccounts: [{ namespace: 'q', name: 'builder' }],
  };
  const decoy: k8s.V1Secret = { metadata: { name: 'decoy', namespace: 'a', resourceVersion: '7' }, type: 'Opaque' };
  const sa = (namespace: string, name: string, entries: string[], rv = '1'): k8s.V1ServiceAccount => ({
    metadata: { name, namespace, resourceVersion: rv },
    imagePullSecrets: entries.map((entry) => ({ name: entry })),
  });

  async function sampler(world: Parameters<typeof fakeCore>[0]): Promise<Sampler> {
    const s = new Sampler({ core: fakeCore(world), expectations, timing: { marginMs: 30_000, graceMs: 3_000 } });
    await s.start();
    await s.stop();
    return s;
  }

  it('a healthy world is covered and converged, with no violation', async () => {
    const world = {
      secrets: [managedSecret('a', Date.now() + 60_000), decoy],
      serviceAccounts: [sa('a', 'default', ['ecr-login']), sa('a', 'builder', ['dockerhub', 'ecr-login']), sa('q', 'builder', ['x'])],
      down: false,
    };
    const s = await sampler(world);
    const sample = await s.sampleOnce();
    assert.equal(sample.valid, 1);
    assert.ok(sample.converged);
    assert.deepEqual(s.violations, []);
  });

  it('sees a touched decoy, a lost entry, a changed ServiceAccount and a recreated Secret, once each', async () => {
    const world = {
      secrets: [managedSecret('a', Date.now() + 60_000), decoy],
      serviceAccounts: [sa('a', 'default', ['ecr-login']), sa('a', 'builder', ['dockerhub']), sa('q', 'builder', ['x'])],
      down: false,
    };
    const s = await sampler(world);
    await s.sampleOnce();
    world.secrets = [managedSecret('a', Date.now() + 60_000, { uid: 'uid-2' }), { ...decoy, metadata: { ...decoy.metadata, resourceVersion: '8' } }];
    world.serviceAccounts = [sa('a', 'default', ['ecr-login']), sa('a', 'builder', ['ecr-login']), sa('q', 'builder', ['x'], '2')];
    await s.sampleOnce();
    await s.sampleOnce();
    assert.deepEqual(s.violations.map((v) => v.kind).sort(), ['decoy-secret', 'decoy-service-account', 'pull-secret-lost', 'secret-recreated']);
  });

  it('while the apiserver cannot be read, judges the last state read against the clock, and does not call it converged', async () => {
    const world = {
      secrets: [managedSecret('a', Date.now() + 60_000), decoy],
      serviceAccounts: [sa('a', 'default', ['ecr-login']), sa('a', 'builder', ['dockerhub']), sa('q', 'builder', ['x'])],
      down: false,
    };
    const s = await sampler(world);
    world.secrets = [managedSecret('a', Date.now() - 1), decoy];
    world.down = true;
    const stale = await s.sampleOnce();
    assert.ok(stale.stale);
    assert.equal(stale.valid, 1, 'the last state read still holds a valid token');
    assert.equal(stale.converged, false);
    world.down = false;
    const fresh = await s.sampleOnce();
    assert.equal(fresh.valid, 0);
    assert.match(fresh.invalid[0] ?? '', /a\/ecr-login: expired/);
    assert.equal(s.coverage(0, Number.POSITIVE_INFINITY).ratio < 1, true);
  });

  it('a Secret past its refresh time is valid but not converged', async () => {
    const world = {
      secrets: [managedSecret('a', Date.now() + 20_000), decoy],
      serviceAccounts: [sa('a', 'default', ['ecr-login']), sa('a', 'builder', ['dockerhub']), sa('q', 'builder', ['x'])],
      down: false,
    };
    const s = await sampler(world);
    const sample = await s.sampleOnce();
    assert.equal(sample.valid, 1);
    assert.equal(sample.converged, false);
  });
});
