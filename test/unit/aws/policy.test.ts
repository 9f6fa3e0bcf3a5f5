// The trust table as pure logic: globs, defaults, ExternalId and web identity subjects.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TrustPolicies, globMatch } from '../../aws/policy.ts';

describe('globMatch', () => {
  const cases: [string, string, boolean][] = [
    ['system:serviceaccount:team-a:*', 'system:serviceaccount:team-a:builder', true],
    ['system:serviceaccount:team-a:*', 'system:serviceaccount:team-b:builder', false],
    ['system:serviceaccount:*:puller', 'system:serviceaccount:ns1:puller', true],
    ['arn:aws:iam::111122223333:user/?ob', 'arn:aws:iam::111122223333:user/bob', true],
    ['a.b', 'aXb', false],
    ['exact', 'exact', true],
    ['exact', 'exactly', false],
  ];
  for (const [glob, value, expected] of cases) {
    it(`${glob} ${expected ? 'matches' : 'does not match'} ${value}`, () => {
      assert.equal(globMatch(glob, value), expected);
    });
  }
});

describe('TrustPolicies', () => {
  const role = 'arn:aws:iam::111122223333:role/r';
  const alice = 'arn:aws:iam::111122223333:user/alice';

  it('a role outside the table follows the default', () => {
    const p = new TrustPolicies();
    assert.equal(p.mayAssume(alice, role, undefined), true);
    assert.equal(p.mayAssumeWithWebIdentity(role, 'https://issuer', 'sub'), true);
    p.setDefault('deny');
    assert.equal(p.mayAssume(alice, role, undefined), false);
    assert.equal(p.mayAssumeWithWebIdentity(role, 'https://issuer', 'sub'), false);
  });

  it('a role in the table trusts only its principals, with its ExternalId', () => {
    const p = new TrustPolicies();
    p.setRole({ roleArn: role, trustedPrincipals: ['arn:aws:iam::111122223333:user/*'], externalId: 'x1' });
    assert.equal(p.mayAssume(alice, role, 'x1'), true);
    assert.equal(p.mayAssume(alice, role, undefined), false);
    assert.equal(p.mayAssume('arn:aws:iam::999999999999:user/eve', role, 'x1'), false);
  });

  it('a role without web identity subjects cannot be assumed with web identity', () => {
    const p = new TrustPolicies();
    p.setRole({ roleArn: role });
    assert.equal(p.mayAssumeWithWebIdentity(role, 'https://issuer', 'sub'), false);
  });

  it('a role bound to an issuer refuses tokens of other issuers', () => {
    const p = new TrustPolicies();
    p.setRole({ roleArn: role, webIdentitySubjects: ['*'], webIdentityIssuer: 'https://a' });
    assert.equal(p.mayAssumeWithWebIdentity(role, 'https://a', 'sub'), true);
    assert.equal(p.mayAssumeWithWebIdentity(role, 'https://b', 'sub'), false);
  });

  it('MaxSessionDuration defaults to an hour and is bounded as in IAM', () => {
    const p = new TrustPolicies();
    assert.equal(p.maxSessionDuration(role), 3600);
    p.setRole({ roleArn: role, maxSessionDurationSeconds: 43200 });
    assert.equal(p.maxSessionDuration(role), 43200);
    assert.throws(() => {
      p.setRole({ roleArn: role, maxSessionDurationSeconds: 60 });
    }, /900\.\.43200/);
  });
});
