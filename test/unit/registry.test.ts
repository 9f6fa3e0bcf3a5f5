// Registry hosts: every ECR partition and endpoint flavour, and ECR Public, is accepted with its parts,
// in any case; anything that is not exactly an ECR host (suffix attacks, wrong account lengths, paths,
// ports, regions no partition lists or of another partition than the domain) is rejected with a
// message that says why. Which token each host needs, and how policy rules name ECR Public.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSettings } from '../../src/config/settings.ts';
import { evaluatePolicy } from '../../src/policy.ts';
import { parseRegistryHost, tokenEndpoint, tokenEndpoints, type RegistryHost } from '../../src/registry.ts';
import { registryForms } from '../support/registry-forms.ts';
import { quote } from '../../src/validation.ts';

const numRuns = 2_000;

/** The pattern accepted hosts must match, written out independently of the module's own. */
const anchored =
  /^\d{12}\.dkr[.-]ecr(-fips)?\.[a-z0-9][a-z0-9_-]*\.(amazonaws\.com|amazonaws\.com\.cn|amazonaws\.eu|on\.aws|on\.amazonwebservices\.com\.cn|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;

describe('parseRegistryHost', () => {
  const accepted: { name: string; input: string; host: string; region: string; fips: boolean; domain: string; dualStack?: boolean; partition?: string }[] = [
    {
      name: 'a standard commercial host is accepted',
      input: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
      host: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
      region: 'us-east-1',
      fips: false,
      domain: 'amazonaws.com',
    },
    {
      name: 'a FIPS endpoint is accepted and marked fips',
      input: '123456789012.dkr.ecr-fips.us-west-2.amazonaws.com',
      host: '123456789012.dkr.ecr-fips.us-west-2.amazonaws.com',
      region: 'us-west-2',
      fips: true,
      domain: 'amazonaws.com',
    },
    {
      name: 'a dual-stack host on on.aws is accepted',
      input: '123456789012.dkr-ecr.eu-west-1.on.aws',
      host: '123456789012.dkr-ecr.eu-west-1.on.aws',
      region: 'eu-west-1',
      fips: false,
      domain: 'on.aws',
      dualStack: true,
    },
    {
      name: 'a dual-stack FIPS host is accepted',
      input: '123456789012.dkr-ecr-fips.us-east-1.on.aws',
      host: '123456789012.dkr-ecr-fips.us-east-1.on.aws',
      region: 'us-east-1',
      fips: true,
      domain: 'on.aws',
      dualStack: true,
    },
    {
      name: 'a China host is accepted',
      input: '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn',
      host: '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn',
      region: 'cn-north-1',
      fips: false,
      domain: 'amazonaws.com.cn',
      partition: 'aws-cn',
    },
    {
      name: 'a China dual-stack host is accepted',
      input: '123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn',
      host: '123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn',
      region: 'cn-northwest-1',
      fips: false,
      domain: 'on.amazonwebservices.com.cn',
      dualStack: true,
      partition: 'aws-cn',
    },
    {
      name: 'a GovCloud host is accepted',
      input: '123456789012.dkr.ecr.us-gov-west-1.amazonaws.com',
      host: '123456789012.dkr.ecr.us-gov-west-1.amazonaws.com',
      region: 'us-gov-west-1',
      fips: false,
      domain: 'amazonaws.com',
      partition: 'aws-us-gov',
    },
    {
      name: 'an ISO (C2S) host is accepted',
      input: '123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov',
      host: '123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov',
      region: 'us-iso-east-1',
      fips: false,
      domain: 'c2s.ic.gov',
      partition: 'aws-iso',
    },
    {
      name: 'an ISO-B (SC2S) host is accepted',
      input: '123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov',
      host: '123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov',
      region: 'us-isob-east-1',
      fips: false,
      domain: 'sc2s.sgov.gov',
      partition: 'aws-iso-b',
    },
    {
      name: 'an ISO-E host is accepted',
      input: '123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk',
      host: '123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk',
      region: 'eu-isoe-west-1',
      fips: false,
      domain: 'cloud.adc-e.uk',
      partition: 'aws-iso-e',
    },
    {
      name: 'an ISO-F host is accepted',
      input: '123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov',
      host: '123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov',
      region: 'us-isof-south-1',
      fips: false,
      domain: 'csp.hci.ic.gov',
      partition: 'aws-iso-f',
    },
    {
      name: 'a European sovereign cloud host is accepted',
      input: '123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu',
      host: '123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu',
      region: 'eusc-de-east-1',
      fips: false,
      domain: 'amazonaws.eu',
      partition: 'aws-eusc',
    },
    {
      name: 'a host written with https:// and a trailing slash is accepted as the bare host',
      input: 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com/',
      host: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
      region: 'us-east-1',
      fips: false,
      domain: 'amazonaws.com',
    },
    {
      name: 'surrounding whitespace is trimmed',
      input: '  123456789012.dkr.ecr.us-east-1.amazonaws.com\t',
      host: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
      region: 'us-east-1',
      fips: false,
      domain: 'amazonaws.com',
    },
    {
      name: 'an upper-case region is lower-cased in the host and the region',
      input: '123456789012.dkr.ecr.US-EAST-1.amazonaws.com',
      host: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
      region: 'us-east-1',
      fips: false,
      domain: 'amazonaws.com',
    },
    {
      name: 'a host written all upper-case is accepted and written lower-case',
      input: '123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM',
      host: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
      region: 'us-east-1',
      fips: false,
      domain: 'amazonaws.com',
    },
    {
      name: 'an upper-case scheme and a mixed-case FIPS GovCloud host are accepted lower-case',
      input: 'HTTPS://123456789012.Dkr.Ecr-Fips.Us-Gov-West-1.AmazonAWS.com/',
      host: '123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com',
      region: 'us-gov-west-1',
      fips: true,
      domain: 'amazonaws.com',
      partition: 'aws-us-gov',
    },
  ];
  for (const c of accepted) {
    it(c.name, () => {
      const result = parseRegistryHost(c.input);
      assert.ok(result.ok, result.ok ? '' : result.error);
      assert.deepEqual(result.value, {
        host: c.host,
        kind: 'private',
        account: '123456789012',
        region: c.region,
        fips: c.fips,
        dualStack: c.dualStack ?? false,
        domain: c.domain,
        partition: c.partition ?? 'aws',
      });
    });
  }

  const publicHosts: { name: string; input: string; host: string; dualStack: boolean }[] = [
    { name: 'ECR Public is accepted, with no account and the region name ecr-public', input: 'public.ecr.aws', host: 'public.ecr.aws', dualStack: false },
    { name: "ECR Public's dual-stack host is accepted and marked dual-stack", input: 'ecr-public.aws.com', host: 'ecr-public.aws.com', dualStack: true },
    {
      name: 'ECR Public written as a URL in upper case is accepted as the bare host',
      input: 'HTTPS://PUBLIC.ECR.AWS/',
      host: 'public.ecr.aws',
      dualStack: false,
    },
  ];
  for (const c of publicHosts) {
    it(c.name, () => {
      const result = parseRegistryHost(c.input);
      assert.ok(result.ok, result.ok ? '' : result.error);
      assert.deepEqual(result.value, {
        host: c.host,
        kind: 'public',
        account: '',
        region: 'ecr-public',
        fips: false,
        dualStack: c.dualStack,
        domain: c.host,
        partition: 'aws',
      });
    });
  }

  for (const form of registryForms) {
    it(`accepts the ${form.name} form (${form.host}) in partition ${form.partition}`, () => {
      const result = parseRegistryHost(form.host);
      assert.ok(result.ok, result.ok ? '' : result.error);
      assert.equal(result.value.partition, form.partition);
      assert.equal(result.value.host, form.host.toLowerCase());
    });
  }

  const rejected: { name: string; input: string; says: RegExp }[] = [
    {
      name: 'the suffix attack with a foreign domain after amazonaws.com is rejected',
      input: '123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example',
      says: /not a private ECR registry host/,
    },
    { name: 'a prefix before the account is rejected', input: 'evil.123456789012.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'an 11-digit account is rejected', input: '12345678901.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a 13-digit account is rejected', input: '1234567890123.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a host with a path is rejected', input: '123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app', says: /not a private ECR registry host/ },
    {
      name: 'an https URL with a path is rejected',
      input: 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/',
      says: /not a private ECR registry host/,
    },
    { name: 'a host with a port is rejected', input: '123456789012.dkr.ecr.us-east-1.amazonaws.com:443', says: /not a private ECR registry host/ },
    { name: 'an http:// URL is rejected', input: 'http://123456789012.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'ECR Public with a path is rejected', input: 'public.ecr.aws/library/nginx', says: /not a private ECR registry host/ },
    { name: 'a suffix attack on ECR Public is rejected', input: 'public.ecr.aws.evil.example', says: /not a private ECR registry host/ },
    { name: 'a look-alike of ECR Public is rejected', input: 'public.ecr.aws.com', says: /not a private ECR registry host/ },
    { name: 'Docker Hub is rejected', input: 'docker.io', says: /not a private ECR registry host/ },
    { name: 'an empty string is rejected as empty', input: '', says: /^empty registry host$/ },
    { name: 'only whitespace is rejected as empty', input: ' \t\n ', says: /^empty registry host$/ },
    { name: 'a bare scheme is rejected', input: 'https://', says: /not a private ECR registry host/ },
    { name: 'a host with a user is rejected', input: 'user@123456789012.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a region starting with a hyphen is rejected', input: '123456789012.dkr.ecr.-us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a missing region is rejected', input: '123456789012.dkr.ecr.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a region with a dot is rejected', input: '123456789012.dkr.ecr.us.east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a trailing dot is rejected', input: '123456789012.dkr.ecr.us-east-1.amazonaws.com.', says: /not a private ECR registry host/ },
    { name: 'a non-ASCII digit in the account is rejected', input: '١٢٣٤٥٦٧٨٩٠١٢.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a NUL byte inside the host is rejected', input: '123456789012.dkr.ecr.us-east-1\u0000.amazonaws.com', says: /\\u0000/ },
    {
      name: 'a newline between two hosts is rejected',
      input: '123456789012.dkr.ecr.us-east-1.amazonaws.com\n123456789012.dkr.ecr.us-east-2.amazonaws.com',
      says: /not a private ECR registry host/,
    },
    {
      name: 'a region no partition lists is rejected (nowhere-9)',
      input: '123456789012.dkr.ecr.nowhere-9.amazonaws.com',
      says: /"nowhere-9" is not an AWS region: no partition in the AWS SDK's partition data lists it/,
    },
    {
      name: 'a region with underscores is rejected (us_east_1)',
      input: '123456789012.dkr.ecr.us_east_1.amazonaws.com',
      says: /"us_east_1" is not an AWS region/,
    },
    {
      name: 'a region that fits the pattern but does not exist is rejected (us-east-7)',
      input: '123456789012.dkr.ecr.us-east-7.amazonaws.com',
      says: /"us-east-7" is not an AWS region/,
    },
    {
      name: 'a region missing its hyphen is rejected (us-east1)',
      input: '123456789012.dkr.ecr.us-east1.amazonaws.com',
      says: /"us-east1" is not an AWS region/,
    },
    {
      name: "a partition's pseudo-region is rejected (aws-global)",
      input: '123456789012.dkr.ecr.aws-global.amazonaws.com',
      says: /"aws-global" is not an AWS region/,
    },
    {
      name: 'a China region under amazonaws.com is rejected',
      input: '123456789012.dkr.ecr.cn-north-1.amazonaws.com',
      says: /region cn-north-1 belongs to partition aws-cn, whose registries are under amazonaws\.com\.cn, not amazonaws\.com$/,
    },
    {
      name: 'a standard region under amazonaws.com.cn is rejected',
      input: '123456789012.dkr.ecr.us-east-1.amazonaws.com.cn',
      says: /region us-east-1 belongs to partition aws, whose registries are under amazonaws\.com, not amazonaws\.com\.cn/,
    },
    { name: 'a GovCloud region under amazonaws.eu is rejected', input: '123456789012.dkr.ecr.us-gov-west-1.amazonaws.eu', says: /partition aws-us-gov/ },
    {
      name: 'a China region dual-stack under on.aws is rejected',
      input: '123456789012.dkr-ecr.cn-north-1.on.aws',
      says: /dual-stack registries are under on\.amazonwebservices\.com\.cn, not on\.aws/,
    },
    {
      name: 'a standard region dual-stack under the China dual-stack domain is rejected',
      input: '123456789012.dkr-ecr.eu-west-1.on.amazonwebservices.com.cn',
      says: /dual-stack registries are under on\.aws/,
    },
    {
      name: 'an ISO region under another ISO domain is rejected',
      input: '123456789012.dkr.ecr.us-iso-east-1.sc2s.sgov.gov',
      says: /partition aws-iso, whose registries are under c2s\.ic\.gov/,
    },
    {
      name: 'a host longer than 253 characters is rejected for its length',
      input: `123456789012.dkr.ecr.${'a'.repeat(240)}.amazonaws.com`,
      says: /longer than 253 characters/,
    },
  ];
  for (const c of rejected) {
    it(c.name, () => {
      const result = parseRegistryHost(c.input);
      assert.equal(result.ok, false, `accepted ${JSON.stringify(c.input)}`);
      if (!result.ok) assert.match(result.error, c.says);
    });
  }

  it('quotes a long input cut to a readable length', () => {
    const result = parseRegistryHost('x'.repeat(65_536));
    assert.equal(result.ok, false);
    if (!result.ok) assert.ok(result.error.length < 300, `message is ${result.error.length} characters long`);
  });
});

describe('quote', () => {
  it('JSON-escapes control characters', () => assert.equal(quote('a\nb\u0000'), '"a\\nb\\u0000"'));
  it('cuts a long value and marks the cut', () => assert.equal(quote('abcdef', 3), '"abc…"'));
  it('leaves a short value whole', () => assert.equal(quote('abc', 3), '"abc"'));
});

/** Hosts built from the grammar, valid or nearly so. */
const hostLike = fc
  .record({
    scheme: fc.constantFrom('', '', '', 'https://', 'HTTPS://', 'http://'),
    account: fc.oneof(fc.stringMatching(/^\d{12}$/), fc.stringMatching(/^\d{10,14}$/), fc.string()),
    dkr: fc.constantFrom('dkr.ecr', 'dkr-ecr', 'dkr.ecr-fips', 'dkr-ecr-fips', 'dkr_ecr', 'ecr'),
    region: fc.oneof(fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,20}$/), fc.string({ maxLength: 12 })),
    domain: fc.constantFrom(
      'amazonaws.com',
      'amazonaws.com.cn',
      'amazonaws.eu',
      'on.aws',
      'on.amazonwebservices.com.cn',
      'sc2s.sgov.gov',
      'c2s.ic.gov',
      'cloud.adc-e.uk',
      'csp.hci.ic.gov',
      'amazonaws.com.evil.example',
      'ecr.aws',
      'amazonaws.org',
    ),
    tail: fc.constantFrom('', '', '', '/', ':443', '/v2', '.', ' '),
  })
  .map(({ scheme, account, dkr, region, domain, tail }) => `${scheme}${account}.${dkr}.${region}.${domain}${tail}`);

/** Regions of each domain's partition, as the AWS SDK lists them. */
const regionsOf: Record<string, readonly string[]> = {
  'amazonaws.com': ['us-east-1', 'eu-west-1', 'ap-southeast-2', 'sa-east-1', 'us-gov-west-1', 'us-gov-east-1'],
  'on.aws': ['us-east-2', 'eu-central-1', 'us-gov-west-1'],
  'amazonaws.com.cn': ['cn-north-1', 'cn-northwest-1'],
  'on.amazonwebservices.com.cn': ['cn-north-1', 'cn-northwest-1'],
  'amazonaws.eu': ['eusc-de-east-1'],
  'c2s.ic.gov': ['us-iso-east-1', 'us-iso-west-1'],
  'sc2s.sgov.gov': ['us-isob-east-1'],
  'cloud.adc-e.uk': ['eu-isoe-west-1'],
  'csp.hci.ic.gov': ['us-isof-south-1', 'us-isof-east-1'],
};
/** Valid hosts built from the grammar, with their parts: a scheme or not, any case (upper: which letters). */
const valid = fc.constantFrom(...Object.keys(regionsOf)).chain((domain) =>
  fc.record({
    scheme: fc.constantFrom('', 'https://', 'HTTPS://'),
    account: fc.stringMatching(/^\d{12}$/),
    dkr: fc.constantFrom('dkr.ecr', 'dkr-ecr', 'dkr.ecr-fips', 'dkr-ecr-fips'),
    region: fc.constantFrom(...(regionsOf[domain] ?? [])),
    domain: fc.constant(domain),
    upper: fc.array(fc.boolean(), { minLength: 80, maxLength: 80 }),
  }),
);

/** Anything at all: random text, huge text, non-ASCII and control characters. */
const anyInput = fc.oneof(
  hostLike,
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.integer({ min: 0, max: 31 }).map((code) => String.fromCharCode(code)) }),
  fc.constant('1'.repeat(65_536)),
);

