// The annotation API: what each annotation means on a Namespace and on a ServiceAccount, and the
// clear error each wrong value gets. Registries and role of one request are in one partition.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  annotations,
  describeSource,
  maxValueLength,
  parseAnnotations,
  type ParseResult,
  type Request,
  type Source,
  unknownKeys,
} from '../../src/annotations.ts';
import { dnsSubdomainProblem, roleArnPartition, roleArnProblem } from '../../src/validation.ts';

const numRuns = 2_000;

const east = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const west = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const role = 'arn:aws:iam::123456789012:role/team-a/puller';

const namespace: Source = { kind: 'Namespace', namespace: 'team-a', name: 'team-a' };
const serviceAccount: Source = { kind: 'ServiceAccount', namespace: 'team-a', name: 'builder' };

function request(result: ParseResult): Request {
  if (!result.ok || result.value === undefined) assert.fail(`expected a request, got ${JSON.stringify(result)}`);
  return result.value;
}

describe('parseAnnotations: valid requests', () => {
  const cases: {
    name: string;
    source: Source;
    values: Record<string, string>;
    expect: Partial<Request> & { hosts?: readonly string[] };
  }[] = [
    {
      name: 'a namespace naming one registry asks for it with the controller identity for its default ServiceAccount',
      source: namespace,
      values: { [annotations.server]: east },
      expect: { hosts: [east], identity: 'controller', identityServiceAccount: 'default', forServiceAccounts: { all: false, names: ['default'] } },
    },
    {
      name: 'a namespace with two regions gets both registries in the order written',
      source: namespace,
      values: { [annotations.server]: ` ${west} , ${east} ` },
      expect: { hosts: [west, east] },
    },
    {
      name: 'empty entries in the registry list are skipped',
      source: namespace,
      values: { [annotations.server]: `,${east},,` },
      expect: { hosts: [east] },
    },
    {
      name: 'a ServiceAccount asks for itself as the target and as its own identity',
      source: serviceAccount,
      values: { [annotations.server]: east },
      expect: { forServiceAccounts: { all: false, names: ['builder'] }, identityServiceAccount: 'builder' },
    },
    {
      name: 'a namespace may target every ServiceAccount with *',
      source: namespace,
      values: { [annotations.server]: east, [annotations.serviceAccounts]: ' * ' },
      expect: { forServiceAccounts: { all: true } },
    },
    {
      name: 'a namespace may target a list of ServiceAccounts',
      source: namespace,
      values: { [annotations.server]: east, [annotations.serviceAccounts]: 'default, builder,ci.runner' },
      expect: { forServiceAccounts: { all: false, names: ['default', 'builder', 'ci.runner'] } },
    },
    {
      name: 'a role ARN is kept, trimmed',
      source: namespace,
      values: { [annotations.server]: east, [annotations.roleArn]: ` ${role} ` },
      expect: { roleArn: role },
    },
    {
      name: 'a GovCloud role is accepted for GovCloud registries',
      source: namespace,
      values: { [annotations.server]: '123456789012.dkr.ecr.us-gov-west-1.amazonaws.com', [annotations.roleArn]: 'arn:aws-us-gov:iam::123456789012:role/x' },
      expect: { roleArn: 'arn:aws-us-gov:iam::123456789012:role/x' },
    },
    {
      name: 'a China role is accepted for China registries, standard and dual-stack',
      source: namespace,
      values: {
        [annotations.server]: '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn,123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn',
        [annotations.roleArn]: 'arn:aws-cn:iam::123456789012:role/x',
      },
      expect: { roleArn: 'arn:aws-cn:iam::123456789012:role/x' },
    },
    {
      name: 'ECR Public alone is a request',
      source: namespace,
      values: { [annotations.server]: 'public.ecr.aws' },
      expect: { hosts: ['public.ecr.aws'] },
    },
    {
      name: 'ECR Public beside private registries of several accounts and regions is one request, with a role of the aws partition',
      source: namespace,
      values: { [annotations.server]: `${east}, public.ecr.aws, 444455556666.dkr.ecr.eu-west-1.amazonaws.com`, [annotations.roleArn]: role },
      expect: { hosts: [east, 'public.ecr.aws', '444455556666.dkr.ecr.eu-west-1.amazonaws.com'], roleArn: role },
    },
    {
      name: 'an upper-case host is accepted and written lower-case',
      source: namespace,
      values: { [annotations.server]: east.toUpperCase() },
      expect: { hosts: [east] },
    },
    {
      name: 'a secret name override is kept',
      source: serviceAccount,
      values: { [annotations.server]: east, [annotations.secretName]: 'builder-pull' },
      expect: { secretName: 'builder-pull' },
    },
    {
      name: 'a namespace in service-account identity mode exchanges its default ServiceAccount token unless told otherwise',
      source: namespace,
      values: { [annotations.server]: east, [annotations.identity]: 'service-account' },
      expect: { identity: 'service-account', identityServiceAccount: 'default' },
    },
    {
      name: 'a namespace may name the ServiceAccount whose token is exchanged',
      source: namespace,
      values: { [annotations.server]: east, [annotations.identity]: ' service-account ', [annotations.identityServiceAccount]: 'ecr-puller' },
      expect: { identity: 'service-account', identityServiceAccount: 'ecr-puller' },
    },
    {
      name: 'unrelated annotations are ignored',
      source: namespace,
      values: { [annotations.server]: east, 'ecr-login/unknown': 'x', 'example.com/other': 'y' },
      expect: { hosts: [east] },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = request(parseAnnotations(c.source, c.values));
      assert.deepEqual(got.source, c.source);
      const { hosts, ...rest } = c.expect;
      if (hosts !== undefined)
        assert.deepEqual(
          got.registries.map((r) => r.host),
          hosts,
        );
      for (const [key, value] of Object.entries(rest)) assert.deepEqual(got[key as keyof Request], value, key);
    });
  }

  it('leaves roleArn and secretName out when they are not annotated', () => {
    const got = request(parseAnnotations(namespace, { [annotations.server]: east }));
    assert.equal('roleArn' in got, false);
    assert.equal('secretName' in got, false);
  });
});

