// Bad input, property-based, where the existing property tests stop short: the policy rules of
// config.yaml built from rule-shaped junk (test/unit/config/settings.test.ts throws generic YAML at the
// whole document), evaluating any accepted policy, and the .dockerconfigjson builder on invalid logins
// (test/unit/dockerconfig.test.ts generates valid ones only). Never an uncaught exception; every refusal
// names where and why.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { globMatches } from '../../../src/config/selector.ts';
import { parseSettings, type Rule } from '../../../src/config/settings.ts';
import { buildDockerConfig, parseDockerConfig, type RegistryLogin } from '../../../src/dockerconfig.ts';
import { evaluatePolicy, namespaceMatches, type Identity } from '../../../src/policy.ts';
import { parseRegistryHost, type RegistryHost } from '../../../src/registry.ts';

const numRuns = 3_000;

const junk = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ unit: 'grapheme' }),
  fc.nat({ max: 500 }).map((n) => 'x'.repeat(4_000 + n)),
);
const glob = fc.oneof(fc.constantFrom('team-a', 'team-*', '*', 'a?c', '', 'ünïcode-*'), fc.string(), fc.integer());
const labelKey = fc.oneof(fc.constantFrom('tenant', 'env', 'example.com/team', 'Bad Key', ''), fc.string());
const selector = fc.oneof(
  fc.record(
    { matchLabels: fc.oneof(fc.dictionary(labelKey, fc.oneof(fc.constantFrom('a', 'prod', ''), fc.string(), fc.integer()), { maxKeys: 3 }), junk) },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      matchExpressions: fc.oneof(
        fc.array(
          fc.record(
            {
              key: labelKey,
              operator: fc.oneof(fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist', 'in', 'Bogus'), junk),
              values: fc.oneof(fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 3 }), junk),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
        junk,
      ),
    },
    { requiredKeys: [] },
  ),
  junk,
);
const junkRule = fc.record(
  {
    name: fc.oneof(fc.constantFrom('team-a', 'team-b', ''), junk),
    namespaces: fc.oneof(fc.record({ names: fc.oneof(fc.array(glob, { maxLength: 3 }), junk), selector }, { requiredKeys: [] }), junk),
    registries: fc.oneof(
      fc.array(
        fc.record(
          {
            account: fc.oneof(fc.constantFrom('111122223333', '*', '1111????3333', 'abc', '1234567890123'), junk),
            region: fc.oneof(fc.constantFrom('us-*', 'eu-west-1', '*'), junk),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
      junk,
    ),
    roleArns: fc.oneof(fc.array(fc.oneof(fc.constantFrom('arn:aws:iam::111122223333:role/team-*', ''), glob), { maxLength: 3 }), junk),
    identities: fc.oneof(fc.array(fc.oneof(fc.constantFrom('controller', 'assume-role', 'service-account', 'Controller'), junk), { maxLength: 4 }), junk),
    nmespaces: junk,
  },
  { requiredKeys: [] },
);
/** A rule valid by construction, so that accepted policies with rules get evaluated too. */
const validRule = fc.record(
  {
    name: fc.constantFrom('team-a', 'team-b', 'tenants', 'rest'),
    namespaces: fc.oneof(
      fc.record({ names: fc.array(fc.constantFrom('team-a', 'team-*', '*', 'kube-?ystem'), { minLength: 1, maxLength: 2 }) }),
      fc.record({
        selector: fc.record({ matchLabels: fc.dictionary(fc.constantFrom('tenant', 'env'), fc.constantFrom('a', 'b', 'prod'), { minKeys: 1, maxKeys: 2 }) }),
      }),
    ),
    registries: fc.array(fc.record({ account: fc.constantFrom('111122223333', '*', '4444????6666'), region: fc.constantFrom('us-*', 'eu-west-1', '*') }), {
      maxLength: 2,
    }),
    roleArns: fc.array(fc.constantFrom('arn:aws:iam::111122223333:role/team-*', '*'), { minLength: 1, maxLength: 2 }),
    identities: fc.subarray(['controller', 'assume-role', 'service-account']),
  },
  { requiredKeys: ['name', 'namespaces'] },
);
const rules = fc.oneof(
  { weight: 3, arbitrary: fc.array(fc.oneof({ weight: 4, arbitrary: validRule }, { weight: 1, arbitrary: junkRule }), { maxLength: 4 }) },
  { weight: 1, arbitrary: junk },
);

const hosts = [
  '111122223333.dkr.ecr.us-east-1.amazonaws.com',
  '444455556666.dkr.ecr.eu-west-1.amazonaws.com',
  '111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn',
].map((text) => {
  const parsed = parseRegistryHost(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
});
const registries: fc.Arbitrary<RegistryHost[]> = fc.subarray(hosts, { minLength: 1 });
const identity: fc.Arbitrary<Identity> = fc.oneof(
  fc.constant({ mode: 'controller' } as const),
  fc.constantFrom('arn:aws:iam::111122223333:role/team-a', 'arn:aws:iam::444455556666:role/x').map((roleArn) => ({ mode: 'assume-role', roleArn }) as const),
  fc.constant({ mode: 'service-account', roleArn: 'arn:aws:iam::111122223333:role/team-a', serviceAccount: 'default' } as const),
);
const namespace = fc.record({
  name: fc.oneof(fc.constantFrom('team-a', 'team-b', 'kube-system'), fc.string()),
  labels: fc.dictionary(fc.constantFrom('tenant', 'env'), fc.constantFrom('a', 'b', 'prod')),
});

/** What a rule's own lists say of a request: each list, when present, must allow it. */
function rulePermits(rule: Rule, id: Identity, asked: readonly RegistryHost[]): boolean {
  const { identities, roleArns, identityServiceAccounts, registries: patterns } = rule;
  if (identities !== undefined && !identities.includes(id.mode)) return false;
  if (id.mode !== 'controller' && roleArns !== undefined && !roleArns.some((p) => globMatches(p, id.roleArn))) return false;
  if (id.mode === 'service-account' && identityServiceAccounts !== undefined && !identityServiceAccounts.some((p) => globMatches(p, id.serviceAccount)))
    return false;
  return patterns === undefined || asked.every((h) => patterns.some((p) => globMatches(p.account, h.account) && globMatches(p.region, h.region)));
}

describe('policy rules from rule-shaped junk', () => {
  it('never throw: a refusal names a path under rules and says why; an accepted policy decides any request by its first matching rule, naming it', () => {
    const seen = { refused: 0, noRules: 0, noRuleMatches: 0, ruleAllows: 0, ruleDenies: 0 };
    fc.assert(
      fc.property(rules, namespace, identity, registries, (value, ns, id, hostsAsked) => {
        let text: string;
        try {
          text = stringify({ rules: value });
        } catch {
          return; // not representable as YAML at all
        }
        const result = parseSettings(text);
        if (!result.ok) {
          assert.ok(result.error.length > 0);
          for (const error of result.error) {
            assert.match(error, /^rules(\[\d+\])?[\w.[\]"-]*: \S/s, 'names a path under rules and a reason');
            assert.ok(error.length < 2_000, 'quotes only a cut of the input');
          }
          seen.refused++;
          return;
        }
        const { rules: accepted } = result.value;
        const decision = evaluatePolicy(result.value, ns, id, hostsAsked);
        if (accepted.length === 0) {
          seen.noRules++;
          assert.deepEqual(decision, { allowed: true }, 'no rules: everything allowed');
          return;
        }
        const first = accepted.find((rule) => namespaceMatches(rule, ns));
        if (first === undefined) {
          seen.noRuleMatches++;
          assert.deepEqual(decision, { allowed: false, reason: `no policy rule matches namespace ${ns.name}` });
          return;
        }
        assert.equal(decision.rule, first.name, 'the first rule whose namespaces match decides, and is named');
        assert.equal(decision.allowed, rulePermits(first, id, hostsAsked), JSON.stringify({ first, id, hosts: hostsAsked.map((h) => h.host) }));
        if (decision.allowed) seen.ruleAllows++;
        else {
          seen.ruleDenies++;
          const prefix = `rule ${first.name}: `;
          assert.ok(decision.reason.startsWith(prefix) && decision.reason.length > prefix.length, `says which rule refused and why: ${decision.reason}`);
        }
      }),
      { numRuns },
    );
    // Every kind of answer was put to the test, not only refusals (a rule allowing is the rarest, about 2 %).
    for (const [outcome, count] of Object.entries(seen)) assert.ok(count >= 10, `${outcome}: ${count} of ${numRuns}`);
  });
});

describe('the .dockerconfigjson builder on any logins', () => {
  const text = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary' }),
    fc.constantFrom('', ':', 'AWS', 'A:WS', '__proto__'),
    fc.nat({ max: 100 }).map((n) => 'h'.repeat(65_536 + n)),
  );
  const login: fc.Arbitrary<RegistryLogin> = fc.record({
    host: text,
    username: text,
    password: fc.oneof(
      text,
      fc.string({ minLength: 12 }).map((s) => `secret-${s}`),
    ),
  });

  it('never throws anything but an Error naming the registry and not the password; what it builds reads back', () => {
    fc.assert(
      fc.property(fc.array(login, { maxLength: 6 }), (logins) => {
        let json: string;
        try {
          json = buildDockerConfig(logins);
        } catch (error) {
          assert.ok(error instanceof Error && error.constructor === Error, `a plain Error, not ${String(error)}`);
          const refused = logins.find((l) => l.host === '' || l.username === '' || l.password === '' || l.username.includes(':'));
          assert.ok(refused !== undefined, `refused good logins: ${error.message}`);
          assert.ok(error.message.length > 0);
          assert.ok(
            logins.some((l) => error.message.includes(l.host === '' ? 'an unnamed registry' : l.host)),
            'names the registry',
          );
          for (const l of logins) {
            if (l.password.startsWith('secret-') && !l.host.includes(l.password)) assert.ok(!error.message.includes(l.password), 'no password');
          }
          return;
        }
        const parsed = parseDockerConfig(json);
        if (!parsed.ok) assert.fail(parsed.error);
        const back = parsed.value;
        // One entry per distinct host, the last login given for a host.
        const expected = new Map(logins.map((l) => [l.host, l]));
        assert.equal(back.length, expected.size);
        for (const entry of back) {
          const given = expected.get(entry.host);
          assert.deepEqual([entry.username, entry.password], [given?.username, given?.password]);
        }
      }),
      { numRuns },
    );
  });
});