describe('parseRegistryHost properties', () => {
  it('never throws, and every rejection carries a message', () => {
    fc.assert(
      fc.property(anyInput, (input) => {
        const result = parseRegistryHost(input);
        if (!result.ok) assert.ok(result.error.trim().length > 0);
      }),
      { numRuns },
    );
  });

  it('an accepted host matches the anchored pattern and parses again to the same value', () => {
    // Random text is next to never a host: valid ones (written in any case) and ECR Public's are mixed in.
    const written = valid.map(
      ({ scheme, account, dkr, region, domain, upper }) =>
        `${scheme}${[...`${account}.${dkr}.${region}.${domain}`].map((c, i) => (upper[i] === true ? c.toUpperCase() : c)).join('')}`,
    );
    const input = fc.oneof(anyInput, written, fc.constantFrom('public.ecr.aws', 'ECR-PUBLIC.aws.com', 'https://public.ecr.aws/'));
    const accepted = { private: 0, public: 0 };
    fc.assert(
      fc.property(input, (text) => {
        const result = parseRegistryHost(text);
        if (!result.ok) return;
        accepted[result.value.kind]++;
        if (result.value.kind === 'public') {
          assert.ok(['public.ecr.aws', 'ecr-public.aws.com'].includes(result.value.host));
          assert.deepEqual(parseRegistryHost(result.value.host), result);
          return;
        }
        assert.match(result.value.host, anchored);
        assert.ok(result.value.host.startsWith(result.value.account));
        assert.ok(result.value.host.endsWith(`.${result.value.region}.${result.value.domain}`));
        assert.deepEqual(parseRegistryHost(result.value.host), result);
      }),
      { numRuns },
    );
    assert.ok(accepted.private >= numRuns / 10 && accepted.public >= numRuns / 20, `accepted ${JSON.stringify(accepted)} of ${numRuns}`);
  });

  it("grammar-built hosts with a 12-digit account, a region of the domain's partition and nothing after it are accepted, in any case", () => {
    fc.assert(
      fc.property(valid, ({ scheme, account, dkr, region, domain, upper }) => {
        const bare = `${account}.${dkr}.${region}.${domain}`;
        const written = [...bare].map((c, i) => (upper[i] === true ? c.toUpperCase() : c)).join('');
        const result = parseRegistryHost(`${scheme}${written}`);
        assert.ok(result.ok, result.ok ? '' : result.error);
        assert.equal(result.value.host, bare);
        assert.equal(result.value.region, region);
        assert.equal(result.value.fips, dkr.endsWith('-fips'));
        assert.equal(result.value.dualStack, domain.startsWith('on.'));
      }),
      { numRuns },
    );
  });

  it('grammar-built hosts with any other region are rejected, naming the region', () => {
    const host = fc.record({
      region: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/),
      domain: fc.constantFrom('amazonaws.com', 'amazonaws.com.cn', 'amazonaws.eu', 'on.aws', 'c2s.ic.gov'),
    });
    fc.assert(
      fc.property(host, ({ region, domain }) => {
        const result = parseRegistryHost(`123456789012.dkr.ecr.${region}.${domain}`);
        if (result.ok) {
          // Only a region the SDK lists, of the domain's partition.
          assert.equal(result.value.region, region);
          assert.ok(/^[a-z]{2,4}(-[a-z]+)+-\d+$/.test(region), `accepted ${region}`);
          return;
        }
        assert.match(result.error, new RegExp(`"${region}" is not an AWS region|region ${region} belongs to partition`));
      }),
      { numRuns },
    );
  });

  it('a host followed by any suffix that is not a slash or whitespace is rejected', () => {
    const suffix = fc.string({ minLength: 1 }).filter((text) => text !== '/' && text.trim() === text);
    fc.assert(
      fc.property(suffix, (tail) => {
        const result = parseRegistryHost(`123456789012.dkr.ecr.us-east-1.amazonaws.com${tail}`);
        if (result.ok) assert.fail(`accepted a host followed by ${JSON.stringify(tail)}`);
        assert.ok(result.error.length > 0);
      }),
      { numRuns },
    );
  });

  it('huge, empty, non-ASCII and control-character inputs are rejected with a clear message', () => {
    const bad = fc.oneof(
      fc.constant(''),
      fc.nat({ max: 4 }).map((n) => ' '.repeat(n)),
      fc.nat({ max: 1_000 }).map((n) => `${'1'.repeat(65_536 + n)}.dkr.ecr.us-east-1.amazonaws.com`),
      fc
        .string({ unit: 'grapheme', minLength: 1 })
        .filter((text) => /\P{ASCII}/u.test(text))
        .map((text) => `123456789012.dkr.ecr.${text}.amazonaws.com`),
      fc.integer({ min: 0, max: 31 }).map((code) => `123456789012.dkr.ecr.us-east-1${String.fromCharCode(code)}x.amazonaws.com`),
    );
    fc.assert(
      fc.property(bad, (input) => {
        const result = parseRegistryHost(input);
        if (result.ok) assert.fail(`accepted ${JSON.stringify(input.slice(0, 100))}`);
        assert.match(result.error, /empty registry host|longer than 253 characters|not a private ECR registry host|is not an AWS region/);
        assert.ok(result.error.length < 400, 'the message quotes a cut of the input, not all of it');
      }),
      { numRuns },
    );
  });
});

