// The policy ConfigMap read as the controller reads it: absent means the defaults (or, under
// --require-policy, no policy: everything denied); present without config.yaml is invalid and names
// the key it has instead, never a silent fall back to the defaults.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { defaultSettings } from '../../../src/config/settings.ts';
import { initialSettings, settingsFromConfigMap, type ConfigMapSettings, type PolicySource } from '../../../src/config/source.ts';

const open: PolicySource = { namespace: 'kube-ecrlogin', name: 'kube-ecrlogin-config', requirePolicy: false };
const closed: PolicySource = { ...open, requirePolicy: true };
const rules = 'rules: [{name: prod, namespaces: {names: [prod]}}]\n';

const configMap = (data?: Record<string, string>, binaryData?: Record<string, string>): V1ConfigMap => ({
  metadata: { name: 'kube-ecrlogin-config', namespace: 'kube-ecrlogin' },
  ...(data !== undefined ? { data } : {}),
  ...(binaryData !== undefined ? { binaryData } : {}),
});

const denied = (reason: string): ConfigMapSettings => ({ ok: true, value: { ...defaultSettings, denyAll: reason } });

describe('settingsFromConfigMap (what a change to the ConfigMap means)', () => {
  const cases: { name: string; configMap: V1ConfigMap | undefined; source: PolicySource; expect: ConfigMapSettings }[] = [
    { name: 'an absent ConfigMap means the defaults', configMap: undefined, source: open, expect: { ok: true, value: defaultSettings } },
    {
      name: 'an absent ConfigMap under --require-policy means no policy: everything denied, naming the ConfigMap',
      configMap: undefined,
      source: closed,
      expect: denied('no policy in force: --require-policy and ConfigMap kube-ecrlogin/kube-ecrlogin-config is missing'),
    },
    {
      name: 'an empty config.yaml means the defaults',
      configMap: configMap({ 'config.yaml': '' }),
      source: closed,
      expect: { ok: true, value: defaultSettings },
    },
    {
      name: 'a misspelled key (config.yml) is invalid, naming the key found and the one expected',
      configMap: configMap({ 'config.yml': rules }),
      source: open,
      expect: { ok: false, error: { problem: 'no-key', errors: ['no key config.yaml: found "config.yml", expected "config.yaml"'] } },
    },
    {
      name: 'a ConfigMap with no data at all is invalid, not the defaults',
      configMap: configMap(),
      source: open,
      expect: { ok: false, error: { problem: 'no-key', errors: ['no key config.yaml: found no key, expected "config.yaml"'] } },
    },
    {
      name: 'config.yaml under binaryData is named as such',
      configMap: configMap({ other: 'x' }, { 'config.yaml': Buffer.from(rules).toString('base64') }),
      source: open,
      expect: { ok: false, error: { problem: 'no-key', errors: ['no key config.yaml: found "config.yaml" (in binaryData), "other", expected "config.yaml"'] } },
    },
    {
      name: 'a ConfigMap without the key is invalid under --require-policy too (a live change keeps the last good config)',
      configMap: configMap({ 'config.yml': rules }),
      source: closed,
      expect: { ok: false, error: { problem: 'no-key', errors: ['no key config.yaml: found "config.yml", expected "config.yaml"'] } },
    },
    {
      name: 'an invalid config.yaml is invalid, its errors named by path',
      configMap: configMap({ 'config.yaml': 'rules: [{name: a, namespaces: {names: [x]}, oops: 1}]' }),
      source: open,
      expect: {
        ok: false,
        error: {
          problem: 'invalid',
          errors: ['rules[0].oops: unknown setting (known: name, namespaces, registries, roleArns, identities, identityServiceAccounts)'],
        },
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(settingsFromConfigMap(c.configMap, c.source), c.expect));
  }

  it('a valid config.yaml is read', () => {
    const got = settingsFromConfigMap(configMap({ 'config.yaml': rules }), closed);
    assert.ok(got.ok);
    assert.deepEqual(
      got.value.rules.map((rule) => rule.name),
      ['prod'],
    );
    assert.equal(got.value.denyAll, undefined);
  });
});

describe('initialSettings (at start, with no good config kept from before)', () => {
  const cases: { name: string; configMap: V1ConfigMap | undefined; source: PolicySource; expect: ConfigMapSettings }[] = [
    {
      name: 'without --require-policy, a ConfigMap without config.yaml stops the start as any invalid one does',
      configMap: configMap({ 'config.yml': rules }),
      source: open,
      expect: { ok: false, error: { problem: 'no-key', errors: ['no key config.yaml: found "config.yml", expected "config.yaml"'] } },
    },
    {
      name: 'under --require-policy, a ConfigMap without config.yaml means no policy: everything denied, naming the keys',
      configMap: configMap({ 'config.yml': rules }),
      source: closed,
      expect: denied(
        'no policy in force: --require-policy and ConfigMap kube-ecrlogin/kube-ecrlogin-config has no key config.yaml (found "config.yml", expected "config.yaml")',
      ),
    },
    {
      name: 'under --require-policy, an absent ConfigMap means no policy',
      configMap: undefined,
      source: closed,
      expect: denied('no policy in force: --require-policy and ConfigMap kube-ecrlogin/kube-ecrlogin-config is missing'),
    },
    {
      name: 'without --require-policy, an absent ConfigMap means the defaults',
      configMap: undefined,
      source: open,
      expect: { ok: true, value: defaultSettings },
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(initialSettings(c.configMap, c.source), c.expect));
  }

  it('under --require-policy, an invalid config.yaml still stops the start', () => {
    const got = initialSettings(configMap({ 'config.yaml': 'rules: {}' }), closed);
    assert.deepEqual(got, { ok: false, error: { problem: 'invalid', errors: ['rules: must be a list'] } });
  });
});
