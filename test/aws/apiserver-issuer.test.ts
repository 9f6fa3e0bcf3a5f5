// Our STS verifies real ServiceAccount tokens from the test kube-apiserver, as AWS STS does with an EKS
// cluster's OIDC issuer: discovery and JWKS fetched from the apiserver, signature, issuer, audience,
// expiry, then the trust table.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { AssumeRoleWithWebIdentityCommand } from '@aws-sdk/client-sts';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from './server.ts';
import { rejection, stsClient } from './fixtures.ts';
import { cluster, uniqueName } from '../support/cluster.ts';

const role = 'arn:aws:iam::111122223333:role/team-a-pull';
const noKeys = { accessKeyId: 'unused', secretAccessKey: 'unused' };

describe('STS against the test apiserver as OIDC issuer', () => {
  let aws: AwsTestServer;
  let offsetMs = 0;
  const teamA = uniqueName('team-a');
  const teamB = uniqueName('team-b');

  before(async () => {
    const plane = cluster();
    aws = await start({ now: () => Date.now() + offsetMs });
    aws.trustIssuer({ issuer: plane.issuer, ca: plane.caPem });
    aws.setRole({ roleArn: role, webIdentitySubjects: [`system:serviceaccount:${teamA}:*`] });
    const core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
    for (const ns of [teamA, teamB]) await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const ns of [teamA, teamB]) await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'puller' } } });
  });

  after(() => aws.close());

  const assume = async (token: string): Promise<unknown> => {
    const sts = stsClient(aws.endpoint, noKeys);
    try {
      return await sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: role, RoleSessionName: 'test', WebIdentityToken: token }));
    } finally {
      sts.destroy();
    }
  };
  const token = (ns: string): Promise<string> => cluster().requestToken(ns, 'puller', { audiences: ['sts.amazonaws.com'], expirationSeconds: 600 });

  it('accepts a TokenRequest token for a ServiceAccount the role trusts', async () => {
    const out = (await assume(await token(teamA))) as { SubjectFromWebIdentityToken?: string };
    assert.equal(out.SubjectFromWebIdentityToken, `system:serviceaccount:${teamA}:puller`);
  });

  it('rejects a genuine token from a ServiceAccount the role does not trust', async () => {
    const error = await rejection(assume(await token(teamB)));
    assert.equal(error.name, 'AccessDenied');
  });

  it('rejects a forged token: the same claims and key id, signed with another key', async () => {
    const genuine = await token(teamA);
    const [header = '', payload = ''] = genuine.split('.');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const signer = createSign('RSA-SHA256');
    signer.update(`${header}.${payload}`);
    const forged = `${header}.${payload}.${signer.sign(privateKey).toString('base64url')}`;
    const error = await rejection(assume(forged));
    assert.equal(error.name, 'InvalidIdentityTokenException');
  });

  it('rejects a token for another audience', async () => {
    const other = await cluster().requestToken(teamA, 'puller', { audiences: ['vault'], expirationSeconds: 600 });
    const error = await rejection(assume(other));
    assert.equal(error.name, 'InvalidIdentityTokenException');
  });

  it('rejects an expired token', async () => {
    const genuine = await token(teamA);
    offsetMs = 2 * 3_600_000;
    try {
      const error = await rejection(assume(genuine));
      assert.equal(error.name, 'ExpiredTokenException');
    } finally {
      offsetMs = 0;
    }
  });
});