describe('the tokens a Secret needs', () => {
  const host = (text: string): RegistryHost => {
    const parsed = parseRegistryHost(text);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  };

  it('ECR Public comes from ecr-public in us-east-1, its dual-stack host from the dual-stack endpoint', () => {
    assert.deepEqual(tokenEndpoint(host('public.ecr.aws')), { service: 'ecr-public', region: 'us-east-1', fips: false, dualStack: false });
    assert.deepEqual(tokenEndpoint(host('ecr-public.aws.com')), { service: 'ecr-public', region: 'us-east-1', fips: false, dualStack: true });
  });

  it('a private host comes from ECR in its region, at the FIPS or dual-stack endpoint its host names', () => {
    assert.deepEqual(tokenEndpoint(host('123456789012.dkr-ecr-fips.us-gov-west-1.on.aws')), {
      service: 'ecr',
      region: 'us-gov-west-1',
      fips: true,
      dualStack: true,
    });
  });

  it('one Secret with ECR Public and two private regions needs three tokens, ECR Public apart from us-east-1', () => {
    const endpoints = tokenEndpoints(
      [
        '111122223333.dkr.ecr.us-east-1.amazonaws.com',
        '444455556666.dkr.ecr.us-east-1.amazonaws.com',
        'public.ecr.aws',
        '111122223333.dkr.ecr.eu-west-1.amazonaws.com',
      ].map(host),
    );
    assert.deepEqual(Object.fromEntries(endpoints), {
      'us-east-1': { service: 'ecr', region: 'us-east-1', fips: false, dualStack: false },
      'ecr-public': { service: 'ecr-public', region: 'us-east-1', fips: false, dualStack: false },
      'eu-west-1': { service: 'ecr', region: 'eu-west-1', fips: false, dualStack: false },
    });
  });

  it("a region's FIPS host beside its plain one makes the Secret's one token for that region come from the FIPS endpoint", () => {
    const endpoints = tokenEndpoints(
      ['111122223333.dkr.ecr.us-east-1.amazonaws.com', '111122223333.dkr.ecr-fips.us-east-1.amazonaws.com', '111122223333.dkr-ecr.us-east-1.on.aws'].map(host),
    );
    assert.deepEqual([...endpoints.values()], [{ service: 'ecr', region: 'us-east-1', fips: true, dualStack: true }]);
  });
});

