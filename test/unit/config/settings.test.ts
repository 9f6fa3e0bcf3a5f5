// config.yaml: parsed once into frozen, validated settings, or every error with the path it is at.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { defaultSettings, identityModes, parseSettings, type Settings } from '../../../src/config/settings.ts';

const numRuns = 2_000;
const role = 'arn:aws:iam::111122223333:role/team-a-puller';

function ok(text: string): Settings {
  const result = parseSettings(text);
  if (!result.ok) assert.fail(`expected valid settings, got:\n  ${result.error.join('\n  ')}`);
  return result.value;
}

function errors(text: string): readonly string[] {
  const result = parseSettings(text);
  if (result.ok) assert.fail(`expected errors, got ${JSON.stringify(result.value)}`);
  return result.error;
}

function isDeepFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeepFrozen);
}

describe('parseSettings: valid documents', () => {
  const defaults: { name: string; text: string }[] = [
    { name: 'an empty document means the defaults', text: '' },
    { name: 'a document of only comments means the defaults', text: '# nothing here\n' },
    { name: 'a document marker alone means the defaults', text: '---\n' },
    { name: 'a null document means the defaults', text: '~' },
    { name: 'an empty mapping means the defaults', text: '{}' },
    { name: 'empty sections mean the defaults', text: 'refresh: {}\ndefaults: {}\naws: {}\nrules: []\n' },
    { name: 'a null rules list means no rules', text: 'rules:\n' },
  ];
  for (const c of defaults) {
    it(c.name, () => assert.deepEqual(ok(c.text), defaultSettings));
  }

  it('reads every setting', () => {
    const settings = ok(`
logLevel: debug
refresh:
  margin: 25%
  jitter: 5%
  minInterval: 30s
defaults:
  secretName: regcred
  roleArn: ${role}
aws:
  externalId: tenant-42
  sessionDurationSeconds: 900
  sessionScope: shared
identities: [controller, assume-role]
rules:
  - name: team-a
    namespaces:
      names: [team-a, team-a-*]
      selector:
        matchLabels: {team: a}
    registries:
      - account: "111122223333"
        region: us-*
    roleArns: ["arn:aws:iam::111122223333:role/team-a-*"]
    identities: [assume-role]
    identityServiceAccounts: [puller, app-*]
  - name: everyone-else
    namespaces:
      names: ["*"]
    identities: []
`);
    assert.deepEqual(settings, {
      logLevel: 'debug',
      refresh: { margin: { fraction: 0.25 }, jitter: 0.05, minInterval: 30_000 },
      defaults: { secretName: 'regcred', roleArn: role },
      aws: { externalId: 'tenant-42', sessionDurationSeconds: 900, sessionScope: 'shared' },
      identities: ['controller', 'assume-role'],
      rules: [
        {
          name: 'team-a',
          namespaces: { names: ['team-a', 'team-a-*'], selector: { requirements: [{ key: 'team', operator: 'In', values: ['a'] }] } },
          registries: [{ account: '111122223333', region: 'us-*' }],
          roleArns: ['arn:aws:iam::111122223333:role/team-a-*'],
          identities: ['assume-role'],
          identityServiceAccounts: ['puller', 'app-*'],
        },
        { name: 'everyone-else', namespaces: { names: ['*'] }, identities: [] },
      ],
    });
    assert.ok(isDeepFrozen(settings), 'the settings are frozen all the way down');
  });

  const refresh: { name: string; text: string; expect: Settings['refresh'] }[] = [
    { name: 'a margin as a duration', text: 'refresh: {margin: 6h}', expect: { ...defaultSettings.refresh, margin: { ms: 21_600_000 } } },
    { name: 'a fractional percentage margin', text: 'refresh: {margin: 12.5%}', expect: { ...defaultSettings.refresh, margin: { fraction: 0.125 } } },
    { name: 'no jitter', text: 'refresh: {jitter: 0%}', expect: { ...defaultSettings.refresh, jitter: 0 } },
    { name: 'the largest jitter', text: 'refresh: {jitter: 50%}', expect: { ...defaultSettings.refresh, jitter: 0.5 } },
    { name: 'the shortest minimum interval', text: 'refresh: {minInterval: 1s}', expect: { ...defaultSettings.refresh, minInterval: 1_000 } },
    { name: 'a long minimum interval', text: 'refresh: {minInterval: 6h}', expect: { ...defaultSettings.refresh, minInterval: 21_600_000 } },
  ];
  for (const c of refresh) {
    it(`accepts ${c.name}`, () => assert.deepEqual(ok(c.text).refresh, c.expect));
  }

  it('an unquoted __proto__ key is an unknown setting, not a prototype', () => {
    assert.deepEqual(errors('__proto__: {logLevel: debug}'), ['__proto__: unknown setting (known: logLevel, refresh, defaults, aws, identities, rules)']);
  });
});

