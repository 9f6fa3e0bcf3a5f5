// The policy ConfigMap is reloaded live: a change applies without a restart (a Secret now denied is
// removed with our entry), and an invalid change keeps the last good policy in force, with a Warning
// Event on the ConfigMap and a log line naming the error.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, withAwsAndController } from '../support/controller.ts';
import { core, eventsFor, namespaceEvents, pullSecretNames, readSecret, secretAbsent } from '../support/objects.ts';

const registry = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const allowProd = (extra = ''): string =>
  `rules:\n  - name: prod\n    namespaces: { selector: { matchLabels: { env: prod } } }\n    registries: [{ account: "111122223333" }]\n${extra}`;

describe('the policy ConfigMap', () => {
  const env = withAwsAndController({ config: allowProd() });

  const setConfig = async (text: string): Promise<void> => {
    await core().replaceNamespacedConfigMap({
      namespace: env.controller.namespace,
      name: 'kube-ecrlogin-config',
      body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': text } },
    });
  };

  it('applies a policy change without a restart, removing a Secret that is now denied', async () => {
    const ns = uniqueName('policy');
    await createServedNamespace(env.controller, ns, { 'ecr-login/server': registry }, { env: 'prod' });
    await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    await eventually('the entry', async () => {
      assert.deepEqual(pullSecretNames(await core().readNamespacedServiceAccount({ namespace: ns, name: 'default' })), ['ecr-login']);
    });

    // Tighten the rule to another account: this namespace's registry is no longer allowed.
    await setConfig('rules:\n  - name: prod\n    namespaces: { selector: { matchLabels: { env: prod } } }\n    registries: [{ account: "999999999999" }]\n');
    await eventually('the Secret to be removed', () => secretAbsent(ns, 'ecr-login'));
    await eventually('our entry to be removed', async () => {
      assert.deepEqual(pullSecretNames(await core().readNamespacedServiceAccount({ namespace: ns, name: 'default' })), []);
    });
    const denied = (await namespaceEvents(ns)).find((e) => e.reason === 'PolicyDenied');
    assert.match(denied?.message ?? '', /rule prod: registry 111122223333\.dkr\.ecr\.us-east-1\.amazonaws\.com is not allowed/);

    await setConfig(allowProd());
    await eventually('the Secret to come back', () => readSecret(ns, 'ecr-login'));
  });

  it('keeps the last good policy when the ConfigMap becomes invalid, and says so', async () => {
    await setConfig('rules:\n  - name: prod\n    namespaces: { selector: { matchLabels: { env: prod } } }\n    registries: [{ account: 111 }]\n  - oops: true\n');
    const event = await eventually('a ConfigInvalid Event', async () => {
      const found = (await eventsFor(env.controller.namespace, 'ConfigMap', 'kube-ecrlogin-config')).find((e) => e.reason === 'ConfigInvalid');
      assert.ok(found);
      return found;
    });
    assert.equal(event.type, 'Warning');
    assert.match(event.message ?? '', /rules\[0\]\.registries\[0\]\.account: must be a string/);
    assert.match(event.message ?? '', /rules\[1\]\.oops: unknown setting/);
    assert.ok(
      env.controller.logs.some((line) => line.includes('Invalid config, keeping the last good one') && line.includes('rules[1].oops')),
      'a log line names the error',
    );

    // The last good policy (allow env=prod, deny the rest) is still in force.
    const prod = uniqueName('still-prod');
    const dev = uniqueName('still-dev');
    await createServedNamespace(env.controller, prod, { 'ecr-login/server': registry }, { env: 'prod' });
    await createServedNamespace(env.controller, dev, { 'ecr-login/server': registry }, { env: 'dev' });
    await eventually('the prod Secret', () => readSecret(prod, 'ecr-login'));
    await eventually('dev denied', async () => {
      const found = (await namespaceEvents(dev)).find((e) => e.reason === 'PolicyDenied');
      assert.match(found?.message ?? '', /no policy rule matches namespace/);
    });
    await secretAbsent(dev, 'ecr-login');

    await setConfig(allowProd());
    await eventually('a ConfigReloaded Event', async () => {
      const reasons = (await eventsFor(env.controller.namespace, 'ConfigMap', 'kube-ecrlogin-config')).map((e) => e.reason);
      assert.ok(reasons.includes('ConfigReloaded'));
    });
  });
});
