// ECR GetAuthorizationToken against our AWS test server, with the real ECRClient; partitions kept apart.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { start } from '../../aws/server.ts';
import type { AwsTestServer } from '../../aws/server.ts';
import { alice, bob, captureSigned, ecrClient, rejection, sendRaw, sessionKeys, stsClient, testClock } from '../../aws/fixtures.ts';

describe('ECR GetAuthorizationToken', () => {
  const clock = testClock();
  let aws: AwsTestServer;
  before(async () => {
    aws = await start({ tokenLifetimeSeconds: 600, now: clock.now, users: [alice, bob] });
  });
  after(() => aws.close());

  it('returns AWS:<password> valid for the token lifetime from the injected clock', async () => {
    const ecr = ecrClient(aws.endpoint, alice, { region: 'eu-west-1' });
    const out = await ecr.send(new GetAuthorizationTokenCommand({}));
    ecr.destroy();
    const data = out.authorizationData?.[0];
    assert.ok(data?.authorizationToken !== undefined);
    const decoded = Buffer.from(data.authorizationToken, 'base64').toString('utf8');
    assert.match(decoded, /^AWS:[A-Za-z0-9+/=]{1000,}$/);
    assert.deepEqual(data.expiresAt, new Date(clock.now() + 600_000));
    assert.equal(data.proxyEndpoint, 'https://111122223333.dkr.ecr.eu-west-1.amazonaws.com');
  });

  it('answers on the awsJson1_1 wire: expiresAt is a JSON number of epoch seconds', async () => {
    const ecr = ecrClient(aws.endpoint, alice, { region: 'eu-west-1' });
    const signed = captureSigned(ecr);
    await ecr.send(new GetAuthorizationTokenCommand({}));
    ecr.destroy();
    const req = signed();
    assert.equal(req.headers['x-amz-target'], 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken');
    assert.equal(req.headers['content-type'], 'application/x-amz-json-1.1');
    const res = await sendRaw(aws.endpoint, req);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-amz-json-1.1');
    assert.match(res.headers.get('x-amzn-requestid') ?? '', /^[0-9a-f-]{36}$/);
    const body = JSON.parse(res.text) as { authorizationData: { expiresAt: unknown }[] };
    assert.equal(body.authorizationData[0]?.expiresAt, (clock.now() + 600_000) / 1000);
  });

  it('answers an unsigned request with MissingAuthenticationTokenException in the JSON error shape', async () => {
    const res = await sendRaw(aws.endpoint, {
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken',
      },
      body: '{}',
    });
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.text), {
      __type: 'MissingAuthenticationTokenException',
      message: 'Missing Authentication Token',
    });
  });

  it('gives a different password on every call', async () => {
    const ecr = ecrClient(aws.endpoint, alice);
    const a = await ecr.send(new GetAuthorizationTokenCommand({}));
    const b = await ecr.send(new GetAuthorizationTokenCommand({}));
    ecr.destroy();
    assert.notEqual(a.authorizationData?.[0]?.authorizationToken, b.authorizationData?.[0]?.authorizationToken);
  });

  it('takes the region from the SigV4 credential scope and the account from the caller', async () => {
    const ecr = ecrClient(aws.endpoint, bob, { region: 'ap-southeast-2' });
    const out = await ecr.send(new GetAuthorizationTokenCommand({}));
    ecr.destroy();
    assert.equal(out.authorizationData?.[0]?.proxyEndpoint, 'https://444455556666.dkr.ecr.ap-southeast-2.amazonaws.com');
  });

  it('counts calls per API, caller, region and outcome', async () => {
    aws.resetCounters();
    const east = ecrClient(aws.endpoint, alice, { region: 'us-east-1' });
    const west = ecrClient(aws.endpoint, bob, { region: 'us-west-2' });
    await east.send(new GetAuthorizationTokenCommand({}));
    await east.send(new GetAuthorizationTokenCommand({}));
    await west.send(new GetAuthorizationTokenCommand({}));
    east.destroy();
    west.destroy();
    const c = aws.counters();
    assert.equal(c.byApi['GetAuthorizationToken'], 3);
    assert.equal(c.byCaller[alice.arn], 2);
    assert.equal(c.byCaller[bob.arn], 1);
    assert.deepEqual(c.byRegion, { 'us-east-1': 2, 'us-west-2': 1 });
    assert.deepEqual(c.byOutcome, { ok: 3 });
    assert.equal(aws.count({ api: 'GetAuthorizationToken', caller: bob.arn, region: 'us-west-2' }), 1);
    assert.deepEqual(
      aws.calls.map((call) => [call.api, call.caller, call.region, call.outcome, call.at]),
      [
        ['GetAuthorizationToken', alice.arn, 'us-east-1', 'ok', clock.now()],
        ['GetAuthorizationToken', alice.arn, 'us-east-1', 'ok', clock.now()],
        ['GetAuthorizationToken', bob.arn, 'us-west-2', 'ok', clock.now()],
      ],
    );
  });

  it('rejects an unknown access key with UnrecognizedClientException', async () => {
    const ecr = ecrClient(aws.endpoint, { accessKeyId: 'AKIANOBODY0000000000', secretAccessKey: 'x' });
    const err = await rejection(ecr.send(new GetAuthorizationTokenCommand({})));
    ecr.destroy();
    assert.equal(err.name, 'UnrecognizedClientException');
    assert.equal(err.$metadata?.httpStatusCode, 400);
    assert.equal(err.message, 'The security token included in the request is invalid.');
  });

  it('rejects a request signed with the wrong secret key with InvalidSignatureException', async () => {
    const ecr = ecrClient(aws.endpoint, { accessKeyId: alice.accessKeyId, secretAccessKey: 'not-the-secret' });
    const err = await rejection(ecr.send(new GetAuthorizationTokenCommand({})));
    ecr.destroy();
    assert.equal(err.name, 'InvalidSignatureException');
    assert.equal(err.$metadata?.httpStatusCode, 400);
  });

  it('rejects expired session credentials with ExpiredTokenException, and counts it', async () => {
    const sts = stsClient(aws.endpoint, alice);
    const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::111122223333:role/puller', RoleSessionName: 'short', DurationSeconds: 900 }));
    sts.destroy();
    const ecr = ecrClient(aws.endpoint, sessionKeys(assumed.Credentials));
    const ok = await ecr.send(new GetAuthorizationTokenCommand({}));
    assert.equal(ok.authorizationData?.[0]?.proxyEndpoint, 'https://111122223333.dkr.ecr.eu-west-1.amazonaws.com');
    aws.resetCounters();
    clock.advance(900_000);
    const err = await rejection(ecr.send(new GetAuthorizationTokenCommand({})));
    ecr.destroy();
    assert.equal(err.name, 'ExpiredTokenException');
    assert.equal(err.$metadata?.httpStatusCode, 400);
    assert.equal(aws.count({ api: 'GetAuthorizationToken', outcome: 'ExpiredTokenException' }), 1);
  });

  it('keeps partitions apart: keys work only in their partition, STS assumes only its own roles', async () => {
    const china = { accessKeyId: 'AKIACHINAEXAMPLE0001', secretAccessKey: 'china-secret', arn: 'arn:aws-cn:iam::111122223333:user/ci' };
    aws.addUser(china);
    const outside = ecrClient(aws.endpoint, alice, { region: 'cn-north-1' });
    const refused = await rejection(outside.send(new GetAuthorizationTokenCommand({})));
    outside.destroy();
    assert.equal(refused.name, 'UnrecognizedClientException');

    const inside = ecrClient(aws.endpoint, china, { region: 'cn-north-1' });
    const ok = await inside.send(new GetAuthorizationTokenCommand({}));
    inside.destroy();
    assert.equal(ok.authorizationData?.[0]?.proxyEndpoint, 'https://111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn');

    const sts = stsClient(aws.endpoint, china, { region: 'cn-north-1' });
    const wrong = await rejection(sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::111122223333:role/puller', RoleSessionName: 'cn' })));
    const right = await sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws-cn:iam::111122223333:role/puller', RoleSessionName: 'cn' }));
    sts.destroy();
    assert.equal(wrong.name, 'AccessDenied');
    assert.equal(right.AssumedRoleUser?.Arn, 'arn:aws-cn:sts::111122223333:assumed-role/puller/cn');
  });
});
