// STS AssumeRoleWithWebIdentity against our AWS test server: JWTs signed here by a local
// OIDC issuer (discovery + JWKS served on 127.0.0.1), verified by the server as STS does.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { start } from '../../aws/server.ts';
import type { AwsTestServer } from '../../aws/server.ts';
import { generateRsaKey, selfSignedCert, serviceAccountClaims, signJwt, startOidcIssuer } from '../../aws/oidc-issuer.ts';
import type { OidcIssuer } from '../../aws/oidc-issuer.ts';
import { rejection, sessionKeys, stsClient, testClock } from '../../aws/fixtures.ts';

const role = 'arn:aws:iam::210987654321:role/team-a-puller';
const teamA = 'system:serviceaccount:team-a:builder';
const noKeys = { accessKeyId: 'unused', secretAccessKey: 'unused' };

describe('STS AssumeRoleWithWebIdentity', () => {
  const clock = testClock();
  let aws: AwsTestServer;
  let idp: OidcIssuer;

  before(async () => {
    aws = await start({ now: clock.now });
    idp = await startOidcIssuer();
  });
  beforeEach(() => {
    aws.policies.clear();
    aws.setRole({ roleArn: role, webIdentitySubjects: ['system:serviceaccount:team-a:*'] });
    aws.trustIssuer({ issuer: idp.issuer });
    aws.resetCounters();
  });
  after(async () => {
    await aws.close();
    await idp.close();
  });

  async function assume(token: string, sessionName = 'web') {
    const sts = stsClient(aws.endpoint, noKeys);
    try {
      return await sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: role, RoleSessionName: sessionName, WebIdentityToken: token }));
    } finally {
      sts.destroy();
    }
  }

  const claims = (sub: string, overrides: Record<string, unknown> = {}) => serviceAccountClaims(idp.issuer, sub, clock.now(), overrides);

  it('accepts a token whose sub the trust table allows, and the credentials act as the role', async () => {
    const out = await assume(idp.sign(claims(teamA)), 'builder');
    assert.equal(out.SubjectFromWebIdentityToken, teamA);
    assert.equal(out.Audience, 'sts.amazonaws.com');
    assert.equal(out.Provider, idp.issuer);
    assert.equal(out.AssumedRoleUser?.Arn, 'arn:aws:sts::210987654321:assumed-role/team-a-puller/builder');
    assert.deepEqual(out.Credentials?.Expiration, new Date(clock.now() + 3600_000));
    const sts = stsClient(aws.endpoint, sessionKeys(out.Credentials));
    const id = await sts.send(new GetCallerIdentityCommand({}));
    sts.destroy();
    assert.equal(id.Arn, 'arn:aws:sts::210987654321:assumed-role/team-a-puller/builder');
    assert.deepEqual(
      aws.calls.map((c) => [c.api, c.subject, c.roleArn, c.outcome]),
      [
        ['AssumeRoleWithWebIdentity', teamA, role, 'ok'],
        ['GetCallerIdentity', undefined, undefined, 'ok'],
      ],
    );
  });

  it('denies a sub the trust table does not list with AccessDenied', async () => {
    const err = await rejection(assume(idp.sign(claims('system:serviceaccount:team-b:builder'))));
    assert.equal(err.name, 'AccessDenied');
    assert.equal(err.$metadata?.httpStatusCode, 403);
    assert.equal(err.message, 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
    assert.equal(aws.count({ outcome: 'AccessDenied', subject: 'system:serviceaccount:team-b:builder' }), 1);
  });

  const invalidTokens: [string, () => string, RegExp][] = [
    ['a token signed by another key under the same kid', () => signJwt(generateRsaKey(), idp.kid, claims(teamA)), /signature/],
    ['a token for another audience', () => idp.sign(claims(teamA, { aud: 'vault' })), /Incorrect token audience/],
    [
      'a token from an issuer with no OIDC provider',
      () => idp.sign(claims(teamA, { iss: 'https://issuer.invalid' })),
      /No OpenIDConnect provider found in your account for https:\/\/issuer\.invalid/,
    ],
    ['a token that is not a JWT', () => 'not.a-jwt', /not a valid JWT/],
    ['a token with its signature stripped', () => idp.sign(claims(teamA)).replace(/[^.]+$/, ''), /signature/],
    [
      'an unsecured token (alg none)',
      () => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims(teamA))).toString('base64url')}.`,
      /Unsupported signing algorithm/,
    ],
    ['a token issued in the future', () => idp.sign(claims(teamA, { iat: clock.now() / 1000 + 3600 })), /iat/],
  ];
  for (const [name, token, message] of invalidTokens) {
    it(`rejects ${name} with InvalidIdentityToken`, async () => {
      const err = await rejection(assume(token()));
      assert.equal(err.name, 'InvalidIdentityTokenException');
      assert.equal((err as { Error?: { Code?: string } }).Error?.Code, 'InvalidIdentityToken');
      assert.equal(err.$metadata?.httpStatusCode, 400);
      assert.match(err.message, message);
    });
  }

  it('rejects an expired token with ExpiredTokenException', async () => {
    const token = idp.sign(claims(teamA));
    clock.advance(3600_000 + 61_000);
    const err = await rejection(assume(token));
    assert.equal(err.name, 'ExpiredTokenException');
    assert.equal(err.$metadata?.httpStatusCode, 400);
    assert.match(err.message, /^Token expired/);
    assert.equal(aws.count({ api: 'AssumeRoleWithWebIdentity', outcome: 'ExpiredTokenException' }), 1);
  });

  it('refetches the JWKS when the issuer rotates to a key with a new kid', async () => {
    await assume(idp.sign(claims(teamA)));
    const before = idp.fetches;
    await assume(idp.sign(claims(teamA)));
    assert.equal(idp.fetches, before, 'the JWKS is cached');
    idp.rotate();
    const out = await assume(idp.sign(claims(teamA)));
    assert.ok(out.Credentials);
    assert.ok(idp.fetches > before, 'the new kid made the server refetch');
  });

  it('reports IDPCommunicationError when the issuer cannot be reached', async () => {
    const gone = await startOidcIssuer();
    const token = gone.sign(claims(teamA, { iss: gone.issuer }));
    await gone.close();
    aws.trustIssuer({ issuer: gone.issuer });
    const err = await rejection(assume(token));
    assert.equal(err.name, 'IDPCommunicationErrorException');
    assert.equal(err.$metadata?.httpStatusCode, 400);
    assert.match(aws.calls.at(-1)?.detail ?? '', /openid-configuration: .*ECONNREFUSED/);
  });
});

describe('STS AssumeRoleWithWebIdentity with an https issuer behind a private CA and a bearer token', () => {
  const cert = selfSignedCert();
  const clock = testClock();
  let aws: AwsTestServer;
  let idp: OidcIssuer;

  before(async () => {
    if (cert === undefined) return;
    aws = await start({ now: clock.now });
    idp = await startOidcIssuer({ tls: cert, requireBearer: 'discovery-token' });
    aws.setRole({ roleArn: role, webIdentitySubjects: [teamA], webIdentityIssuer: idp.issuer });
  });
  after(async () => {
    if (cert === undefined) return;
    await aws.close();
    await idp.close();
  });

  async function assume(token: string) {
    const sts = stsClient(aws.endpoint, noKeys);
    try {
      return await sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: role, RoleSessionName: 'builder', WebIdentityToken: token }));
    } finally {
      sts.destroy();
    }
  }

  it('verifies the token with discovery fetched over https with the CA and bearer token', { skip: cert === undefined && 'no openssl' }, async () => {
    assert.match(idp.issuer, /^https:\/\/127\.0\.0\.1:\d+$/);
    const token = idp.sign(serviceAccountClaims(idp.issuer, teamA, clock.now()));

    aws.trustIssuer({ issuer: idp.issuer });
    const noCa = await rejection(assume(token));
    assert.equal(noCa.name, 'IDPCommunicationErrorException', 'an untrusted certificate fails');

    aws.trustIssuer({ issuer: idp.issuer, ca: cert!.cert });
    const noBearer = await rejection(assume(token));
    assert.equal(noBearer.name, 'IDPCommunicationErrorException', 'discovery without the bearer token is refused');

    aws.trustIssuer({ issuer: idp.issuer, ca: cert!.cert, bearerToken: 'discovery-token' });
    const out = await assume(token);
    assert.equal(out.AssumedRoleUser?.Arn, 'arn:aws:sts::210987654321:assumed-role/team-a-puller/builder');
  });
});
