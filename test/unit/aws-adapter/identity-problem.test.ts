// When the install gave the controller no AWS identity: the placeholder role in the environment the AWS
// SDK reads (unless keys or a profile come first in its chain), on a ServiceAccount, or the chain's own
// "no credentials" error. Table tests.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { identityProblemFromEnv, identityProblemFromError, identityProblemFromServiceAccount, placeholderRoleArn } from '../../../src/aws/identity-problem.ts';

describe('identityProblemFromEnv', () => {
  const cases: { name: string; env: Record<string, string>; problem: boolean }[] = [
    {
      name: 'the placeholder role with a web identity token is no identity',
      env: { AWS_ROLE_ARN: placeholderRoleArn, AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/token' },
      problem: true,
    },
    { name: 'the placeholder role with spaces around it is still the placeholder', env: { AWS_ROLE_ARN: ` ${placeholderRoleArn} ` }, problem: true },
    { name: 'a real role is an identity', env: { AWS_ROLE_ARN: 'arn:aws:iam::444455556666:role/kube-ecrlogin' }, problem: false },
    { name: 'another role of the example account is not the placeholder', env: { AWS_ROLE_ARN: 'arn:aws:iam::111122223333:role/ecr-pull' }, problem: false },
    {
      name: 'static keys come first in the chain, whatever the role says',
      env: { AWS_ROLE_ARN: placeholderRoleArn, AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 's' },
      problem: false,
    },
    { name: 'half a key pair does not', env: { AWS_ROLE_ARN: placeholderRoleArn, AWS_ACCESS_KEY_ID: 'AKIA' }, problem: true },
    { name: 'a named profile comes first too', env: { AWS_ROLE_ARN: placeholderRoleArn, AWS_PROFILE: 'ops' }, problem: false },
    { name: 'nothing at all is for the SDK to find out (instance profile)', env: {}, problem: false },
  ];
  for (const { name, env, problem } of cases) {
    it(name, () => {
      const found = identityProblemFromEnv(env);
      if (!problem) {
        assert.equal(found, undefined);
        return;
      }
      assert.match(
        found ?? '',
        /^no AWS identity: the ServiceAccount names the placeholder role arn:aws:iam::111122223333:role\/kube-ecrlogin \(AWS_ROLE_ARN\); set the role ARN on the ServiceAccount/,
      );
    });
  }
});

describe('identityProblemFromServiceAccount', () => {
  it('names the ServiceAccount that carries the placeholder', () => {
    assert.match(
      identityProblemFromServiceAccount('kube-ecrlogin/kube-ecrlogin', { 'eks.amazonaws.com/role-arn': placeholderRoleArn }) ?? '',
      /^no AWS identity: ServiceAccount kube-ecrlogin\/kube-ecrlogin names the placeholder role .*; set the role ARN on the ServiceAccount/,
    );
  });
  it('says nothing of a real role, or of no annotation', () => {
    assert.equal(identityProblemFromServiceAccount('a/b', { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::444455556666:role/x' }), undefined);
    assert.equal(identityProblemFromServiceAccount('a/b', undefined), undefined);
  });
});

describe('identityProblemFromError', () => {
  it("is the credential chain's end: no provider found anything", () => {
    const error = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError', tryNextLink: false });
    assert.match(identityProblemFromError(error) ?? '', /^no AWS identity: the AWS SDK found no credentials/);
  });
  it('is not a denial, a network failure or throttling: those are an identity that failed', () => {
    for (const error of [
      Object.assign(new Error('not authorized'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }),
      'a string',
      undefined,
    ]) {
      assert.equal(identityProblemFromError(error), undefined);
    }
  });
});