describe('parseAnnotations: objects that ask for nothing', () => {
  const cases: { name: string; values: Record<string, string> | undefined }[] = [
    { name: 'an object without annotations asks for nothing', values: undefined },
    { name: 'an object with other annotations asks for nothing', values: { 'example.com/x': 'y' } },
    { name: 'an object with ecr-login annotations but no server annotation asks for nothing', values: { [annotations.roleArn]: 'garbage' } },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(parseAnnotations(namespace, c.values), { ok: true, value: undefined }));
  }
});

describe('parseAnnotations: invalid requests', () => {
  const long = 'a'.repeat(maxValueLength + 1);
  const cases: { name: string; source: Source; values: Record<string, string>; annotation: string; says: RegExp }[] = [
    {
      name: 'an empty server annotation names no registry',
      source: namespace,
      values: { [annotations.server]: '' },
      annotation: annotations.server,
      says: /names no registry host/,
    },
    {
      name: 'a server annotation of only commas names no registry',
      source: namespace,
      values: { [annotations.server]: ' , ,' },
      annotation: annotations.server,
      says: /names no registry host/,
    },
    {
      name: 'a registry that is neither private ECR nor ECR Public is refused',
      source: namespace,
      values: { [annotations.server]: 'quay.io' },
      annotation: annotations.server,
      says: /"quay\.io" is not a private ECR registry host .* nor ECR Public/,
    },
    {
      name: 'a region no partition lists is refused',
      source: namespace,
      values: { [annotations.server]: '123456789012.dkr.ecr.nowhere-9.amazonaws.com' },
      annotation: annotations.server,
      says: /"nowhere-9" is not an AWS region/,
    },
    {
      name: 'a China region under amazonaws.com is refused',
      source: namespace,
      values: { [annotations.server]: '123456789012.dkr.ecr.cn-north-1.amazonaws.com' },
      annotation: annotations.server,
      says: /partition aws-cn/,
    },
    {
      name: 'registries of two partitions are refused: no identity reaches both',
      source: namespace,
      values: { [annotations.server]: `${east},123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn` },
      annotation: annotations.server,
      says: /lists registries of partitions aws, aws-cn; one identity cannot reach more than one partition/,
    },
    {
      name: 'ECR Public beside GovCloud registries is refused: ECR Public is in the aws partition',
      source: namespace,
      values: { [annotations.server]: '123456789012.dkr.ecr.us-gov-west-1.amazonaws.com,public.ecr.aws' },
      annotation: annotations.server,
      says: /partitions aws-us-gov, aws/,
    },
    {
      name: 'a standard role for China registries is refused',
      source: namespace,
      values: { [annotations.server]: '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn', [annotations.roleArn]: role },
      annotation: annotations.roleArn,
      says: /role "arn:aws:iam::123456789012:role\/team-a\/puller" is in partition aws, but the registries are in partition aws-cn: a role reaches only its own partition's registries \(arn:aws-cn:iam::\.\.\.\)/,
    },
    {
      name: 'a GovCloud role for standard registries is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.roleArn]: 'arn:aws-us-gov:iam::123456789012:role/x' },
      annotation: annotations.roleArn,
      says: /is in partition aws-us-gov, but the registries are in partition aws/,
    },
    {
      name: 'a China role for ECR Public is refused',
      source: namespace,
      values: { [annotations.server]: 'public.ecr.aws', [annotations.roleArn]: 'arn:aws-cn:iam::123456789012:role/x' },
      annotation: annotations.roleArn,
      says: /partition aws-cn, but the registries are in partition aws/,
    },
    {
      name: 'one bad host among good ones spoils the annotation',
      source: namespace,
      values: { [annotations.server]: `${east},${east}.evil.example` },
      annotation: annotations.server,
      says: /evil\.example/,
    },
    {
      name: 'the same host twice is a duplicate',
      source: namespace,
      values: { [annotations.server]: `${east}, https://${east}/` },
      annotation: annotations.server,
      says: /lists .* twice/,
    },
    {
      name: 'the same host in two cases is a duplicate',
      source: namespace,
      values: { [annotations.server]: `${east},${east.replace('us-east-1', 'US-EAST-1')}` },
      annotation: annotations.server,
      says: /twice/,
    },
    {
      name: 'more than 32 hosts are too many',
      source: namespace,
      values: {
        [annotations.server]: Array.from({ length: 33 }, (_, i) => `1234567890${String(i).padStart(2, '0')}.dkr.ecr.us-east-1.amazonaws.com`).join(','),
      },
      annotation: annotations.server,
      says: /names 33 hosts, more than the 32 allowed/,
    },
    {
      name: 'a server value longer than the limit is refused before parsing',
      source: namespace,
      values: { [annotations.server]: `${east},${long}` },
      annotation: annotations.server,
      says: /more than the 4096 allowed/,
    },
    {
      name: 'an over-long value of another annotation is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.roleArn]: long },
      annotation: annotations.roleArn,
      says: /4097 characters long/,
    },
    {
      name: 'an unknown identity mode is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.identity]: 'assume-role' },
      annotation: annotations.identity,
      says: /"assume-role" is not one of controller, service-account/,
    },
    {
      name: 'an empty identity mode is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.identity]: '' },
      annotation: annotations.identity,
      says: /"" is not one of/,
    },
    {
      name: 'a user ARN is not a role ARN',
      source: namespace,
      values: { [annotations.server]: east, [annotations.roleArn]: 'arn:aws:iam::123456789012:user/bob' },
      annotation: annotations.roleArn,
      says: /is not an IAM role ARN/,
    },
    {
      name: 'a role ARN with an 11-digit account is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.roleArn]: 'arn:aws:iam::12345678901:role/x' },
      annotation: annotations.roleArn,
      says: /is not an IAM role ARN/,
    },
    {
      name: 'a role ARN in an unknown partition is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.roleArn]: 'arn:evil:iam::123456789012:role/x' },
      annotation: annotations.roleArn,
      says: /is not an IAM role ARN/,
    },
    {
      name: 'a role ARN with a region is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.roleArn]: 'arn:aws:iam:us-east-1:123456789012:role/x' },
      annotation: annotations.roleArn,
      says: /is not an IAM role ARN/,
    },
    {
      name: 'a role ARN without a role name is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.roleArn]: 'arn:aws:iam::123456789012:role/' },
      annotation: annotations.roleArn,
      says: /is not an IAM role ARN/,
    },
    {
      name: 'a role ARN with a space in the name is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.roleArn]: 'arn:aws:iam::123456789012:role/a b' },
      annotation: annotations.roleArn,
      says: /is not an IAM role ARN/,
    },
    {
      name: 'an empty role ARN is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.roleArn]: '  ' },
      annotation: annotations.roleArn,
      says: /is not an IAM role ARN/,
    },
    {
      name: 'an upper-case secret name is not a valid name',
      source: namespace,
      values: { [annotations.server]: east, [annotations.secretName]: 'Regcred' },
      annotation: annotations.secretName,
      says: /Secret name "Regcred" is not a valid name/,
    },
    {
      name: 'an empty secret name is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.secretName]: '' },
      annotation: annotations.secretName,
      says: /Secret name is empty/,
    },
    {
      name: 'a secret name longer than 253 characters is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.secretName]: 'a'.repeat(254) },
      annotation: annotations.secretName,
      says: /longer than 253 characters/,
    },
    {
      name: 'a secret name ending with a hyphen is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.secretName]: 'pull-' },
      annotation: annotations.secretName,
      says: /not a valid name/,
    },
    {
      name: 'a ServiceAccount may not say which ServiceAccounts to patch',
      source: serviceAccount,
      values: { [annotations.server]: east, [annotations.serviceAccounts]: '*' },
      annotation: annotations.serviceAccounts,
      says: /only applies to a Namespace, not a ServiceAccount/,
    },
    {
      name: 'a ServiceAccount may not name another identity ServiceAccount',
      source: serviceAccount,
      values: { [annotations.server]: east, [annotations.identityServiceAccount]: 'default' },
      annotation: annotations.identityServiceAccount,
      says: /only applies to a Namespace/,
    },
    {
      name: 'a bad identity ServiceAccount name is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.identity]: 'service-account', [annotations.identityServiceAccount]: 'Bad_Name' },
      annotation: annotations.identityServiceAccount,
      says: /ServiceAccount name "Bad_Name" is not a valid name/,
    },
    {
      name: 'an empty ServiceAccount list names nobody',
      source: namespace,
      values: { [annotations.server]: east, [annotations.serviceAccounts]: ' , ' },
      annotation: annotations.serviceAccounts,
      says: /names no ServiceAccount/,
    },
    {
      name: '* combined with names is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.serviceAccounts]: '*,default' },
      annotation: annotations.serviceAccounts,
      says: /cannot be combined/,
    },
    {
      name: 'a ServiceAccount listed twice is a duplicate',
      source: namespace,
      values: { [annotations.server]: east, [annotations.serviceAccounts]: 'default,builder,default' },
      annotation: annotations.serviceAccounts,
      says: /lists "default" twice/,
    },
    {
      name: 'an invalid ServiceAccount name in the list is refused',
      source: namespace,
      values: { [annotations.server]: east, [annotations.serviceAccounts]: 'default,ci runner' },
      annotation: annotations.serviceAccounts,
      says: /"ci runner" is not a valid name/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = parseAnnotations(c.source, c.values);
      if (result.ok) assert.fail(`expected invalid, got ${JSON.stringify(result)}`);
      assert.equal(result.error.annotation, c.annotation);
      assert.deepEqual(result.error.source, c.source);
      assert.ok(result.error.message.startsWith(`annotation ${c.annotation}: `), result.error.message);
      assert.match(result.error.message, c.says);
    });
  }
});

