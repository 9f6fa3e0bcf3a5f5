// The token broker with a fake AWS and a fake clock: sharing, collapsing, reuse until due, clamping,
// retries only for transient errors, and failures remembered.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiException } from '@kubernetes/client-node';
import type { ApiEndpoint, AssumeRoleInput, AwsApi, AwsCredentials, EcrEndpoint, EcrToken, WebIdentityInput } from '../../src/aws/api.ts';
import { TokenBroker, TokenError, type TokenIdentity } from '../../src/broker.ts';
import { defaultSettings, type Settings } from '../../src/config/settings.ts';
import { FakeClock } from '../support/fake-clock.ts';

const hour = 3_600_000;

class FakeAws implements AwsApi {
  readonly calls: { api: string; service: string; region: string; fips: boolean; dualStack: boolean; roleArn?: string; sessionName?: string; key?: string }[] =
    [];
  /** Errors thrown by the next GetAuthorizationToken calls, in order. */
  readonly failures: Error[] = [];
  lifetimeMs = 12 * hour;
  expiresAt: (now: number) => number | undefined = (now) => now + this.lifetimeMs;
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  readonly clock: FakeClock;

  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  /** Holds GetAuthorizationToken answers until release(). */
  hold(): void {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  release(): void {
    this.#open?.();
    this.#gate = undefined;
  }

  /** The lifetime of ECR Public's tokens, when it differs. */
  publicLifetimeMs: number | undefined;

  async getAuthorizationToken(endpoint: EcrEndpoint, credentials?: AwsCredentials): Promise<EcrToken> {
    this.calls.push({ api: 'GetAuthorizationToken', ...where(endpoint.service, endpoint), ...(credentials ? { key: credentials.accessKeyId } : {}) });
    const password = `pw-${this.calls.length}`;
    if (this.#gate) await this.#gate;
    const failure = this.failures.shift();
    if (failure) throw failure;
    const lifetime = endpoint.service === 'ecr-public' ? this.publicLifetimeMs : undefined;
    const expiresAt = lifetime === undefined ? this.expiresAt(this.clock.now()) : this.clock.now() + lifetime;
    return { username: 'AWS', password, expiresAt };
  }

  assumeRole(input: AssumeRoleInput): Promise<AwsCredentials> {
    this.calls.push({ api: 'AssumeRole', ...where('sts', input.endpoint), roleArn: input.roleArn, sessionName: input.sessionName });
    return Promise.resolve({
      accessKeyId: `ASIA${input.sessionName}`,
      secretAccessKey: 'x',
      sessionToken: 'y',
      expiration: new Date(this.clock.now() + hour),
    });
  }

  assumeRoleWithWebIdentity(input: WebIdentityInput): Promise<AwsCredentials> {
    this.calls.push({ api: 'AssumeRoleWithWebIdentity', ...where('sts', input.endpoint), roleArn: input.roleArn, sessionName: input.sessionName });
    return Promise.resolve({ accessKeyId: 'ASIAWEB', secretAccessKey: 'x', sessionToken: 'y', expiration: new Date(this.clock.now() + hour) });
  }

  getCallerIdentity(): Promise<{ arn: string; account: string }> {
    return Promise.resolve({ arn: 'arn:aws:iam::111122223333:user/test', account: '111122223333' });
  }

  count(api = 'GetAuthorizationToken'): number {
    return this.calls.filter((call) => call.api === api).length;
  }
}

function where(service: string, endpoint: ApiEndpoint): { service: string; region: string; fips: boolean; dualStack: boolean } {
  return { service, region: endpoint.region, fips: endpoint.fips, dualStack: endpoint.dualStack };
}

/** ECR in a region, at its plain endpoint. */
function ecr(region: string, variant: Partial<Pick<EcrEndpoint, 'fips' | 'dualStack'>> = {}): EcrEndpoint {
  return { service: 'ecr', region, fips: false, dualStack: false, ...variant };
}

const ecrPublic: EcrEndpoint = { service: 'ecr-public', region: 'us-east-1', fips: false, dualStack: false };

function awsError(name: string, status: number): Error {
  return Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status } });
}

