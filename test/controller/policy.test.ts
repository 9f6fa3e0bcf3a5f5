// The policy ConfigMap is reloaded live: a change applies without a restart (a Secret now denied is
// removed with our entry), and an invalid change (a renamed key too) keeps the last good policy in
// force, with a Warning Event on the ConfigMap and a log line naming the error. With --require-policy,
// no policy (no ConfigMap, or none with config.yaml) at start means every request is denied.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, startTestController, withAwsAndController, type TestController } from '../support/controller.ts';
import { InvalidConfigError } from '../../src/config/source.ts';
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
    await setConfig(
      'rules:\n  - name: prod\n    namespaces: { selector: { matchLabels: { env: prod } } }\n    registries: [{ account: 111 }]\n  - oops: true\n',
    );
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

  it('treats a renamed key (config.yml) as invalid: the last good policy stays in force, and the Event names the key found and the one expected', async () => {
    await core().replaceNamespacedConfigMap({
      namespace: env.controller.namespace,
      name: 'kube-ecrlogin-config',
      body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yml': allowProd() } },
    });
    try {
      const event = await eventually('a ConfigInvalid Event naming the keys', async () => {
        const found = (await eventsFor(env.controller.namespace, 'ConfigMap', 'kube-ecrlogin-config')).find(
          (e) => e.reason === 'ConfigInvalid' && (e.message ?? '').includes('config.yml"'),
        );
        assert.ok(found);
        return found;
      });
      assert.equal(event.message, 'Invalid ConfigMap, the last good config stays in force: no key config.yaml: found "config.yml", expected "config.yaml"');

      // Not the defaults (no rules: allow all): a namespace the last good policy denies stays denied.
      const dev = uniqueName('renamed-dev');
      await createServedNamespace(env.controller, dev, { 'ecr-login/server': registry }, { env: 'dev' });
      await eventually('dev denied', async () => {
        const found = (await namespaceEvents(dev)).find((e) => e.reason === 'PolicyDenied');
        assert.match(found?.message ?? '', /no policy rule matches namespace/);
      });
      await secretAbsent(dev, 'ecr-login');
    } finally {
      await setConfig(allowProd());
    }
  });

  it('without --require-policy, refuses to start with a ConfigMap without config.yaml, naming the key found', async () => {
    const started = await startTestController({
      prepare: async (namespace) => {
        await core().createNamespacedConfigMap({ namespace, body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yml': allowProd() } } });
      },
    }).catch((error: unknown) => error);
    if (!(started instanceof Error)) {
      await (started as TestController).stop();
      assert.fail('the controller started on the defaults');
    }
    assert.ok(started instanceof InvalidConfigError, String(started));
    assert.match(
      started.message,
      /^ConfigMap ecrlogin-system-\w+\/kube-ecrlogin-config is invalid:\n {2}no key config\.yaml: found "config\.yml", expected "config\.yaml"$/,
    );
  });
});

describe('--require-policy: no policy means deny everything', () => {
  const env = withAwsAndController({ args: ['--require-policy'] });
  const configMaps = (namespace: string) => ({ namespace, name: 'kube-ecrlogin-config' });

  const deniedBecause = async (ns: string, reason: RegExp): Promise<void> => {
    await eventually(`PolicyDenied on ${ns}`, async () => {
      const found = (await namespaceEvents(ns)).filter((e) => e.reason === 'PolicyDenied').map((e) => e.message ?? '');
      assert.ok(
        found.some((message) => reason.test(message)),
        JSON.stringify(found),
      );
    });
  };

  it('with no ConfigMap at start, serves nothing and says why; serves once a valid ConfigMap appears', async () => {
    const { namespace } = env.controller;
    const ns = uniqueName('closed');
    await createServedNamespace(env.controller, ns, { 'ecr-login/server': registry }, { env: 'prod' });
    await deniedBecause(ns, new RegExp(`^denied by policy: no policy in force: --require-policy and ConfigMap ${namespace}/kube-ecrlogin-config is missing$`));
    await secretAbsent(ns, 'ecr-login');
    assert.ok(
      env.controller.logs.some((line) => line.includes('No policy in force, every request is denied') && line.includes('is missing')),
      'a log line says why',
    );
    assert.equal(env.aws.count({ api: 'GetAuthorizationToken' }), 0, 'no AWS call for a denied request');

    await core().createNamespacedConfigMap({ namespace, body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': allowProd() } } });
    await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
  });

  it('after a restart without the ConfigMap, denies everything and removes the Secrets; while running, a deleted ConfigMap keeps the policy in force', async () => {
    const { namespace, label } = env.controller;
    const ns = uniqueName('restarted');
    await createServedNamespace(env.controller, ns, { 'ecr-login/server': registry }, { env: 'prod' });
    await eventually('the Secret', () => readSecret(ns, 'ecr-login'));

    await core().deleteNamespacedConfigMap(configMaps(namespace));
    await eventually('the deletion noticed', () => {
      assert.ok(env.controller.logs.some((line) => line.includes('Config ConfigMap deleted, keeping the settings in force')));
      return Promise.resolve();
    });
    // The last good policy still serves a new prod namespace.
    const later = uniqueName('restarted-later');
    await createServedNamespace(env.controller, later, { 'ecr-login/server': registry }, { env: 'prod' });
    await eventually('the later Secret', () => readSecret(later, 'ecr-login'));

    await env.controller.stop();
    const restarted = await startTestController({ reuse: { namespace, label }, args: ['--require-policy'] });
    try {
      await deniedBecause(ns, /no policy in force: --require-policy and ConfigMap .* is missing$/);
      await eventually('the Secret removed', () => secretAbsent(ns, 'ecr-login'));
      await eventually('the later Secret removed', () => secretAbsent(later, 'ecr-login'));

      // A ConfigMap without the key is no policy either, and the denial names the key found.
      await core().createNamespacedConfigMap({ namespace, body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yml': allowProd() } } });
      await deniedBecause(
        ns,
        /no policy in force: --require-policy and ConfigMap .* has no key config\.yaml \(found "config\.yml", expected "config\.yaml"\)$/,
      );
      await secretAbsent(ns, 'ecr-login');

      await core().replaceNamespacedConfigMap({
        ...configMaps(namespace),
        body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': allowProd() } },
      });
      await eventually('the Secret back', () => readSecret(ns, 'ecr-login'));
    } finally {
      await restarted.stop();
    }
  });

  it('with a ConfigMap without config.yaml at start, starts, denies everything naming the key found, and serves once the key is right', async () => {
    const controller = await startTestController({
      args: ['--require-policy'],
      prepare: async (namespace) => {
        await core().createNamespacedConfigMap({ namespace, body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yml': allowProd() } } });
      },
    });
    try {
      const ns = uniqueName('keyless');
      await createServedNamespace(controller, ns, { 'ecr-login/server': registry }, { env: 'prod' });
      await deniedBecause(
        ns,
        /^denied by policy: no policy in force: --require-policy and ConfigMap .* has no key config\.yaml \(found "config\.yml", expected "config\.yaml"\)$/,
      );
      await secretAbsent(ns, 'ecr-login');
      await core().replaceNamespacedConfigMap({
        ...configMaps(controller.namespace),
        body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': allowProd() } },
      });
      await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    } finally {
      await controller.stop();
    }
  });
});
