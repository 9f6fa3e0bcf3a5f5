// The basic flow against moto, an independent AWS emulator: our requests are ones AWS accepts. moto's
// tokens expired in 2015, so this also shows the scheduler clamps instead of spinning.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startMoto, type Moto } from '../aws/moto.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { core, decodeDockerConfig, pullSecretNames, readSecret } from '../support/objects.ts';

const registry = '123456789012.dkr.ecr.eu-central-1.amazonaws.com';

describe('against moto', () => {
  let moto: Moto;
  let controller: TestController;

  before(async () => {
    moto = await startMoto();
    useAwsEndpoint(moto.endpoint);
    controller = await startTestController({ config: 'refresh:\n  minInterval: 2s\n', args: ['--resync-period', '1s'] });
  });

  after(async () => {
    await controller.stop();
    await moto.close();
  });

  it('issues a Secret from a moto token, with assume-role chaining too', async () => {
    const ns = uniqueName('moto');
    await createServedNamespace(controller, ns, { 'ecr-login/server': registry });
    const secret = await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    const auth = decodeDockerConfig(secret)[registry];
    assert.equal(auth?.username, 'AWS');
    assert.ok(auth?.password);
    await eventually('the entry', async () => {
      const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'default' });
      assert.deepEqual(pullSecretNames(sa), ['ecr-login']);
    });

    const roleNs = uniqueName('moto-role');
    await createServedNamespace(controller, roleNs, {
      'ecr-login/server': registry,
      'ecr-login/role-arn': 'arn:aws:iam::123456789012:role/puller',
    });
    const assumed = await eventually('the Secret from an assumed role', () => readSecret(roleNs, 'ecr-login'));
    assert.match(assumed.metadata?.annotations?.['ecr-login/identity'] ?? '', /role arn:aws:iam::123456789012:role\/puller/);
  });

  it("does not spin on moto's already-expired tokens, nor rewrite the Secret", async () => {
    const ns = uniqueName('moto-expired');
    await createServedNamespace(controller, ns, { 'ecr-login/server': registry });
    await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    await eventually('the entry', async () => {
      const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'default' });
      assert.deepEqual(pullSecretNames(sa), ['ecr-login']);
    });
    const calls = async (): Promise<number> =>
      (await controller.metrics.awsCalls.get()).values.find((v) => v.labels.api === 'GetAuthorizationToken' && v.labels.result === 'success')?.value ?? 0;
    const from = await calls();
    const windowStart = new Date();
    const passes = (): number => controller.running.parts.controller.lastResults.get(ns)?.count ?? 0;
    const startPasses = passes();
    await eventually(
      'eight reconciles of the namespace over at least 6 s',
      () => {
        assert.ok(passes() >= startPasses + 8 && Date.now() - windowStart.getTime() >= 6_000);
        return Promise.resolve();
      },
      { timeoutMs: 30_000 },
    );
    const elapsed = (Date.now() - windowStart.getTime()) / 1000;
    const made = (await calls()) - from;
    // Each token is "expired" on arrival, yet AWS is asked at most once per minInterval (2 s) per identity
    // in eu-central-1 (two here: the controller's own and the assumed role of the first test), not once
    // per reconcile.
    assert.ok(made >= 1, 'it does refresh');
    assert.ok(made <= 2 * (Math.ceil(elapsed / 2) + 1), `${made} calls in ${elapsed} s for ${passes() - startPasses} reconciles`);
    assert.ok(passes() - startPasses > made, 'fewer AWS calls than reconciles');
    assert.deepEqual(cluster().writes({ user: controller.user, namespace: ns, since: windowStart }), []);
  });
});