describe('names and ARNs', () => {
  const names: { name: string; value: string; ok: boolean }[] = [
    { name: 'a simple name is valid', value: 'default', ok: true },
    { name: 'a dotted name is valid', value: 'a.b-c.d', ok: true },
    { name: 'a 253-character name is valid', value: 'a'.repeat(253), ok: true },
    { name: 'a 254-character name is not', value: 'a'.repeat(254), ok: false },
    { name: 'an empty name is not', value: '', ok: false },
    { name: 'a name with an empty label is not', value: 'a..b', ok: false },
    { name: 'a name with upper case is not', value: 'A', ok: false },
    { name: 'a name ending in a dot is not', value: 'a.', ok: false },
    { name: 'a name with a non-ASCII letter is not', value: 'café', ok: false },
  ];
  for (const c of names) {
    it(c.name, () => assert.equal(dnsSubdomainProblem(c.value) === undefined, c.ok));
  }

  it('a role ARN names its partition', () => {
    assert.equal(roleArnPartition(role), 'aws');
    assert.equal(roleArnPartition('arn:aws-iso-b:iam::123456789012:role/x'), 'aws-iso-b');
  });
  it('a role ARN with a path is valid', () => assert.equal(roleArnProblem('arn:aws:iam::123456789012:role/path/to/name'), undefined));
  it('a role ARN with a trailing newline is not valid', () => assert.notEqual(roleArnProblem(`${role}\n`), undefined));
  it('a role ARN of 513 name characters is not valid', () => assert.notEqual(roleArnProblem(`arn:aws:iam::123456789012:role/${'a'.repeat(513)}`), undefined));

  it('describes a ServiceAccount with its namespace and a Namespace by its name', () => {
    assert.equal(describeSource(serviceAccount), 'ServiceAccount/team-a/builder');
    assert.equal(describeSource(namespace), 'Namespace/team-a');
    assert.equal(describeSource({ kind: 'Target', namespace: 'ops', name: 'ops' }), 'Target/ops');
  });
});

