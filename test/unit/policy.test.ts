// Tenant policy: the first rule whose namespaces match decides; identity modes, role globs, identity
// ServiceAccounts and registry patterns each can deny, and a denial names its rule. With no policy in
// force under --require-policy, everything is denied.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { denyAllSettings, parseSettings, type Settings } from '../../src/config/settings.ts';
import { evaluatePolicy, namespaceMatches, type Decision, type Identity, type NamespaceFacts } from '../../src/policy.ts';
import { parseRegistryHost, type RegistryHost } from '../../src/registry.ts';

function settings(yaml: string): Settings {
  const result = parseSettings(yaml);
  if (!result.ok) assert.fail(result.error.join('\n'));
  return result.value;
}

function host(text: string): RegistryHost {
  const parsed = parseRegistryHost(text);
  if (!parsed.ok) assert.fail(parsed.error);
  return parsed.value;
}

const roleA = 'arn:aws:iam::111122223333:role/team-a-puller';
const roleB = 'arn:aws:iam::111122223333:role/team-b-puller';
const eastA = host('111122223333.dkr.ecr.us-east-1.amazonaws.com');
const westA = host('111122223333.dkr.ecr.eu-west-1.amazonaws.com');
const eastOther = host('999999999999.dkr.ecr.us-east-1.amazonaws.com');

const tenants = settings(`
rules:
  - name: team-a
    namespaces: {names: [team-a, team-a-*]}
    roleArns: ["arn:aws:iam::111122223333:role/team-a-*"]
    registries: [{account: "111122223333", region: "us-*"}]
  - name: team-b
    namespaces: {names: [team-b]}
    roleArns: ["arn:aws:iam::111122223333:role/team-b-*"]
  - name: prod-labelled
    namespaces:
      selector: {matchLabels: {env: prod}}
    identities: [controller]
  - name: named-and-labelled
    namespaces:
      names: ["shared-*"]
      selector: {matchExpressions: [{key: tier, operator: In, values: [gold]}]}
    identities: [service-account]
`);

const identityAccounts = settings(`
rules:
  - name: team-a
    namespaces: {names: [team-a]}
    identityServiceAccounts: [puller, app-*]
  - name: team-b
    namespaces: {names: [team-b]}
`);

const controller: Identity = { mode: 'controller' };
const assume = (roleArn: string): Identity => ({ mode: 'assume-role', roleArn });
const web = (roleArn: string): Identity => ({ mode: 'service-account', roleArn, serviceAccount: 'default' });

