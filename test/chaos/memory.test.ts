// Memory that must not grow without bound with namespace churn (CI namespaces come and go all day):
// what the controller keeps per namespace or per identity is dropped once it is no longer needed.
// A soak cannot show a few KiB per namespace in RSS; these tests look at the structures themselves.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AwsApi, AwsCredentials, EcrEndpoint, EcrToken } from '../../src/aws/api.ts';
import { TokenBroker, type TokenIdentity } from '../../src/broker.ts';
import { defaultSettings } from '../../src/config/settings.ts';
import { uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, withAwsAndController } from '../support/controller.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { core, readSecret } from '../support/objects.ts';

const hour = 3_600_000;
const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const ecr = (region: string): EcrEndpoint => ({ service: 'ecr', region, fips: false, dualStack: false });

function fakeAws(clock: FakeClock): AwsApi {
  return {
    getAuthorizationToken: (): Promise<EcrToken> => Promise.resolve({ username: 'AWS', password: 'x'.repeat(2_000), expiresAt: clock.now() + 12 * hour }),
    assumeRole: (input): Promise<AwsCredentials> =>
      Promise.resolve({ accessKeyId: `ASIA${input.sessionName}`, secretAccessKey: 'x', sessionToken: 'y', expiration: new Date(clock.now() + hour) }),
    assumeRoleWithWebIdentity: (): Promise<AwsCredentials> => Promise.reject(new Error('not used')),
    getCallerIdentity: () => Promise.resolve({ arn: 'arn:aws:iam::111122223333:user/test', account: '111122223333' }),
  };
}

describe('the token broker over a day of namespace churn', () => {
  it('forgets the tokens and sessions of identities nobody asked for in a day', async () => {
    const clock = new FakeClock();
    const broker = new TokenBroker({
      aws: fakeAws(clock),
      clock,
      settings: () => defaultSettings,
      serviceAccountTokens: { mint: () => Promise.reject(new Error('not used')) },
    });
    // One assumed-role session per namespace, as `ecr-login/role-arn` gives (session ecr-login.<namespace>).
    for (let i = 0; i < 50; i++) {
      const identity: TokenIdentity = { mode: 'assume-role', roleArn: 'arn:aws:iam::111122223333:role/ci', sessionName: `ecr-login.ci-${i}` };
      await broker.token(identity, ecr('us-east-1'));
    }
    assert.equal(broker.size, 50);
    assert.equal(broker.cachedCredentials, 50);
    // The CI namespaces are gone; a day later only the controller's own identity is still asked for.
    clock.advance(27 * hour);
    await broker.token({ mode: 'controller' }, ecr('us-east-1'));
    assert.equal(broker.size, 1, 'only the token still in use is kept');
    assert.equal(broker.cachedCredentials, 0, 'no session of an identity nobody uses is kept');
  });
});

describe('the controller over namespace churn', () => {
  const env = withAwsAndController();

  it('keeps no reconcile result for a namespace once it is deleted', async () => {
    const namespace = uniqueName('churn');
    await createServedNamespace(env.controller, namespace, { 'ecr-login/server': east });
    await eventually('the Secret', () => readSecret(namespace, 'ecr-login'));
    const results = env.controller.running.parts.controller.lastResults;
    // The result is recorded when the reconcile that wrote the Secret ends, a moment after the write.
    await eventually('its reconcile result', () => {
      assert.ok(results.has(namespace));
      return Promise.resolve();
    });
    await core().deleteNamespace({ name: namespace });
    await eventually(
      'the result to be forgotten',
      () => {
        assert.equal(results.has(namespace), false);
        return Promise.resolve();
      },
      { timeoutMs: 60_000 },
    );
  });
});