describe('ECR Public in policy rules: { region: ecr-public }', () => {
  const pub = parseRegistryHost('public.ecr.aws');
  const east = parseRegistryHost('111122223333.dkr.ecr.us-east-1.amazonaws.com');
  if (!pub.ok || !east.ok) throw new Error('hosts');
  const decide = (registries: string, asked: readonly RegistryHost[]) => {
    const parsed = parseSettings(`rules:\n  - name: team\n    namespaces: { names: [team-a] }\n    registries: ${registries}\n`);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.join('; '));
    return evaluatePolicy(parsed.value, { name: 'team-a' }, { mode: 'controller' }, asked);
  };
  const cases: { name: string; registries: string; asked: readonly RegistryHost[]; allowed: boolean }[] = [
    { name: 'a rule naming region ecr-public allows it', registries: '[{ region: ecr-public }]', asked: [pub.value], allowed: true },
    {
      name: 'a rule naming it beside an account allows both in one Secret',
      registries: '[{ account: "111122223333", region: us-east-1 }, { region: ecr-public }]',
      asked: [east.value, pub.value],
      allowed: true,
    },
    { name: 'a rule for any account and region allows it', registries: '[{ account: "*", region: "*" }]', asked: [pub.value], allowed: true },
    { name: 'a rule naming accounts denies it: ECR Public has none', registries: '[{ account: "111122223333" }]', asked: [pub.value], allowed: false },
    {
      name: 'a rule naming regions denies it: us-east-1, where its API is served, is not its region',
      registries: '[{ region: "us-*" }]',
      asked: [pub.value],
      allowed: false,
    },
    { name: 'a rule naming only ECR Public denies private registries', registries: '[{ region: ecr-public }]', asked: [east.value], allowed: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const decision = decide(c.registries, c.asked);
      assert.equal(decision.allowed, c.allowed, decision.allowed ? 'allowed' : decision.reason);
      if (!decision.allowed) assert.match(decision.reason, /registry (public\.ecr\.aws|111122223333\.dkr\.ecr\.us-east-1\.amazonaws\.com) is not allowed/);
    });
  }
});