describe('evaluatePolicy', () => {
  const cases: {
    name: string;
    settings: Settings;
    namespace: NamespaceFacts;
    identity: Identity;
    registries: readonly RegistryHost[];
    expect: Decision;
  }[] = [
    {
      name: 'with no rules, everything the installation enables is allowed',
      settings: settings(''),
      namespace: { name: 'anything' },
      identity: assume(roleB),
      registries: [eastOther],
      expect: { allowed: true },
    },
    {
      name: 'an identity mode the installation disabled is denied before any rule',
      settings: settings('identities: [controller]'),
      namespace: { name: 'team-a' },
      identity: web(roleA),
      registries: [eastA],
      expect: { allowed: false, reason: 'identity mode service-account is not enabled (config: identities)' },
    },
    {
      name: 'team-a using its own role for its own registry is allowed by rule team-a',
      settings: tenants,
      namespace: { name: 'team-a' },
      identity: assume(roleA),
      registries: [eastA],
      expect: { allowed: true, rule: 'team-a' },
    },
    {
      name: 'a namespace matching a name glob is governed by that rule',
      settings: tenants,
      namespace: { name: 'team-a-dev' },
      identity: web(roleA),
      registries: [eastA],
      expect: { allowed: true, rule: 'team-a' },
    },
    {
      name: "the confused deputy: namespace team-b naming team-a's role is denied, and the reason names rule team-b",
      settings: tenants,
      namespace: { name: 'team-b' },
      identity: assume(roleA),
      registries: [eastA],
      expect: { allowed: false, rule: 'team-b', reason: `rule team-b: role ${roleA} is not allowed` },
    },
    {
      name: "the confused deputy through a ServiceAccount's IRSA role is denied as well",
      settings: tenants,
      namespace: { name: 'team-b' },
      identity: web(roleA),
      registries: [eastA],
      expect: { allowed: false, rule: 'team-b', reason: `rule team-b: role ${roleA} is not allowed` },
    },
    {
      name: 'a role glob does not match a role with the same prefix in another account',
      settings: tenants,
      namespace: { name: 'team-a' },
      identity: assume('arn:aws:iam::444455556666:role/team-a-puller'),
      registries: [eastA],
      expect: { allowed: false, rule: 'team-a', reason: 'rule team-a: role arn:aws:iam::444455556666:role/team-a-puller is not allowed' },
    },
    {
      name: 'the controller identity needs no role, so role patterns do not apply to it',
      settings: tenants,
      namespace: { name: 'team-b' },
      identity: controller,
      registries: [eastOther],
      expect: { allowed: true, rule: 'team-b' },
    },
    {
      name: "a registry in a region outside the rule's patterns is denied and named",
      settings: tenants,
      namespace: { name: 'team-a' },
      identity: assume(roleA),
      registries: [eastA, westA],
      expect: { allowed: false, rule: 'team-a', reason: `rule team-a: registry ${westA.host} is not allowed` },
    },
    {
      name: "a registry in an account outside the rule's patterns is denied",
      settings: tenants,
      namespace: { name: 'team-a' },
      identity: controller,
      registries: [eastOther],
      expect: { allowed: false, rule: 'team-a', reason: `rule team-a: registry ${eastOther.host} is not allowed` },
    },
    {
      name: 'a namespace no rule matches is denied, naming the namespace',
      settings: tenants,
      namespace: { name: 'team-c' },
      identity: controller,
      registries: [eastA],
      expect: { allowed: false, reason: 'no policy rule matches namespace team-c' },
    },
    {
      name: 'a selector rule matches by labels, and its identity list denies other modes',
      settings: tenants,
      namespace: { name: 'payments', labels: { env: 'prod' } },
      identity: assume(roleA),
      registries: [eastA],
      expect: { allowed: false, rule: 'prod-labelled', reason: 'rule prod-labelled: identity mode assume-role is not allowed (allowed: controller)' },
    },
    {
      name: 'the first matching rule decides, even when a later rule would allow',
      settings: tenants,
      namespace: { name: 'team-a', labels: { env: 'prod' } },
      identity: assume(roleA),
      registries: [eastA],
      expect: { allowed: true, rule: 'team-a' },
    },
    {
      name: 'a rule with names and a selector needs both to match (name only: no match)',
      settings: tenants,
      namespace: { name: 'shared-tools', labels: { tier: 'silver' } },
      identity: web(roleA),
      registries: [eastA],
      expect: { allowed: false, reason: 'no policy rule matches namespace shared-tools' },
    },
    {
      name: 'a rule with names and a selector matches when both do',
      settings: tenants,
      namespace: { name: 'shared-tools', labels: { tier: 'gold' } },
      identity: web(roleA),
      registries: [eastA],
      expect: { allowed: true, rule: 'named-and-labelled' },
    },
    {
      name: 'a rule with an empty identity list allows no mode at all',
      settings: settings('rules: [{name: locked, namespaces: {names: ["*"]}, identities: []}]'),
      namespace: { name: 'x' },
      identity: controller,
      registries: [eastA],
      expect: { allowed: false, rule: 'locked', reason: 'rule locked: identity mode controller is not allowed (allowed: none)' },
    },
    {
      name: 'an empty roleArns list allows no role',
      settings: settings('rules: [{name: no-roles, namespaces: {names: ["*"]}, roleArns: []}]'),
      namespace: { name: 'x' },
      identity: assume(roleA),
      registries: [eastA],
      expect: { allowed: false, rule: 'no-roles', reason: `rule no-roles: role ${roleA} is not allowed` },
    },
    {
      name: 'a ServiceAccount the rule names may serve as the identity',
      settings: identityAccounts,
      namespace: { name: 'team-a' },
      identity: { mode: 'service-account', roleArn: roleA, serviceAccount: 'app-web' },
      registries: [eastA],
      expect: { allowed: true, rule: 'team-a' },
    },
    {
      name: 'a ServiceAccount the rule does not name may not lend its identity (a CI push role stays out of reach)',
      settings: identityAccounts,
      namespace: { name: 'team-a' },
      identity: { mode: 'service-account', roleArn: roleA, serviceAccount: 'ci-push' },
      registries: [eastA],
      expect: {
        allowed: false,
        rule: 'team-a',
        reason: 'rule team-a: ServiceAccount ci-push may not serve as an identity (identityServiceAccounts: puller, app-*)',
      },
    },
    {
      name: 'identityServiceAccounts does not limit the other identity modes',
      settings: identityAccounts,
      namespace: { name: 'team-a' },
      identity: assume(roleA),
      registries: [eastA],
      expect: { allowed: true, rule: 'team-a' },
    },
    {
      name: 'a rule without identityServiceAccounts lets any ServiceAccount serve as the identity',
      settings: identityAccounts,
      namespace: { name: 'team-b' },
      identity: { mode: 'service-account', roleArn: roleB, serviceAccount: 'ci-push' },
      registries: [eastA],
      expect: { allowed: true, rule: 'team-b' },
    },
    {
      name: 'an empty identityServiceAccounts list lets no ServiceAccount serve',
      settings: settings('rules: [{name: none, namespaces: {names: ["*"]}, identityServiceAccounts: []}]'),
      namespace: { name: 'x' },
      identity: web(roleA),
      registries: [eastA],
      expect: { allowed: false, rule: 'none', reason: 'rule none: ServiceAccount default may not serve as an identity (identityServiceAccounts: none)' },
    },
    {
      name: 'with no policy in force under --require-policy, everything is denied with the reason, before any rule',
      settings: denyAllSettings('no policy in force: --require-policy and ConfigMap kube-ecrlogin/kube-ecrlogin-config is missing'),
      namespace: { name: 'team-a' },
      identity: controller,
      registries: [eastA],
      expect: { allowed: false, reason: 'no policy in force: --require-policy and ConfigMap kube-ecrlogin/kube-ecrlogin-config is missing' },
    },
    {
      name: 'an account glob with ? matches one digit',
      settings: settings('rules: [{name: r, namespaces: {names: ["*"]}, registries: [{account: "11112222333?"}]}]'),
      namespace: { name: 'x' },
      identity: controller,
      registries: [eastA],
      expect: { allowed: true, rule: 'r' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(evaluatePolicy(c.settings, c.namespace, c.identity, c.registries), c.expect));
  }
});

describe('namespaceMatches', () => {
  it('a rule with neither names nor a selector matches nothing', () => {
    assert.equal(namespaceMatches({ name: 'empty', namespaces: {} }, { name: 'x' }), false);
  });
  it('a selector rule does not match a namespace without labels', () => {
    const rule = tenants.rules[2]!;
    assert.equal(namespaceMatches(rule, { name: 'x' }), false);
  });
});