function setup(settings: Partial<Settings['refresh']> = {}): { clock: FakeClock; aws: FakeAws; broker: TokenBroker; minted: string[] } {
  const clock = new FakeClock();
  const aws = new FakeAws(clock);
  const minted: string[] = [];
  const full: Settings = { ...defaultSettings, refresh: { ...defaultSettings.refresh, jitter: 0, ...settings } };
  const broker = new TokenBroker({
    aws,
    clock,
    settings: () => full,
    serviceAccountTokens: {
      mint: (ns, sa, audience, seconds) => {
        minted.push(`${ns}/${sa} ${audience} ${seconds}`);
        return Promise.resolve('eyJ.token');
      },
    },
    retries: 2,
    retryMinDelayMs: 1,
    retryMaxDelayMs: 2,
  });
  return { clock, aws, broker, minted };
}

const controller: TokenIdentity = { mode: 'controller' };

describe('the token broker', () => {
  it('shares one token among every caller of the same identity and region', async () => {
    const { aws, broker } = setup();
    const first = await broker.token(controller, ecr('us-east-1'));
    for (let i = 0; i < 49; i++) assert.equal((await broker.token(controller, ecr('us-east-1'))).password, first.password);
    assert.equal(aws.count(), 1);
  });

  it('collapses concurrent requests for the same key into one call', async () => {
    const { aws, broker } = setup();
    aws.hold();
    const pending = Array.from({ length: 20 }, () => broker.token(controller, ecr('eu-west-1')));
    await new Promise((resolve) => setImmediate(resolve));
    aws.release();
    const tokens = await Promise.all(pending);
    assert.equal(new Set(tokens.map((t) => t.password)).size, 1);
    assert.equal(aws.count(), 1);
  });

  it('keeps one token per region and per identity', async () => {
    const { aws, broker } = setup();
    await broker.token(controller, ecr('us-east-1'));
    await broker.token(controller, ecr('eu-west-1'));
    await broker.token({ mode: 'assume-role', roleArn: 'arn:aws:iam::111122223333:role/a', sessionName: 'ecr-login.ns1' }, ecr('us-east-1'));
    await broker.token({ mode: 'assume-role', roleArn: 'arn:aws:iam::111122223333:role/b', sessionName: 'ecr-login.ns1' }, ecr('us-east-1'));
    assert.equal(aws.count(), 4);
    assert.equal(broker.size, 4);
  });

  it('reuses a token until it is due (half of its lifetime by default), then fetches a new one', async () => {
    const { clock, aws, broker } = setup();
    const first = await broker.token(controller, ecr('us-east-1'));
    clock.advance(6 * hour - 1_000);
    assert.equal((await broker.token(controller, ecr('us-east-1'))).password, first.password);
    clock.advance(2_000);
    assert.notEqual((await broker.token(controller, ecr('us-east-1'))).password, first.password);
    assert.equal(aws.count(), 2);
  });

  it('hands out a cached token only if the caller finds it fresh enough', async () => {
    const { clock, aws, broker } = setup();
    const first = await broker.token(controller, ecr('us-east-1'));
    clock.advance(2 * hour);
    const again = await broker.token(controller, ecr('us-east-1'), (token) => token.issuedAt > first.issuedAt);
    assert.notEqual(again.password, first.password);
    assert.equal(aws.count(), 2);
  });

  for (const [name, expiresAt] of [
    ['already expired (moto: 2015)', () => Date.UTC(2015, 0, 1)],
    ['missing', () => undefined],
    ['before it was issued', (now: number) => now - 1],
  ] as const) {
    it(`never asks more often than minInterval when the expiry is ${name}`, async () => {
      const { clock, aws, broker } = setup({ minInterval: 60_000 });
      aws.expiresAt = expiresAt;
      for (let i = 0; i < 600; i++) {
        await broker.token(controller, ecr('us-east-1'), () => false);
        clock.advance(1_000);
      }
      assert.ok(aws.count() <= 11, `${aws.count()} calls in 10 minutes`);
      assert.ok(aws.count() >= 9, 'but it does keep refreshing');
    });
  }

  it('retries throttling and 5xx with p-retry, then succeeds', async () => {
    const { aws, broker } = setup();
    aws.failures.push(awsError('ThrottlingException', 400), awsError('ServiceUnavailableException', 503));
    const token = await broker.token(controller, ecr('us-east-1'));
    assert.ok(token.password);
    assert.equal(aws.count(), 3);
  });

  it('does not retry AccessDenied, and remembers the failure for minInterval', async () => {
    const { clock, aws, broker } = setup({ minInterval: 60_000 });
    aws.failures.push(awsError('AccessDeniedException', 400));
    const failed = await broker.token(controller, ecr('us-east-1')).catch((error: unknown) => error);
    assert.ok(failed instanceof TokenError);
    assert.equal(failed.kind, 'denied');
    assert.equal(failed.api, 'GetAuthorizationToken');
    assert.match(failed.message, /AccessDeniedException/);
    assert.equal(aws.count(), 1, 'not retried');
    for (let i = 0; i < 50; i++) await assert.rejects(broker.token(controller, ecr('us-east-1')), TokenError);
    assert.equal(aws.count(), 1, 'fifty more callers within minInterval: no call');
    clock.advance(60_001);
    assert.ok((await broker.token(controller, ecr('us-east-1'))).password, 'after minInterval it tries again');
    assert.equal(aws.count(), 2);
  });

  it('gives up on a transient error after its retries, as a transient TokenError', async () => {
    const { aws, broker } = setup();
    aws.failures.push(awsError('ThrottlingException', 400), awsError('ThrottlingException', 400), awsError('ThrottlingException', 400));
    const failed = await broker.token(controller, ecr('us-east-1')).catch((error: unknown) => error);
    assert.ok(failed instanceof TokenError);
    assert.equal(failed.kind, 'transient');
    assert.equal(aws.count(), 3, 'one call and two retries');
  });

  it('assumes a role once per session and region, chaining its credentials into ECR', async () => {
    const { aws, broker } = setup();
    const role: TokenIdentity = { mode: 'assume-role', roleArn: 'arn:aws:iam::111122223333:role/pull', sessionName: 'ecr-login.team-a' };
    await broker.token(role, ecr('us-east-1'));
    await broker.token(role, ecr('us-east-1'));
    assert.equal(aws.count('AssumeRole'), 1);
    assert.deepEqual(
      aws.calls.filter((c) => c.api === 'GetAuthorizationToken').map((c) => c.key),
      ['ASIAecr-login.team-a'],
    );
  });

  it('mints a ServiceAccount token for STS (10 minutes) and exchanges it for the role', async () => {
    const { aws, broker, minted } = setup();
    const identity: TokenIdentity = {
      mode: 'service-account',
      roleArn: 'arn:aws:iam::111122223333:role/team-a',
      namespace: 'team-a',
      serviceAccount: 'puller',
      sessionName: 'ecr-login.team-a.puller',
    };
    await broker.token(identity, ecr('us-east-1'));
    assert.deepEqual(minted, ['team-a/puller sts.amazonaws.com 600']);
    assert.equal(aws.count('AssumeRoleWithWebIdentity'), 1);
    assert.deepEqual(aws.calls.find((c) => c.api === 'GetAuthorizationToken')?.key, 'ASIAWEB');
  });

  it('reports a failed TokenRequest as a TokenError of its own API', async () => {
    const failing = new TokenBroker({
      aws: new FakeAws(new FakeClock()),
      clock: new FakeClock(),
      settings: () => defaultSettings,
      // As client-node rejects a forbidden TokenRequest.
      serviceAccountTokens: { mint: () => Promise.reject(new ApiException(403, 'Forbidden', '{"message":"no"}', {})) },
    });
    const failed = await failing
      .token({ mode: 'service-account', roleArn: 'arn:aws:iam::1:role/x', namespace: 'n', serviceAccount: 's', sessionName: 'x' }, ecr('us-east-1'))
      .catch((error: unknown) => error);
    assert.ok(failed instanceof TokenError);
    assert.equal(failed.api, 'TokenRequest');
    assert.equal(failed.kind, 'denied');
    assert.match(failed.message, /ServiceAccount n\/s: HTTP 403: no/);
  });
});

