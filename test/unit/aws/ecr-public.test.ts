// ECR Public's GetAuthorizationToken against our AWS test server, with the real ECRPUBLICClient: its
// own protocol (awsJson1_1, target SpencerFrontendService, signing name ecr-public, us-east-1 only),
// and the same signature checks, faults and counters as ECR.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ECRPUBLICClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr-public';
import { GetAuthorizationTokenCommand as GetPrivateAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { start } from '../../aws/server.ts';
import type { AwsTestServer, FaultSpec } from '../../aws/server.ts';
import { alice, bob, captureSigned, ecrClient, rejection, sendRaw, testClock, type Keys } from '../../aws/fixtures.ts';

function publicClient(endpoint: string, keys: Keys, region = 'us-east-1'): ECRPUBLICClient {
  const { accessKeyId, secretAccessKey, sessionToken } = keys;
  const credentials = sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
  return new ECRPUBLICClient({ endpoint, region, credentials, maxAttempts: 1 });
}

describe('ECR Public GetAuthorizationToken', () => {
  const clock = testClock();
  let aws: AwsTestServer;
  before(async () => {
    aws = await start({ tokenLifetimeSeconds: 600, now: clock.now, users: [alice, bob] });
  });
  beforeEach(() => {
    aws.faults.clear();
    aws.resetCounters();
  });
  after(() => aws.close());

  const token = async (keys: Keys = alice, region = 'us-east-1') => {
    const client = publicClient(aws.endpoint, keys, region);
    try {
      return await client.send(new GetAuthorizationTokenCommand({}));
    } finally {
      client.destroy();
    }
  };

  it('returns one AWS:<password> valid for the token lifetime, and no proxy endpoint', async () => {
    const out = await token();
    const data = out.authorizationData;
    assert.ok(data?.authorizationToken !== undefined);
    assert.match(Buffer.from(data.authorizationToken, 'base64').toString('utf8'), /^AWS:[A-Za-z0-9+/=]{1000,}$/);
    assert.deepEqual(data.expiresAt, new Date(clock.now() + 600_000));
    assert.equal('proxyEndpoint' in data, false);
  });

  it("answers on ECR Public's wire: target SpencerFrontendService, awsJson1_1, signed for ecr-public in us-east-1", async () => {
    const client = publicClient(aws.endpoint, alice);
    const signed = captureSigned(client);
    await client.send(new GetAuthorizationTokenCommand({}));
    client.destroy();
    const sent = signed();
    assert.equal(sent.headers['x-amz-target'], 'SpencerFrontendService.GetAuthorizationToken');
    assert.equal(sent.headers['content-type'], 'application/x-amz-json-1.1');
    assert.match(sent.headers['authorization'] ?? '', /Credential=[^/]+\/\d{8}\/us-east-1\/ecr-public\/aws4_request/);
    const res = await sendRaw(aws.endpoint, sent);
    assert.equal(res.status, 200);
    const body = JSON.parse(res.text) as { authorizationData: { expiresAt: unknown; proxyEndpoint?: unknown } };
    assert.equal(body.authorizationData.expiresAt, (clock.now() + 600_000) / 1000, 'expiresAt: a JSON number of epoch seconds');
  });

  it('answers an unsigned request with MissingAuthenticationTokenException in the JSON error shape', async () => {
    const res = await sendRaw(aws.endpoint, {
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'SpencerFrontendService.GetAuthorizationToken' },
      body: '{}',
    });
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.text), { __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
  });

  it('checks the signature and the key as ECR does', async () => {
    const unknown = await rejection(token({ accessKeyId: 'AKIANOBODY0000000000', secretAccessKey: 'x' }));
    assert.equal(unknown.name, 'UnrecognizedClientException');
    const forged = await rejection(token({ accessKeyId: alice.accessKeyId, secretAccessKey: 'not-the-secret' }));
    assert.equal(forged.name, 'InvalidSignatureException');
  });

  it('is served in us-east-1 only', async () => {
    const err = await rejection(token(alice, 'eu-west-1'));
    assert.equal(err.$metadata?.httpStatusCode, 400);
    assert.equal(aws.count({ service: 'ecr-public', region: 'us-east-1' }), 0);
  });

  const typed: [string, FaultSpec, string, number][] = [
    ['throttling', { api: 'GetAuthorizationToken', kind: 'throttle' }, 'ThrottlingException', 400],
    ['a 503', { api: 'GetAuthorizationToken', kind: 'unavailable' }, 'ServiceUnavailableException', 503],
    ['a 500', { api: 'GetAuthorizationToken', kind: 'internal' }, 'ServerException', 500],
    ['access denied', { api: 'GetAuthorizationToken', service: 'ecr-public', kind: 'accessDenied' }, 'AccessDeniedException', 400],
  ];
  for (const [name, spec, errorName, status] of typed) {
    it(`injects ${name} as ${errorName} (${status}), counted as such`, async () => {
      aws.faults.set({ ...spec, count: 1 });
      const err = await rejection(token());
      assert.equal(err.name, errorName);
      assert.equal(err.$metadata?.httpStatusCode, status);
      assert.ok((await token()).authorizationData?.authorizationToken, 'the fault was for one call');
      assert.equal(aws.count({ api: 'GetAuthorizationToken', service: 'ecr-public', outcome: errorName }), 1);
    });
  }

  it('names the IAM action in an access denial', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', service: 'ecr-public', kind: 'accessDenied', count: 1 });
    const err = await rejection(token());
    assert.match(err.message, /ecr-public:GetAuthorizationToken/);
  });

  it('drops the connection for a drop fault', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', service: 'ecr-public', kind: 'drop', count: 1 });
    await rejection(token());
    assert.equal(aws.count({ service: 'ecr-public', outcome: 'dropped' }), 1);
  });

  it('keeps a fault scoped to one service off the other', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', service: 'ecr', kind: 'throttle' });
    assert.ok((await token()).authorizationData?.authorizationToken);
    const ecr = ecrClient(aws.endpoint, alice, { region: 'us-east-1' });
    const err = await rejection(ecr.send(new GetPrivateAuthorizationTokenCommand({})));
    ecr.destroy();
    assert.equal(err.name, 'ThrottlingException');
  });

  it('counts calls per service beside API, caller, region and outcome', async () => {
    await token(alice);
    await token(bob);
    const ecr = ecrClient(aws.endpoint, alice, { region: 'us-east-1' });
    await ecr.send(new GetPrivateAuthorizationTokenCommand({}));
    ecr.destroy();
    const c = aws.counters();
    assert.equal(c.byApi['GetAuthorizationToken'], 3);
    assert.deepEqual(c.byService, { 'ecr-public': 2, ecr: 1 });
    assert.equal(aws.count({ api: 'GetAuthorizationToken', service: 'ecr-public', caller: bob.arn, region: 'us-east-1' }), 1);
    assert.deepEqual(
      aws.calls.map((call) => [call.service, call.caller, call.region, call.outcome]),
      [
        ['ecr-public', alice.arn, 'us-east-1', 'ok'],
        ['ecr-public', bob.arn, 'us-east-1', 'ok'],
        ['ecr', alice.arn, 'us-east-1', 'ok'],
      ],
    );
  });

  it('takes service-scoped faults over the control plane too', async () => {
    const res = await fetch(`${aws.endpoint}/_test/faults`, {
      method: 'POST',
      body: JSON.stringify({ api: 'GetAuthorizationToken', service: 'ecr-public', kind: 'throttle', count: 1 }),
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal((await rejection(token())).name, 'ThrottlingException');
    const bad = await fetch(`${aws.endpoint}/_test/faults`, { method: 'POST', body: JSON.stringify({ service: 'ecr-private', kind: 'throttle' }) });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /unknown service/);
  });
});
