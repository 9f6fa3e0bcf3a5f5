// The same SDK calls against moto in server mode: a second, independent implementation of
// the AWS wire protocols to check our clients (and our test server's shapes) against.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { startMoto } from './moto.ts';
import type { Moto } from './moto.ts';
import { ecrClient, sessionKeys, stsClient } from './fixtures.ts';
import type { Keys } from './fixtures.ts';

// moto accepts any access key; it attributes unknown ones to its default account.
const anyone: Keys = { accessKeyId: 'AKIAMOTOEXAMPLE00001', secretAccessKey: 'moto-secret' };

describe('moto server', () => {
  let moto: Moto;
  before(async () => {
    moto = await startMoto();
  });
  after(() => moto.close());

  it('issues an ECR token that decodes to AWS:<password>', async () => {
    const ecr = ecrClient(moto.endpoint, anyone, { region: 'eu-central-1' });
    const out = await ecr.send(new GetAuthorizationTokenCommand({}));
    ecr.destroy();
    const data = out.authorizationData?.[0];
    assert.ok(data?.authorizationToken !== undefined);
    assert.match(Buffer.from(data.authorizationToken, 'base64').toString('utf8'), /^AWS:.+/);
    assert.match(data.proxyEndpoint ?? '', /^https:\/\/\d{12}\.dkr\.ecr\.eu-central-1\.amazonaws\.com$/);
    // moto's quirk, which a scheduler must survive: the token is already expired.
    assert.ok((data.expiresAt?.getTime() ?? Infinity) < Date.now());
  });

  it('AssumeRole credentials identify as the assumed role, also when chained', async () => {
    const sts = stsClient(moto.endpoint, anyone);
    const first = await sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::123456789012:role/first', RoleSessionName: 'one' }));
    sts.destroy();
    const asFirst = stsClient(moto.endpoint, sessionKeys(first.Credentials));
    assert.equal((await asFirst.send(new GetCallerIdentityCommand({}))).Arn, 'arn:aws:sts::123456789012:assumed-role/first/one');
    const second = await asFirst.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::210987654321:role/second', RoleSessionName: 'two' }));
    asFirst.destroy();
    const asSecond = stsClient(moto.endpoint, sessionKeys(second.Credentials));
    const id = await asSecond.send(new GetCallerIdentityCommand({}));
    asSecond.destroy();
    assert.equal(id.Arn, 'arn:aws:sts::210987654321:assumed-role/second/two');
    assert.equal(id.Account, '210987654321');
  });

  it('AssumeRoleWithWebIdentity answers without reading the token', async () => {
    const sts = stsClient(moto.endpoint, anyone);
    const out = await sts.send(
      new AssumeRoleWithWebIdentityCommand({
        RoleArn: 'arn:aws:iam::123456789012:role/web',
        RoleSessionName: 'web',
        WebIdentityToken: 'not-even-a-jwt',
      }),
    );
    sts.destroy();
    assert.match(out.Credentials?.AccessKeyId ?? '', /^ASIA/);
  });

  it('reset() makes moto forget the sessions it issued', async () => {
    const sts = stsClient(moto.endpoint, anyone);
    const out = await sts.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::123456789012:role/gone', RoleSessionName: 's1' }));
    sts.destroy();
    const whoami = async () => {
      const c = stsClient(moto.endpoint, sessionKeys(out.Credentials));
      try {
        return (await c.send(new GetCallerIdentityCommand({}))).Arn;
      } finally {
        c.destroy();
      }
    };
    assert.equal(await whoami(), 'arn:aws:sts::123456789012:assumed-role/gone/s1');
    await moto.reset();
    assert.notEqual(await whoami(), 'arn:aws:sts::123456789012:assumed-role/gone/s1');
  });
});