describe('the token broker with ECR Public, FIPS and dual-stack endpoints', () => {
  const role: TokenIdentity = { mode: 'assume-role', roleArn: 'arn:aws:iam::111122223333:role/pull', sessionName: 'ecr-login.team-a' };

  it('keeps ECR Public as one more token key beside ECR in us-east-1, shared by every caller', async () => {
    const { aws, broker } = setup();
    const east = await broker.token(controller, ecr('us-east-1'));
    const pub = await broker.token(controller, ecrPublic);
    for (let i = 0; i < 49; i++) assert.equal((await broker.token(controller, ecrPublic)).password, pub.password);
    assert.notEqual(pub.password, east.password);
    assert.deepEqual(
      aws.calls.map((c) => [c.service, c.region]),
      [
        ['ecr', 'us-east-1'],
        ['ecr-public', 'us-east-1'],
      ],
    );
    assert.equal(broker.size, 2);
  });

  it('collapses concurrent requests for ECR Public into one call per identity', async () => {
    const { aws, broker } = setup();
    aws.hold();
    const pending = [
      ...Array.from({ length: 20 }, () => broker.token(controller, ecrPublic)),
      ...Array.from({ length: 20 }, () => broker.token(role, ecrPublic)),
    ];
    await new Promise((resolve) => setImmediate(resolve));
    aws.release();
    const tokens = await Promise.all(pending);
    assert.equal(new Set(tokens.map((t) => t.password)).size, 2, 'one token per identity');
    assert.equal(aws.count(), 2);
  });

  it("refreshes ECR Public's token from its own expiry, not ECR's", async () => {
    const { clock, aws, broker } = setup();
    aws.publicLifetimeMs = 2 * hour;
    const east = await broker.token(controller, ecr('us-east-1'));
    const pub = await broker.token(controller, ecrPublic);
    clock.advance(hour + 1_000);
    assert.notEqual((await broker.token(controller, ecrPublic)).password, pub.password, 'due after half its 2 hours');
    assert.equal((await broker.token(controller, ecr('us-east-1'))).password, east.password, 'the 12-hour token is not due yet');
    assert.equal(aws.calls.filter((c) => c.service === 'ecr-public').length, 2);
  });

  it('never asks ECR Public more often than minInterval when its expiry is already past', async () => {
    const { clock, aws, broker } = setup({ minInterval: 60_000 });
    aws.expiresAt = () => Date.UTC(2015, 0, 1);
    for (let i = 0; i < 600; i++) {
      await broker.token(controller, ecrPublic, () => false);
      clock.advance(1_000);
    }
    assert.ok(aws.count() <= 11 && aws.count() >= 9, `${aws.count()} calls in 10 minutes`);
  });

  it('names a failure of ECR Public by its IAM action, and does not retry a denial', async () => {
    const { aws, broker } = setup();
    aws.failures.push(awsError('AccessDeniedException', 400));
    const failed = await broker.token(controller, ecrPublic).catch((error: unknown) => error);
    assert.ok(failed instanceof TokenError);
    assert.equal(failed.api, 'ecr-public:GetAuthorizationToken');
    assert.equal(failed.kind, 'denied');
    assert.equal(aws.count(), 1);
  });

  it('assumes a role once for ECR in us-east-1 and ECR Public: one STS session serves both', async () => {
    const { aws, broker } = setup();
    await broker.token(role, ecr('us-east-1'));
    await broker.token(role, ecrPublic);
    assert.deepEqual(
      aws.calls.map((c) => [c.api, c.service, c.region, c.key ?? '']),
      [
        ['AssumeRole', 'sts', 'us-east-1', ''],
        ['GetAuthorizationToken', 'ecr', 'us-east-1', 'ASIAecr-login.team-a'],
        ['GetAuthorizationToken', 'ecr-public', 'us-east-1', 'ASIAecr-login.team-a'],
      ],
    );
    assert.equal(broker.cachedCredentials, 1);
  });

  it('keeps FIPS and dual-stack endpoints apart from the plain one, with STS at the same kind of endpoint', async () => {
    const { aws, broker } = setup();
    await broker.token(role, ecr('us-gov-west-1'));
    await broker.token(role, ecr('us-gov-west-1', { fips: true }));
    await broker.token(role, ecr('us-gov-west-1', { dualStack: true }));
    await broker.token(role, ecr('us-gov-west-1', { fips: true }));
    assert.deepEqual(
      aws.calls.map((c) => [c.api, c.service, c.fips, c.dualStack]),
      [
        ['AssumeRole', 'sts', false, false],
        ['GetAuthorizationToken', 'ecr', false, false],
        ['AssumeRole', 'sts', true, false],
        ['GetAuthorizationToken', 'ecr', true, false],
        ['AssumeRole', 'sts', false, true],
        ['GetAuthorizationToken', 'ecr', false, true],
      ],
    );
    assert.equal(broker.size, 3);
  });

  it('drops a session once no token it served is used any more, and keeps it while one is', async () => {
    const { clock, broker } = setup();
    await broker.token(role, ecr('us-east-1'));
    await broker.token(role, ecrPublic);
    clock.advance(25 * hour);
    await broker.token(role, ecrPublic);
    clock.advance(2 * hour);
    broker.prune();
    assert.equal(broker.size, 1, 'the us-east-1 token, unused for 27 hours, is gone');
    assert.equal(broker.cachedCredentials, 1, 'the session still serves ECR Public');
    clock.advance(27 * hour);
    broker.prune();
    assert.equal(broker.size, 0);
    assert.equal(broker.cachedCredentials, 0);
  });
});
