// main.ts runs the AWS test server in its own process; this test process drives it only
// through the /_test/ control plane and the SDK, as benchmarks and chaos runs will.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand } from '@aws-sdk/client-sts';
import type { TestConfig } from '../../aws/config.ts';
import { spawnAwsTestServer } from '../../aws/control-client.ts';
import type { SpawnedServer } from '../../aws/control-client.ts';
import { alice, bob, ecrClient, rejection, stsClient } from '../../aws/fixtures.ts';
import { serviceAccountClaims, startOidcIssuer } from '../../aws/oidc-issuer.ts';
import type { OidcIssuer } from '../../aws/oidc-issuer.ts';

const guarded = 'arn:aws:iam::111122223333:role/guarded';

describe('main.ts and the /_test/ control plane, from another process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aws-main-'));
  let aws: SpawnedServer;
  let idp: OidcIssuer;

  before(async () => {
    const config: TestConfig = {
      users: [alice],
      roles: [{ roleArn: guarded, trustedPrincipals: [alice.arn] }],
    };
    writeFileSync(join(dir, 'trust.json'), JSON.stringify(config));
    aws = await spawnAwsTestServer(['--token-lifetime-seconds', '120', '--trust-file', join(dir, 'trust.json')]);
    idp = await startOidcIssuer();
  });
  after(async () => {
    await aws.close();
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const token = async (user = alice) => {
    const ecr = ecrClient(aws.endpoint, user);
    try {
      return await ecr.send(new GetAuthorizationTokenCommand({}));
    } finally {
      ecr.destroy();
    }
  };

  it('prints its endpoint, runs in another process, and applies the flags and the trust file', async () => {
    assert.match(aws.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(aws.pid, process.pid);
    const before = Date.now();
    const out = await token();
    const expiresAt = out.authorizationData?.[0]?.expiresAt?.getTime() ?? 0;
    assert.ok(expiresAt >= before + 120_000 - 1000 && expiresAt <= Date.now() + 120_000 + 1000);
    const trust = await fetch(`${aws.endpoint}/_test/trust`).then((r) => r.json());
    assert.deepEqual(trust, {
      default: 'allow',
      roles: [{ roleArn: guarded, trustedPrincipals: [alice.arn] }],
      issuers: [],
    });
  });

  it('GET /_test/calls returns the counters and the calls, POST /_test/reset clears them', async () => {
    await aws.control.reset();
    await token();
    const { counters, calls } = await aws.control.calls();
    assert.equal(counters.byApiOutcome['GetAuthorizationToken:ok'], 1);
    assert.deepEqual(
      calls.map((c) => [c.api, c.caller, c.region, c.outcome]),
      [['GetAuthorizationToken', alice.arn, 'eu-west-1', 'ok']],
    );
    await aws.control.reset();
    assert.equal((await aws.control.calls()).counters.total, 0);
  });

  it('POST /_test/faults injects faults that the SDK sees, DELETE clears them', async () => {
    await aws.control.reset();
    const ids = await aws.control.setFaults({ api: 'GetAuthorizationToken', kind: 'throttle' });
    assert.equal(ids.length, 1);
    assert.equal((await aws.control.listFaults())[0]?.id, ids[0]);
    assert.equal((await rejection(token())).name, 'ThrottlingException');
    await aws.control.clearFaults('GetAuthorizationToken');
    await token();
    assert.deepEqual((await aws.control.calls()).counters.byOutcome, { ThrottlingException: 1, ok: 1 });
  });

  it('rejects a malformed fault with 400', async () => {
    const res = await fetch(`${aws.endpoint}/_test/faults`, { method: 'POST', body: '{"kind":"explode"}' });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, /unknown fault kind/);
  });

  it('POST /_test/trust adds users, roles and issuers', async () => {
    const sts = stsClient(aws.endpoint, bob);
    const denied = await rejection(sts.send(new AssumeRoleCommand({ RoleArn: guarded, RoleSessionName: 'bob' })));
    assert.equal(denied.name, 'InvalidClientTokenId', 'bob is not a user yet');

    await aws.control.trust({ users: [bob] });
    const stillDenied = await rejection(sts.send(new AssumeRoleCommand({ RoleArn: guarded, RoleSessionName: 'bob' })));
    assert.equal(stillDenied.name, 'AccessDenied', 'bob is not trusted by the role');

    await aws.control.trust({ roles: [{ roleArn: guarded, trustedPrincipals: [alice.arn, bob.arn] }] });
    const ok = await sts.send(new AssumeRoleCommand({ RoleArn: guarded, RoleSessionName: 'bob' }));
    assert.equal(ok.AssumedRoleUser?.Arn, 'arn:aws:sts::111122223333:assumed-role/guarded/bob');

    const webRole = 'arn:aws:iam::111122223333:role/web';
    await aws.control.trust({
      issuers: [{ issuer: idp.issuer }],
      roles: [{ roleArn: webRole, webIdentitySubjects: ['system:serviceaccount:*:puller'] }],
    });
    const web = await sts.send(
      new AssumeRoleWithWebIdentityCommand({
        RoleArn: webRole,
        RoleSessionName: 'web',
        WebIdentityToken: idp.sign(serviceAccountClaims(idp.issuer, 'system:serviceaccount:ns1:puller', Date.now())),
      }),
    );
    sts.destroy();
    assert.equal(web.SubjectFromWebIdentityToken, 'system:serviceaccount:ns1:puller');
  });

  it('rejects an invalid trust document with 400', async () => {
    const res = await fetch(`${aws.endpoint}/_test/trust`, { method: 'POST', body: '{"default":"maybe"}' });
    assert.equal(res.status, 400);
  });
});
