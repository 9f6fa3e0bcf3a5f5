// STS AssumeRole and GetCallerIdentity against our AWS test server, with the real STSClient.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { AssumeRoleCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import type { AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import { start } from '../../aws/server.ts';
import type { AwsTestServer } from '../../aws/server.ts';
import { alice, bob, captureSigned, rejection, sendRaw, sessionKeys, stsClient, testClock } from '../../aws/fixtures.ts';
import type { Keys } from '../../aws/fixtures.ts';

const puller = 'arn:aws:iam::777788889999:role/ecr/puller';
const crossAccount = 'arn:aws:iam::123456789012:role/registry-reader';

describe('STS AssumeRole and GetCallerIdentity', () => {
  const clock = testClock();
  let aws: AwsTestServer;
  before(async () => {
    aws = await start({ now: clock.now, users: [alice, bob] });
  });
  beforeEach(() => {
    aws.policies.clear();
    aws.resetCounters();
  });
  after(() => aws.close());

  async function assume(keys: Keys, input: AssumeRoleCommandInput) {
    const sts = stsClient(aws.endpoint, keys);
    try {
      return await sts.send(new AssumeRoleCommand(input));
    } finally {
      sts.destroy();
    }
  }
  async function whoami(keys: Keys) {
    const sts = stsClient(aws.endpoint, keys);
    try {
      return await sts.send(new GetCallerIdentityCommand({}));
    } finally {
      sts.destroy();
    }
  }

  it('GetCallerIdentity returns a static user', async () => {
    const id = await whoami(alice);
    assert.equal(id.Arn, alice.arn);
    assert.equal(id.Account, '111122223333');
    assert.match(id.UserId ?? '', /^AIDA[A-Z2-7]{17}$/);
  });

  it('AssumeRole issues credentials that GetCallerIdentity attributes to the assumed role', async () => {
    const out = await assume(alice, { RoleArn: puller, RoleSessionName: 'kube-ecrlogin' });
    assert.equal(out.AssumedRoleUser?.Arn, 'arn:aws:sts::777788889999:assumed-role/puller/kube-ecrlogin');
    assert.match(out.AssumedRoleUser.AssumedRoleId ?? '', /^AROA[A-Z2-7]{17}:kube-ecrlogin$/);
    assert.match(out.Credentials?.AccessKeyId ?? '', /^ASIA[A-Z2-7]{16}$/);
    assert.deepEqual(out.Credentials?.Expiration, new Date(clock.now() + 3600_000));
    const id = await whoami(sessionKeys(out.Credentials));
    assert.equal(id.Arn, 'arn:aws:sts::777788889999:assumed-role/puller/kube-ecrlogin');
    assert.equal(id.Account, '777788889999');
    assert.equal(id.UserId, out.AssumedRoleUser.AssumedRoleId);
    assert.deepEqual(
      aws.calls.map((c) => [c.api, c.caller, c.roleArn, c.sessionName, c.outcome]),
      [
        ['AssumeRole', alice.arn, puller, 'kube-ecrlogin', 'ok'],
        ['GetCallerIdentity', 'arn:aws:sts::777788889999:assumed-role/puller/kube-ecrlogin', undefined, undefined, 'ok'],
      ],
    );
  });

  it('chains roles: credentials from one AssumeRole assume another', async () => {
    const first = await assume(alice, { RoleArn: puller, RoleSessionName: 'hop-1' });
    const second = await assume(sessionKeys(first.Credentials), { RoleArn: crossAccount, RoleSessionName: 'hop-2' });
    const id = await whoami(sessionKeys(second.Credentials));
    assert.equal(id.Arn, 'arn:aws:sts::123456789012:assumed-role/registry-reader/hop-2');
    assert.equal(aws.count({ api: 'AssumeRole', caller: 'arn:aws:sts::777788889999:assumed-role/puller/hop-1' }), 1);
  });

  it('limits a chained session to one hour, as STS does', async () => {
    aws.setRole({ roleArn: crossAccount, maxSessionDurationSeconds: 43200 });
    const first = await assume(alice, { RoleArn: puller, RoleSessionName: 'hop-1' });
    const err = await rejection(assume(sessionKeys(first.Credentials), { RoleArn: crossAccount, RoleSessionName: 'hop-2', DurationSeconds: 7200 }));
    assert.equal(err.name, 'ValidationError');
    assert.match(err.message, /1 hour session limit for roles assumed by role chaining/);
    const direct = await assume(alice, { RoleArn: crossAccount, RoleSessionName: 'direct', DurationSeconds: 7200 });
    assert.deepEqual(direct.Credentials?.Expiration, new Date(clock.now() + 7200_000));
  });

  it('denies with AccessDenied (403) when the trust table does not allow the caller', async () => {
    aws.setRole({ roleArn: puller, trustedPrincipals: ['arn:aws:iam::111122223333:user/*'] });
    const ok = await assume(alice, { RoleArn: puller, RoleSessionName: 'allowed' });
    assert.ok(ok.Credentials);
    const err = await rejection(assume(bob, { RoleArn: puller, RoleSessionName: 'denied' }));
    assert.equal(err.name, 'AccessDenied');
    assert.equal(err.$metadata?.httpStatusCode, 403);
    assert.equal(err.message, `User: ${bob.arn} is not authorized to perform: sts:AssumeRole on resource: ${puller}`);
    assert.equal(aws.count({ api: 'AssumeRole', outcome: 'AccessDenied', caller: bob.arn }), 1);
  });

  it('denies roles outside the table when the default is deny', async () => {
    aws.setDefaultPolicy('deny');
    const err = await rejection(assume(alice, { RoleArn: puller, RoleSessionName: 'nope' }));
    assert.equal(err.name, 'AccessDenied');
  });

  it('requires the configured ExternalId', async () => {
    aws.setRole({ roleArn: crossAccount, externalId: 'tenant-42' });
    for (const ExternalId of [undefined, 'tenant-43']) {
      const input: AssumeRoleCommandInput = { RoleArn: crossAccount, RoleSessionName: 'x-acct' };
      if (ExternalId !== undefined) input.ExternalId = ExternalId;
      const err = await rejection(assume(alice, input));
      assert.equal(err.name, 'AccessDenied', `ExternalId ${String(ExternalId)}`);
    }
    const ok = await assume(alice, { RoleArn: crossAccount, RoleSessionName: 'x-acct', ExternalId: 'tenant-42' });
    assert.ok(ok.Credentials);
  });

  const invalidInputs: [string, Partial<AssumeRoleCommandInput>, RegExp][] = [
    ['a one-character session name', { RoleSessionName: 'a' }, /roleSessionName.*length greater than or equal to 2/],
    ['a 65-character session name', { RoleSessionName: 'x'.repeat(65) }, /length less than or equal to 64/],
    ['a session name with a space', { RoleSessionName: 'bad name' }, /regular expression pattern/],
    ['a duration under 15 minutes', { DurationSeconds: 899 }, /value greater than or equal to 900/],
    ['a duration over the role maximum', { DurationSeconds: 3601 }, /exceeds the MaxSessionDuration/],
    ['a user ARN as the role', { RoleArn: 'arn:aws:iam::111122223333:user/alice' }, /Request ARN is invalid/],
  ];
  for (const [name, override, message] of invalidInputs) {
    it(`rejects ${name} with ValidationError`, async () => {
      const err = await rejection(assume(alice, { RoleArn: puller, RoleSessionName: 'valid', ...override }));
      assert.equal(err.name, 'ValidationError');
      assert.equal(err.$metadata?.httpStatusCode, 400);
      assert.match(err.message, message);
    });
  }

  it('rejects an unknown access key with InvalidClientTokenId (403)', async () => {
    const err = await rejection(whoami({ accessKeyId: 'AKIANOBODY0000000000', secretAccessKey: 'x' }));
    assert.equal(err.name, 'InvalidClientTokenId');
    assert.equal(err.$metadata?.httpStatusCode, 403);
  });

  it('rejects a session token that does not belong to the key', async () => {
    const out = await assume(alice, { RoleArn: puller, RoleSessionName: 'tamper' });
    const keys = sessionKeys(out.Credentials);
    const err = await rejection(whoami({ ...keys, sessionToken: 'IQoJb3JpZ2luX2VjForged' }));
    assert.equal(err.name, 'InvalidClientTokenId');
  });

  it('rejects expired session credentials with ExpiredToken, as STS words it', async () => {
    const out = await assume(alice, { RoleArn: puller, RoleSessionName: 'expiring', DurationSeconds: 900 });
    clock.advance(900_000);
    const err = await rejection(whoami(sessionKeys(out.Credentials)));
    assert.equal(err.name, 'ExpiredToken');
    assert.equal(err.$metadata?.httpStatusCode, 403);
  });

  it('speaks awsQuery: form-encoded Action/Version in, STS XML out', async () => {
    const sts = stsClient(aws.endpoint, alice);
    const signed = captureSigned(sts);
    await sts.send(new GetCallerIdentityCommand({}));
    sts.destroy();
    const req = signed();
    assert.equal(req.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(req.body, 'Action=GetCallerIdentity&Version=2011-06-15');
    const res = await sendRaw(aws.endpoint, req);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/xml');
    assert.match(
      res.text,
      new RegExp(
        '^<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\\s*' +
          '<GetCallerIdentityResult><Arn>arn:aws:iam::111122223333:user/alice</Arn><UserId>AIDA\\w+</UserId>' +
          '<Account>111122223333</Account></GetCallerIdentityResult>\\s*' +
          '<ResponseMetadata><RequestId>[0-9a-f-]{36}</RequestId></ResponseMetadata>\\s*</GetCallerIdentityResponse>\\s*$',
      ),
    );
  });

  it('answers errors with the STS <ErrorResponse> document', async () => {
    const res = await sendRaw(aws.endpoint, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=GetCallerIdentity&Version=2011-06-15',
    });
    assert.equal(res.status, 403);
    assert.match(
      res.text,
      new RegExp(
        '^<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\\s*<Error>\\s*<Type>Sender</Type>\\s*' +
          '<Code>MissingAuthenticationToken</Code>\\s*<Message>Request is missing Authentication Token</Message>\\s*' +
          '</Error>\\s*<RequestId>[0-9a-f-]{36}</RequestId>\\s*</ErrorResponse>\\s*$',
      ),
    );
  });
});