describe('parseSettings: invalid documents', () => {
  const cases: { name: string; text: string; errors: (string | RegExp)[] }[] = [
    { name: "text that is not YAML is refused with the parser's first line", text: 'rules: [', errors: [/^config\.yaml is not valid YAML: /] },
    { name: 'a duplicate key is refused', text: 'logLevel: info\nlogLevel: debug\n', errors: [/^config\.yaml is not valid YAML: .*[Uu]nique/] },
    { name: 'a list document is refused', text: '- a\n', errors: ['config.yaml: must be a mapping, not a list'] },
    { name: 'a scalar document is refused', text: 'hello', errors: ['config.yaml: must be a mapping, not a string'] },
    {
      name: 'an unknown top-level setting is named with the known ones',
      text: 'loglevel: info',
      errors: ['loglevel: unknown setting (known: logLevel, refresh, defaults, aws, identities, rules)'],
    },
    { name: 'an unknown log level is refused', text: 'logLevel: trace', errors: ['logLevel: "trace" is not one of error, warn, info, debug'] },
    { name: 'a log level that is a number is refused', text: 'logLevel: 3', errors: [/^logLevel: a number is not one of/] },
    { name: 'a refresh that is a list is refused', text: 'refresh: []', errors: ['refresh: must be a mapping, not a list'] },
    {
      name: 'an unknown refresh setting is named',
      text: 'refresh: {margn: 50%}',
      errors: ['refresh.margn: unknown setting (known: margin, jitter, minInterval)'],
    },
    {
      name: 'a 100% margin is refused',
      text: 'refresh: {margin: 100%}',
      errors: [/^refresh\.margin: "100%" is neither a share of the lifetime between 0% and 100%/],
    },
    { name: 'a 0% margin is refused', text: 'refresh: {margin: 0%}', errors: [/^refresh\.margin: "0%" is neither/] },
    { name: 'a zero duration margin is refused', text: 'refresh: {margin: 0s}', errors: [/^refresh\.margin: "0s" is neither/] },
    { name: 'a margin in words is refused', text: 'refresh: {margin: soon}', errors: [/^refresh\.margin: "soon" is neither/] },
    { name: 'a margin as a bare number is refused', text: 'refresh: {margin: 0.5}', errors: ['refresh.margin: must be a string, not a number'] },
    {
      name: 'a jitter above 50% is refused',
      text: 'refresh: {jitter: 51%}',
      errors: ['refresh.jitter: "51%" is not a share between 0% and 50% of the margin'],
    },
    { name: 'a jitter without a percent sign is refused', text: 'refresh: {jitter: "0.1"}', errors: [/^refresh\.jitter: "0\.1" is not a share/] },
    {
      name: 'a minimum interval under a second is refused',
      text: 'refresh: {minInterval: 500ms}',
      errors: [/^refresh\.minInterval: "500ms" is not a duration of at least 1000 ms/],
    },
    {
      name: 'a minimum interval as long as the 12-hour token lifetime is refused (tokens would expire before they may be refreshed)',
      text: 'refresh: {minInterval: 12h}',
      errors: [/^refresh\.minInterval: "12h" is not a duration .*under 12h/],
    },
    { name: 'a minimum interval of a day is refused', text: 'refresh: {minInterval: 1d}', errors: [/^refresh\.minInterval: "1d"/] },
    {
      name: 'an invalid default Secret name is refused',
      text: 'defaults: {secretName: Regcred}',
      errors: [/^defaults\.secretName: "Regcred" is not a valid name/],
    },
    {
      name: 'a default Secret name longer than 200 characters is refused',
      text: `defaults: {secretName: ${'a'.repeat(201)}}`,
      errors: ['defaults.secretName: is longer than 200 characters'],
    },
    {
      name: 'an invalid default role is refused',
      text: 'defaults: {roleArn: "arn:aws:iam::1:role/x"}',
      errors: [/^defaults\.roleArn: .* is not an IAM role ARN/],
    },
    { name: 'a one-character external id is refused', text: 'aws: {externalId: x}', errors: [/^aws\.externalId: must be 2 to 1224 characters/] },
    { name: 'an external id with a space is refused', text: 'aws: {externalId: "a b"}', errors: [/^aws\.externalId: must be 2 to 1224 characters/] },
    {
      name: 'a session shorter than 15 minutes is refused',
      text: 'aws: {sessionDurationSeconds: 899}',
      errors: ['aws.sessionDurationSeconds: must be a whole number of seconds from 900 to 43200'],
    },
    {
      name: 'a session longer than 12 hours is refused',
      text: 'aws: {sessionDurationSeconds: 43201}',
      errors: [/^aws\.sessionDurationSeconds: must be a whole number/],
    },
    {
      name: 'a session scope other than object or shared is refused',
      text: 'aws: {sessionScope: per-namespace}',
      errors: ['aws.sessionScope: "per-namespace" is not one of object, shared'],
    },
    {
      name: 'a session duration as a string is refused',
      text: 'aws: {sessionDurationSeconds: "3600"}',
      errors: [/^aws\.sessionDurationSeconds: must be a whole number/],
    },
    {
      name: 'a fractional session duration is refused',
      text: 'aws: {sessionDurationSeconds: 1000.5}',
      errors: [/^aws\.sessionDurationSeconds: must be a whole number/],
    },
    {
      name: 'identities as a string is refused',
      text: 'identities: controller',
      errors: ['identities: must be a list of: controller, assume-role, service-account'],
    },
    {
      name: 'an unknown identity mode is refused',
      text: 'identities: [controller, irsa]',
      errors: ['identities: "irsa" is not one of controller, assume-role, service-account'],
    },
    { name: 'rules as a mapping is refused', text: 'rules: {a: 1}', errors: ['rules: must be a list'] },
    { name: 'a rule that is a string is refused', text: 'rules: [a]', errors: ['rules[0]: must be a mapping, not a string'] },
    { name: 'a rule without a name is refused', text: 'rules: [{namespaces: {names: [a]}}]', errors: [/^rules\[0\]\.name: must be a string/] },
    {
      name: 'two rules with one name are refused',
      text: 'rules: [{name: a, namespaces: {names: [x]}}, {name: a, namespaces: {names: [y]}}]',
      errors: ['rules[1].name: "a" is used by two rules'],
    },
    { name: 'a rule without namespaces is refused', text: 'rules: [{name: a}]', errors: [/^rules\[0\]\.namespaces: must be a mapping/] },
    {
      name: 'a rule with empty namespaces is refused',
      text: 'rules: [{name: a, namespaces: {}}]',
      errors: ['rules[0].namespaces: needs names, a selector, or both'],
    },
    {
      name: 'an unknown rule field is named',
      text: 'rules: [{name: a, namespaces: {names: [x]}, roles: []}]',
      errors: ['rules[0].roles: unknown setting (known: name, namespaces, registries, roleArns, identities, identityServiceAccounts)'],
    },
    {
      name: 'identity ServiceAccounts as a string are refused',
      text: 'rules: [{name: a, namespaces: {names: [x]}, identityServiceAccounts: puller}]',
      errors: ['rules[0].identityServiceAccounts: must be a list of non-empty strings (globs: * and ?)'],
    },
    {
      name: 'a bad selector is refused with its path',
      text: 'rules: [{name: a, namespaces: {selector: {matchLabels: [x]}}}]',
      errors: ['rules[0].namespaces.selector: matchLabels must be a mapping', 'rules[0].namespaces: needs names, a selector, or both'],
    },
    {
      name: 'an unquoted account number is refused with a hint to quote it',
      text: 'rules: [{name: a, namespaces: {names: [x]}, registries: [{account: 111122223333}]}]',
      errors: ['rules[0].registries[0].account: must be a string, not a number'],
    },
    {
      name: 'an account that is not digits is refused',
      text: 'rules: [{name: a, namespaces: {names: [x]}, registries: [{account: abc}]}]',
      errors: [/^rules\[0\]\.registries\[0\]\.account: "abc" is not a 12-digit account or a glob of one \(quote it in YAML\)/],
    },
    {
      name: 'registries as a mapping is refused',
      text: 'rules: [{name: a, namespaces: {names: [x]}, registries: {account: "1"}}]',
      errors: ['rules[0].registries: must be a list of {account, region} patterns'],
    },
    {
      name: 'an empty role pattern is refused',
      text: 'rules: [{name: a, namespaces: {names: [x]}, roleArns: [""]}]',
      errors: ['rules[0].roleArns: must be a list of non-empty strings (globs: * and ?)'],
    },
    {
      name: 'namespace names that are not strings are refused',
      text: 'rules: [{name: a, namespaces: {names: [1]}}]',
      errors: ['rules[0].namespaces.names: must be a list of non-empty strings (globs: * and ?)', 'rules[0].namespaces: needs names, a selector, or both'],
    },
    {
      name: 'a YAML set where a mapping belongs is refused, not read as an empty mapping',
      text: 'refresh: !!set {margin}',
      errors: [/^refresh: must be a mapping/],
    },
    {
      name: 'an ordered map where a mapping belongs is refused, not read as an empty mapping',
      text: 'refresh: !!omap [{margin: 10%}]',
      errors: [/^refresh: must be a mapping/],
    },
    { name: 'a YAML set as the document is refused', text: '!!set {logLevel}', errors: [/^config\.yaml: must be a mapping/] },
    {
      name: 'binary data where a string belongs is refused',
      text: 'logLevel: !!binary aW5mbw==',
      errors: [/^logLevel: .* is not one of error, warn, info, debug/],
    },
    {
      name: 'an unknown key with a space is quoted in the path',
      text: '"log level": info',
      errors: ['"log level": unknown setting (known: logLevel, refresh, defaults, aws, identities, rules)'],
    },
    {
      name: 'an unknown key with a control character is quoted and escaped',
      text: 'refresh: {"a\\u0007b": 1}',
      errors: ['refresh."a\\u0007b": unknown setting (known: margin, jitter, minInterval)'],
    },
    { name: 'a 64 KiB unknown key is quoted cut to a readable length', text: `{${'k'.repeat(65_536)}: 1}`, errors: [/^"k{80}…": unknown setting/] },
    {
      name: 'an alias bomb is refused, not expanded',
      text: `a: &a [x, x, x, x, x, x, x, x, x, x]\n${Array.from(
        { length: 12 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
            .fill(`*${String.fromCharCode(97 + i)}`)
            .join(', ')}]`,
      ).join('\n')}\n`,
      errors: [/^config\.yaml is not valid YAML: /],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = errors(c.text);
      assert.equal(got.length, c.errors.length, `errors: ${JSON.stringify(got)}`);
      c.errors.forEach((expected, i) => {
        if (typeof expected === 'string') assert.equal(got[i], expected);
        else assert.match(got[i] ?? '', expected);
      });
    });
  }

  it('collects every error in one pass', () => {
    const got = errors('logLevel: trace\nrefresh: {jitter: 90%}\naws: {sessionDurationSeconds: 1}\nextra: 1\n');
    assert.equal(got.length, 4, JSON.stringify(got));
    assert.ok(got.some((e) => e.startsWith('logLevel:')));
    assert.ok(got.some((e) => e.startsWith('refresh.jitter:')));
    assert.ok(got.some((e) => e.startsWith('aws.sessionDurationSeconds:')));
    assert.ok(got.some((e) => e.startsWith('extra:')));
  });
});

// Generators.

const yamlish = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.constantFrom(...'abcdefgilmnorstuvxy: -[]{},#&*!|>\'"%\n\t0123456789.'.split('')) }),
  fc
    .array(
      fc
        .tuple(
          fc.constantFrom('', '  ', '    ', '- ', '  - '),
          fc.constantFrom(
            'logLevel',
            'refresh',
            'margin',
            'jitter',
            'minInterval',
            'defaults',
            'secretName',
            'roleArn',
            'aws',
            'externalId',
            'sessionDurationSeconds',
            'identities',
            'rules',
            'name',
            'namespaces',
            'names',
            'selector',
            'matchLabels',
            'registries',
            'account',
            'region',
            'roleArns',
            'x',
          ),
          fc.constantFrom(
            '',
            ' debug',
            ' 50%',
            ' 6h',
            ' 10s',
            ' [a, b]',
            ' {}',
            ' []',
            ' "111122223333"',
            ' 900',
            ' controller',
            ` ${role}`,
            ' ~',
            ' &a x',
            ' *a',
            ' !!set {a}',
            ' 0x10',
            ' .inf',
          ),
        )
        .map(([indent, key, value]) => `${indent}${key}:${value}`),
      { maxLength: 12 },
    )
    .map((lines) => lines.join('\n')),
  fc.nat({ max: 1_000 }).map((n) => `logLevel: ${'x'.repeat(65_536 + n)}`),
  fc.nat({ max: 1_000 }).map((n) => 'a'.repeat(65_536 + n)),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.integer({ min: 0, max: 31 }).map((code) => String.fromCharCode(code)) }),
);

const knownKey = fc.constantFrom(
  'logLevel',
  'refresh',
  'defaults',
  'aws',
  'identities',
  'rules',
  'margin',
  'jitter',
  'minInterval',
  'secretName',
  'roleArn',
  'name',
  'namespaces',
  'names',
  'registries',
  'account',
  'region',
);
const leaf = fc.oneof(
  fc.constantFrom('info', 'debug', '50%', '6h', '1s', '10%', 'controller', 'service-account', '111122223333', 'team-*', role, '', null, 900, 43_200, true),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
);
const { tree } = fc.letrec<{ tree: unknown }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('tree'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(knownKey, fc.string()), tie('tree'), { maxKeys: 5 }),
  ),
}));

/** A config document that is valid by construction, with what it should parse to. */
const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
const validConfig = fc.record({
  logLevel: fc.constantFrom('error', 'warn', 'info', 'debug'),
  refresh: fc.record({
    margin: fc.oneof(
      fc.integer({ min: 1, max: 99 }).map((n) => `${n}%`),
      fc.integer({ min: 1, max: 11 }).map((n) => `${n}h`),
    ),
    jitter: fc.integer({ min: 0, max: 50 }).map((n) => `${n}%`),
    minInterval: fc.integer({ min: 1, max: 3_600 }).map((n) => `${n}s`),
  }),
  defaults: fc.record({ secretName: label, roleArn: fc.constant(role) }, { requiredKeys: ['secretName'] }),
  aws: fc.record(
    { externalId: fc.stringMatching(/^[\w+=,.@:/-]{2,40}$/), sessionDurationSeconds: fc.integer({ min: 900, max: 43_200 }) },
    { requiredKeys: [] },
  ),
  identities: fc.subarray([...identityModes]),
  rules: fc.uniqueArray(
    fc.record(
      {
        name: label,
        namespaces: fc.record({
          names: fc.array(
            fc.oneof(
              label,
              label.map((l) => `${l}-*`),
            ),
            { minLength: 1, maxLength: 3 },
          ),
        }),
        registries: fc.array(fc.record({ account: fc.stringMatching(/^[\d*?]{1,12}$/), region: fc.constantFrom('*', 'us-*', 'eu-west-1') }), { maxLength: 2 }),
        roleArns: fc.array(fc.constantFrom('arn:aws:iam::111122223333:role/*', role), { maxLength: 2 }),
        identities: fc.subarray([...identityModes]),
      },
      { requiredKeys: ['name', 'namespaces'] },
    ),
    { selector: (rule) => rule.name, maxLength: 4 },
  ),
});

function checkResult(text: string): void {
  const result = parseSettings(text);
  if (result.ok) {
    assert.ok(isDeepFrozen(result.value));
    assert.ok(identityModes.includes(result.value.identities[0] ?? 'controller'));
  } else {
    assert.ok(result.error.length > 0, 'a refusal says why');
    for (const error of result.error) {
      assert.match(error, /^(config\.yaml is not valid YAML: \S|(config\.yaml|"[^\n]*"|[\w.[\]"-]+(\.".*")?): \S)/s, 'an error names a path and a reason');
      assert.ok(error.length < 2_000, 'an error quotes only a cut of the input');
    }
  }
}

describe('parseSettings properties', () => {
  it('never throws on YAML-ish text, huge text, binary or control characters', () => {
    fc.assert(fc.property(yamlish, checkResult), { numRuns });
  });

  it('never throws on any JS value serialized with the yaml package', () => {
    fc.assert(
      fc.property(tree, (value) => checkResult(stringify(value))),
      { numRuns },
    );
  });

  it('a config valid by construction parses to what it says', () => {
    fc.assert(
      fc.property(
        validConfig.map((c) => JSON.parse(JSON.stringify(c)) as typeof c),
        (config) => {
          const settings = ok(stringify(config));
          assert.equal(settings.logLevel, config.logLevel);
          assert.deepEqual(settings.identities, config.identities);
          assert.equal(settings.defaults.secretName, config.defaults.secretName);
          assert.equal(settings.aws.sessionDurationSeconds, config.aws.sessionDurationSeconds ?? 3_600);
          assert.equal(settings.refresh.minInterval, Number(config.refresh.minInterval.slice(0, -1)) * 1_000);
          assert.deepEqual(
            settings.rules.map((rule) => rule.name),
            config.rules.map((rule) => rule.name),
          );
          for (const [i, rule] of config.rules.entries()) {
            assert.deepEqual(settings.rules[i]?.namespaces.names, rule.namespaces.names);
            assert.deepEqual(settings.rules[i]?.registries, rule.registries);
            assert.deepEqual(settings.rules[i]?.identities, rule.identities);
          }
        },
      ),
      { numRuns },
    );
  });

  it('huge, non-ASCII and control-character documents are refused with a clear message', () => {
    const bad = fc.oneof(
      fc.nat({ max: 1_000 }).map((n) => 'x'.repeat(65_536 + n)),
      fc.string({ unit: 'grapheme', minLength: 1 }).filter((t) => /\P{ASCII}/u.test(t) && /^[^\s#:\-?[\]{}&*!|>'"%@`,]+$/u.test(t)),
      fc
        .integer({ min: 0, max: 31 })
        .filter((c) => ![9, 10, 13].includes(c))
        .map((c) => `logLevel: info${String.fromCharCode(c)}`),
    );
    fc.assert(
      fc.property(bad, (text) => {
        const got = errors(text);
        assert.ok(got.length >= 1);
        for (const e of got) assert.match(e, /^config\.yaml( is not valid YAML: .+|: must be a mapping, not .+)$|^logLevel: ".*" is not one of/s);
        for (const e of got) assert.ok(e.length < 400, e.slice(0, 100));
      }),
      { numRuns },
    );
  });
});