/** Each annotation's vocabulary: valid values and near misses. */
const vocabulary: Record<string, readonly string[]> = {
  [annotations.server]: [
    east,
    west,
    `${east},${west}`,
    `https://${east}/`,
    'public.ecr.aws',
    `${east},public.ecr.aws`,
    '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn',
    `${east}.evil.example`,
    '',
    ',',
  ],
  [annotations.serviceAccounts]: ['*', 'default', 'a,b', 'a,a', '*,a', '', 'Bad'],
  [annotations.roleArn]: [role, 'arn:aws-cn:iam::123456789012:role/x', 'arn:aws:iam::123:role/x', '', 'arn:aws:iam::123456789012:user/x'],
  [annotations.secretName]: ['pull', 'Pull', '', 'a'.repeat(254)],
  [annotations.identity]: ['controller', 'service-account', 'assume-role', ''],
  [annotations.identityServiceAccount]: ['default', 'puller', 'Bad', ''],
  [annotations.format]: ['dockerconfigjson', 'config-json', 'argocd-repository', 'DockerConfigJSON', ''],
};
const wordOf = (key: string): fc.Arbitrary<string> => fc.constantFrom(...(vocabulary[key] ?? ['']));

/** Values for one annotation: mostly from its own vocabulary, sometimes anything at all. */
function valueFor(key: string): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: wordOf(key) },
    { weight: 1, arbitrary: fc.string() },
    { weight: 1, arbitrary: fc.string({ unit: 'binary' }) },
    { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 31 }).map((c) => String.fromCharCode(c)) }) },
    { weight: 1, arbitrary: fc.nat({ max: 100 }).map((n) => 'x'.repeat(65_536 + n)) },
  );
}

