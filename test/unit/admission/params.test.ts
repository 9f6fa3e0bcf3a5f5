// The admission policy's parameters, from the controller's own rules. Pure.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import { namespaceFacts, paramsData, type NamespaceFacts } from '../../../src/admission/params.ts';
import { defaultSettings, parseSettings, type Settings } from '../../../src/config/settings.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';

const ns = (name: string, annotations: Record<string, string> = {}): V1Namespace => ({ metadata: { name, annotations } });
const sa = (namespace: string, name: string, annotations: Record<string, string> = {}): V1ServiceAccount => ({
  metadata: { name, namespace, annotations },
});

function settings(yaml: string): Settings {
  const parsed = parseSettings(yaml);
  if (!parsed.ok) throw new Error(parsed.error.join('; '));
  return parsed.value;
}

describe('admission parameters', () => {
  const cases: {
    name: string;
    namespace: V1Namespace;
    serviceAccounts?: V1ServiceAccount[];
    settings?: Settings;
    want: { excluded?: string; sa?: [string, string][] };
  }[] = [
    { name: 'a namespace that asks for nothing contributes nothing', namespace: ns('a'), want: {} },
    { name: 'a served namespace is not excluded', namespace: ns('a', { 'ecr-login/server': east }), want: {} },
    {
      name: 'a namespace with an invalid annotation is excluded as InvalidAnnotation',
      namespace: ns('a', { 'ecr-login/server': 'docker.io' }),
      want: { excluded: 'InvalidAnnotation' },
    },
    {
      name: 'a namespace the tenant policy denies is excluded as PolicyDenied',
      namespace: ns('team-b', { 'ecr-login/server': east }),
      settings: settings('rules:\n  - name: a\n    namespaces: {names: [team-a]}\n'),
      want: { excluded: 'PolicyDenied' },
    },
    {
      name: 'a namespace whose identity ServiceAccount does not exist yet is not excluded: it may appear any moment',
      namespace: ns('a', { 'ecr-login/server': east, 'ecr-login/identity': 'service-account', 'ecr-login/role-arn': 'arn:aws:iam::111122223333:role/r' }),
      want: {},
    },
    {
      name: 'an annotated ServiceAccount gets an entry with its own Secret name',
      namespace: ns('a'),
      serviceAccounts: [sa('a', 'robot', { 'ecr-login/server': east })],
      want: { sa: [['robot', 'ecr-login-robot']] },
    },
    {
      name: "a ServiceAccount whose Secret name collides with the Namespace's gets no entry",
      namespace: ns('a', { 'ecr-login/server': east }),
      serviceAccounts: [sa('a', 'robot', { 'ecr-login/server': east, 'ecr-login/secret-name': 'ecr-login' })],
      want: {},
    },
    {
      name: 'a denied ServiceAccount gets no entry, and its Namespace is not excluded for it',
      namespace: ns('team-b'),
      serviceAccounts: [sa('team-b', 'robot', { 'ecr-login/server': east })],
      settings: settings('rules:\n  - name: a\n    namespaces: {names: [team-a]}\n'),
      want: {},
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const facts = namespaceFacts(c.namespace, c.serviceAccounts ?? [], c.settings ?? defaultSettings);
      assert.equal(facts.excluded, c.want.excluded);
      assert.deepEqual([...facts.serviceAccounts], c.want.sa ?? []);
    });
  }

  it('writes the default Secret name first and every entry in key order', () => {
    const facts = new Map<string, NamespaceFacts>([
      ['zeta', { excluded: 'PolicyDenied', serviceAccounts: new Map() }],
      ['alpha', { serviceAccounts: new Map([['robot', 'ecr-login-robot']]) }],
    ]);
    const { data, skipped } = paramsData(facts, settings('defaults: {secretName: pull}\n'));
    assert.deepEqual(Object.entries(data), [
      ['secretName', 'pull'],
      ['exclude.zeta', 'PolicyDenied'],
      ['sa.alpha.robot', 'ecr-login-robot'],
    ]);
    assert.equal(skipped, 0);
  });

  it('leaves out a ServiceAccount entry whose key would be longer than a ConfigMap allows', () => {
    const long = 'x'.repeat(250);
    const facts = new Map<string, NamespaceFacts>([['a', { serviceAccounts: new Map([[long, 'ecr-login-x']]) }]]);
    const { data, skipped } = paramsData(facts, defaultSettings);
    assert.deepEqual(Object.keys(data), ['secretName']);
    assert.equal(skipped, 1);
  });
});
