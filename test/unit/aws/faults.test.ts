// Fault injection on our AWS test server, seen through the real SDK clients: typed
// exceptions with the right name and status, latency, dropped connections, and counters.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { AssumeRoleCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { Faults } from '../../aws/faults.ts';
import type { FaultSpec } from '../../aws/faults.ts';
import { start } from '../../aws/server.ts';
import type { AwsTestServer } from '../../aws/server.ts';
import { alice, bob, ecrClient, rejection, stsClient, testClock } from '../../aws/fixtures.ts';

describe('fault injection through the SDK', () => {
  const clock = testClock();
  let aws: AwsTestServer;
  before(async () => {
    aws = await start({ now: clock.now, users: [alice, bob] });
  });
  beforeEach(() => {
    aws.faults.clear();
    aws.resetCounters();
  });
  after(() => aws.close());

  const token = async (o: { region?: string; maxAttempts?: number; user?: typeof alice } = {}) => {
    const ecr = ecrClient(aws.endpoint, o.user ?? alice, o);
    try {
      return await ecr.send(new GetAuthorizationTokenCommand({}));
    } finally {
      ecr.destroy();
    }
  };
  const whoami = async () => {
    const sts = stsClient(aws.endpoint, alice);
    try {
      return await sts.send(new GetCallerIdentityCommand({}));
    } finally {
      sts.destroy();
    }
  };
  const assume = async () => {
    const sts = stsClient(aws.endpoint, alice);
    try {
      return await sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::111122223333:role/r', RoleSessionName: 'faulty' }));
    } finally {
      sts.destroy();
    }
  };

  const typed: [string, FaultSpec, () => Promise<unknown>, string, number][] = [
    ['ECR throttling', { api: 'GetAuthorizationToken', kind: 'throttle' }, () => token(), 'ThrottlingException', 400],
    ['ECR 503', { api: 'GetAuthorizationToken', kind: 'unavailable' }, () => token(), 'ServiceUnavailableException', 503],
    ['ECR 500', { api: 'GetAuthorizationToken', kind: 'internal' }, () => token(), 'ServerException', 500],
    ['ECR access denied', { api: 'GetAuthorizationToken', kind: 'accessDenied' }, () => token(), 'AccessDeniedException', 400],
    ['STS throttling', { api: 'AssumeRole', kind: 'throttle' }, assume, 'Throttling', 400],
    ['STS 500', { api: 'GetCallerIdentity', kind: 'internal' }, whoami, 'InternalFailure', 500],
    ['STS 503', { api: 'AssumeRole', kind: 'unavailable' }, assume, 'ServiceUnavailable', 503],
    ['STS access denied', { api: 'AssumeRole', kind: 'accessDenied' }, assume, 'AccessDenied', 403],
  ];
  for (const [name, spec, call, errorName, status] of typed) {
    it(`${name} surfaces as ${errorName} with HTTP ${status}, and is counted`, async () => {
      aws.faults.set({ ...spec, count: 1 });
      const err = await rejection(call());
      assert.equal(err.name, errorName);
      assert.equal(err.$metadata?.httpStatusCode, status);
      const api = spec.api ?? '*';
      assert.equal(aws.counters().byApiOutcome[`${api}:${errorName}`], 1);
      await call();
      assert.equal(aws.counters().byApiOutcome[`${api}:ok`], 1, 'the fault was used up');
    });
  }

  it('the access denied fault names the caller and action as AWS does', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', kind: 'accessDenied' });
    const err = await rejection(token());
    assert.equal(
      err.message,
      `User: ${alice.arn} is not authorized to perform: ecr:GetAuthorizationToken on resource: * ` +
        'because no identity-based policy allows the ecr:GetAuthorizationToken action',
    );
  });

  it('a fault for the next N calls lets the SDK retry through it', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', kind: 'throttle', count: 2 });
    const out = await token({ maxAttempts: 3 });
    assert.ok(out.authorizationData?.[0]);
    assert.deepEqual(aws.counters().byOutcome, { ThrottlingException: 2, ok: 1 });
  });

  it('a fault without a count lasts until cleared', async () => {
    aws.faults.set({ kind: 'unavailable' });
    for (let i = 0; i < 3; i++) assert.equal((await rejection(token())).name, 'ServiceUnavailableException');
    assert.equal((await rejection(whoami())).name, 'ServiceUnavailable', 'a fault without api hits every API');
    aws.faults.clear();
    await token();
    await whoami();
    assert.equal(aws.count({ outcome: 'ok' }), 2);
  });

  it('clearing one API leaves the others faulty', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', kind: 'throttle' });
    aws.faults.set({ api: 'GetCallerIdentity', kind: 'throttle' });
    aws.faults.clear({ api: 'GetAuthorizationToken' });
    await token();
    assert.equal((await rejection(whoami())).name, 'Throttling');
  });

  it('a fault can be scoped to one region or one caller', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', kind: 'throttle', region: 'us-east-2' });
    aws.faults.set({ api: 'GetAuthorizationToken', kind: 'internal', caller: 'arn:aws:iam::444455556666:*' });
    await token({ region: 'us-east-1' });
    assert.equal((await rejection(token({ region: 'us-east-2' }))).name, 'ThrottlingException');
    assert.equal((await rejection(token({ user: bob }))).name, 'ServerException');
    assert.deepEqual(aws.counters().byRegion, { 'us-east-1': 1, 'us-east-2': 1, 'eu-west-1': 1 });
  });

  it('the latency fault delays the answer', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', kind: 'latency', ms: 300, count: 1 });
    const t0 = performance.now();
    await token();
    // A few ms of slack: timers run on the event loop's millisecond clock.
    assert.ok(performance.now() - t0 >= 295, 'the delayed call took at least the injected latency');
  });

  it('latency combines with a failing fault', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', kind: 'latency', ms: 200 });
    aws.faults.set({ api: 'GetAuthorizationToken', kind: 'throttle', count: 1 });
    const t0 = performance.now();
    const err = await rejection(token());
    assert.ok(performance.now() - t0 >= 195);
    assert.equal(err.name, 'ThrottlingException');
  });

  it('a dropped connection surfaces as a network error, not a service error', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', kind: 'drop', count: 1 });
    const err = await rejection(token());
    assert.equal(err.$metadata?.httpStatusCode, undefined, 'no HTTP response was received');
    assert.match(`${err.name} ${(err as { code?: string }).code ?? ''} ${err.message}`, /ECONNRESET|socket hang up/);
    assert.equal(aws.count({ api: 'GetAuthorizationToken', outcome: 'dropped' }), 1);
    await token();
  });

  it('resetCounters clears the log and the counters', async () => {
    await token();
    assert.equal(aws.counters().total, 1);
    aws.resetCounters();
    assert.equal(aws.counters().total, 0);
    assert.equal(aws.calls.length, 0);
  });
});