const annotationValues = fc
  .subarray(Object.values(annotations))
  .chain((keys) => fc.record(Object.fromEntries(keys.map((key) => [key, valueFor(key)]))))
  .map((values) => values as Record<string, string>);

/** A server and some other annotations, each from its vocabulary: a request as often as not. */
const plausibleValues = fc
  .subarray(Object.values(annotations).filter((key) => key !== annotations.server))
  .chain((keys) => fc.record(Object.fromEntries([annotations.server, ...keys].map((key) => [key, wordOf(key)]))))
  .map((values) => values as Record<string, string>);

const anySource = fc.oneof(
  fc.constant(namespace),
  fc.constant(serviceAccount),
  fc.record({ kind: fc.constantFrom('Namespace', 'ServiceAccount'), namespace: fc.string(), name: fc.string() }) as fc.Arbitrary<Source>,
);

describe('parseAnnotations properties', () => {
  it('never throws, and a refusal names an ecr-login annotation and says why', () => {
    fc.assert(
      fc.property(anySource, annotationValues, (source, values) => {
        const result = parseAnnotations(source, values);
        if (!(annotations.server in values)) {
          assert.deepEqual(result, { ok: true, value: undefined });
          return;
        }
        assert.ok(!result.ok || result.value !== undefined, 'asks for something');
        if (!result.ok) {
          assert.ok((Object.values(annotations) as string[]).includes(result.error.annotation));
          assert.ok(result.error.message.length > `annotation ${result.error.annotation}: `.length);
          assert.equal(result.error.source, source);
        }
      }),
      { numRuns },
    );
  });

  it('an accepted request has valid, distinct registries, a known identity and valid names', () => {
    const accepted = { Namespace: 0, ServiceAccount: 0, Target: 0 };
    fc.assert(
      fc.property(anySource, fc.oneof(annotationValues, plausibleValues), (source, values) => {
        const result = parseAnnotations(source, values);
        if (!result.ok || result.value === undefined) return;
        accepted[source.kind]++;
        const r = result.value;
        assert.ok(r.registries.length >= 1 && r.registries.length <= 32);
        assert.equal(new Set(r.registries.map((h) => h.host)).size, r.registries.length);
        assert.equal(new Set(r.registries.map((h) => h.partition)).size, 1, 'one partition');
        if (r.roleArn !== undefined) assert.equal(roleArnPartition(r.roleArn), r.registries[0]?.partition);
        assert.ok(r.identity === 'controller' || r.identity === 'service-account');
        if (r.roleArn !== undefined) assert.equal(roleArnProblem(r.roleArn), undefined);
        if (r.secretName !== undefined) assert.equal(dnsSubdomainProblem(r.secretName), undefined);
        if (!r.forServiceAccounts.all && source.kind === 'Namespace') {
          for (const name of r.forServiceAccounts.names) assert.equal(dnsSubdomainProblem(name), undefined);
        }
        if (r.format !== 'dockerconfigjson') assert.deepEqual(r.forServiceAccounts, { all: false, names: [] }, 'only a pull Secret goes into imagePullSecrets');
        if (source.kind === 'ServiceAccount') {
          assert.deepEqual(r.forServiceAccounts, { all: false, names: r.format === 'dockerconfigjson' ? [source.name] : [] });
          assert.equal(r.identityServiceAccount, source.name);
        }
      }),
      { numRuns },
    );
    // About 5 % of each; before the plausible values, 15 requests in 2,000 runs.
    assert.ok(accepted.Namespace >= 20 && accepted.ServiceAccount >= 20, `accepted ${JSON.stringify(accepted)} of ${numRuns}`);
  });

  it('a huge, empty, non-ASCII or control-character server value is refused with a clear message', () => {
    const bad = fc.oneof(
      fc.constant(''),
      fc.nat({ max: 1_000 }).map((n) => east.repeat(Math.ceil((65_536 + n) / east.length))),
      fc.string({ unit: 'grapheme', minLength: 1 }).filter((t) => /\P{ASCII}/u.test(t) && t.trim() !== ''),
      fc
        .integer({ min: 0, max: 31 })
        .filter((c) => ![9, 10, 11, 12, 13].includes(c))
        .map((c) => `${east}${String.fromCharCode(c)}x`),
    );
    fc.assert(
      fc.property(anySource, bad, (source, server) => {
        const result = parseAnnotations(source, { [annotations.server]: server });
        if (result.ok) assert.fail(`accepted ${JSON.stringify(server.slice(0, 100))}`);
        assert.equal(result.error.annotation, annotations.server);
        assert.match(result.error.message, /names no registry host|more than the 4096 allowed|not a private ECR registry host/);
        assert.ok(result.error.message.length < 500);
      }),
      { numRuns },
    );
  });
});

describe('unknownKeys', () => {
  const cases: { name: string; values: Record<string, string>; want: { key: string; suggestion?: string }[] }[] = [
    {
      name: "our own keys, and others' keys, are not unknown",
      values: { 'ecr-login/server': 'x', 'ecr-login/pull-secrets': 'x', 'example.com/server': 'x' },
      want: [],
    },
    {
      name: 'a plural is taken for the key it meant',
      values: { 'ecr-login/servers': 'x' },
      want: [{ key: 'ecr-login/servers', suggestion: 'ecr-login/server' }],
    },
    {
      name: 'an underscore is taken for a dash',
      values: { 'ecr-login/role_arn': 'x' },
      want: [{ key: 'ecr-login/role_arn', suggestion: 'ecr-login/role-arn' }],
    },
    {
      name: 'a missing dash is taken for the key it meant',
      values: { 'ecr-login/serviceaccounts': 'x' },
      want: [{ key: 'ecr-login/serviceaccounts', suggestion: 'ecr-login/service-accounts' }],
    },
    { name: 'a key like none of ours gets no suggestion', values: { 'ecr-login/colour': 'x' }, want: [{ key: 'ecr-login/colour' }] },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(unknownKeys(c.values), c.want));
});