describe('Faults.take', () => {
  const cases: [string, FaultSpec[], { delayMs: number; failure?: string }[]][] = [
    ['no fault lets calls through', [], [{ delayMs: 0 }]],
    [
      'a counted fault is used up',
      [{ kind: 'throttle', count: 2 }],
      [{ delayMs: 0, failure: 'throttle' }, { delayMs: 0, failure: 'throttle' }, { delayMs: 0 }],
    ],
    [
      'the oldest failing fault wins and only it is used up',
      [
        { kind: 'internal', count: 1 },
        { kind: 'throttle', count: 1 },
      ],
      [{ delayMs: 0, failure: 'internal' }, { delayMs: 0, failure: 'throttle' }, { delayMs: 0 }],
    ],
    [
      'latencies add up',
      [
        { kind: 'latency', ms: 10 },
        { kind: 'latency', ms: 5, count: 1 },
      ],
      [{ delayMs: 15 }, { delayMs: 10 }],
    ],
    ['a fault for another API does not apply', [{ api: 'AssumeRole', kind: 'drop' }], [{ delayMs: 0 }]],
  ];
  for (const [name, specs, expected] of cases) {
    it(name, () => {
      const faults = new Faults();
      for (const s of specs) faults.set(s);
      const got = expected.map(() => faults.take('GetAuthorizationToken', { region: 'eu-west-1' }));
      assert.deepEqual(got, expected);
    });
  }

  it('rejects malformed specs', () => {
    const faults = new Faults();
    assert.throws(() => faults.set({ kind: 'throttle', count: 0 }), /count/);
    assert.throws(() => faults.set(JSON.parse('{"kind":"explode"}') as FaultSpec), /unknown fault kind/);
    assert.throws(() => faults.set(JSON.parse('{"kind":"latency"}') as FaultSpec), /ms/);
    assert.throws(() => faults.set(JSON.parse('{"kind":"drop","api":"PutImage"}') as FaultSpec), /unknown api/);
  });
});
