// Registry hosts: every ECR partition and endpoint flavour is accepted with its parts; anything that
// is not exactly a private ECR host (suffix attacks, wrong account lengths, paths, ports, public ECR)
// is rejected with a message that says why.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseRegistryHost, quote } from '../src/registry.ts';

const numRuns = 2_000;

/** The pattern accepted hosts must match, written out independently of the module's own. */
const anchored =
  /^\d{12}\.dkr[.-]ecr(-fips)?\.[a-z0-9][a-z0-9_-]*\.(amazonaws\.com|amazonaws\.com\.cn|amazonaws\.eu|on\.aws|on\.amazonwebservices\.com\.cn|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;

describe('parseRegistryHost', () => {
  const accepted: { name: string; input: string; host: string; region: string; fips: boolean; domain: string }[] = [
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
    },
    {
      name: 'a dual-stack FIPS host is accepted',
      input: '123456789012.dkr-ecr-fips.us-east-1.on.aws',
      host: '123456789012.dkr-ecr-fips.us-east-1.on.aws',
      region: 'us-east-1',
      fips: true,
      domain: 'on.aws',
    },
    {
      name: 'a China host is accepted',
      input: '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn',
      host: '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn',
      region: 'cn-north-1',
      fips: false,
      domain: 'amazonaws.com.cn',
    },
    {
      name: 'a China dual-stack host is accepted',
      input: '123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn',
      host: '123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn',
      region: 'cn-northwest-1',
      fips: false,
      domain: 'on.amazonwebservices.com.cn',
    },
    {
      name: 'a GovCloud host is accepted',
      input: '123456789012.dkr.ecr.us-gov-west-1.amazonaws.com',
      host: '123456789012.dkr.ecr.us-gov-west-1.amazonaws.com',
      region: 'us-gov-west-1',
      fips: false,
      domain: 'amazonaws.com',
    },
    {
      name: 'an ISO (C2S) host is accepted',
      input: '123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov',
      host: '123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov',
      region: 'us-iso-east-1',
      fips: false,
      domain: 'c2s.ic.gov',
    },
    {
      name: 'an ISO-B (SC2S) host is accepted',
      input: '123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov',
      host: '123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov',
      region: 'us-isob-east-1',
      fips: false,
      domain: 'sc2s.sgov.gov',
    },
    {
      name: 'an ISO-E host is accepted',
      input: '123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk',
      host: '123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk',
      region: 'eu-isoe-west-1',
      fips: false,
      domain: 'cloud.adc-e.uk',
    },
    {
      name: 'an ISO-F host is accepted',
      input: '123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov',
      host: '123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov',
      region: 'us-isof-south-1',
      fips: false,
      domain: 'csp.hci.ic.gov',
    },
    {
      name: 'a European sovereign cloud host is accepted',
      input: '123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu',
      host: '123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu',
      region: 'eusc-de-east-1',
      fips: false,
      domain: 'amazonaws.eu',
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
  ];
  for (const c of accepted) {
    it(c.name, () => {
      const result = parseRegistryHost(c.input);
      assert.ok(result.ok, result.ok ? '' : result.error);
      assert.deepEqual(result.value, { host: c.host, account: '123456789012', region: c.region, fips: c.fips, domain: c.domain });
    });
  }

  const rejected: { name: string; input: string; says: RegExp }[] = [
    { name: 'the suffix attack with a foreign domain after amazonaws.com is rejected', input: '123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example', says: /not a private ECR registry host/ },
    { name: 'a prefix before the account is rejected', input: 'evil.123456789012.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'an 11-digit account is rejected', input: '12345678901.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a 13-digit account is rejected', input: '1234567890123.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a host with a path is rejected', input: '123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app', says: /not a private ECR registry host/ },
    { name: 'an https URL with a path is rejected', input: 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/', says: /not a private ECR registry host/ },
    { name: 'a host with a port is rejected', input: '123456789012.dkr.ecr.us-east-1.amazonaws.com:443', says: /not a private ECR registry host/ },
    { name: 'an http:// URL is rejected', input: 'http://123456789012.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'public ECR is rejected', input: 'public.ecr.aws', says: /not a private ECR registry host/ },
    { name: 'Docker Hub is rejected', input: 'docker.io', says: /not a private ECR registry host/ },
    { name: 'an empty string is rejected as empty', input: '', says: /^empty registry host$/ },
    { name: 'only whitespace is rejected as empty', input: ' \t\n ', says: /^empty registry host$/ },
    { name: 'a bare scheme is rejected', input: 'https://', says: /not a private ECR registry host/ },
    { name: 'a host with a user is rejected', input: 'user@123456789012.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a region starting with a hyphen is rejected', input: '123456789012.dkr.ecr.-us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a missing region is rejected', input: '123456789012.dkr.ecr.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a region with a dot is rejected', input: '123456789012.dkr.ecr.us.east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'an upper-case domain is rejected', input: '123456789012.dkr.ecr.us-east-1.AMAZONAWS.COM', says: /not a private ECR registry host/ },
    { name: 'a trailing dot is rejected', input: '123456789012.dkr.ecr.us-east-1.amazonaws.com.', says: /not a private ECR registry host/ },
    { name: 'a non-ASCII digit in the account is rejected', input: '١٢٣٤٥٦٧٨٩٠١٢.dkr.ecr.us-east-1.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a NUL byte inside the host is rejected', input: '123456789012.dkr.ecr.us-east-1\u0000.amazonaws.com', says: /\\u0000/ },
    { name: 'a newline between two hosts is rejected', input: '123456789012.dkr.ecr.us-east-1.amazonaws.com\n123456789012.dkr.ecr.us-east-2.amazonaws.com', says: /not a private ECR registry host/ },
    { name: 'a host longer than 253 characters is rejected for its length', input: `123456789012.dkr.ecr.${'a'.repeat(240)}.amazonaws.com`, says: /longer than 253 characters/ },
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
    fc.assert(
      fc.property(anyInput, (input) => {
        const result = parseRegistryHost(input);
        if (!result.ok) return;
        assert.match(result.value.host, anchored);
        assert.ok(result.value.host.startsWith(result.value.account));
        assert.ok(result.value.host.endsWith(`.${result.value.region}.${result.value.domain}`));
        assert.deepEqual(parseRegistryHost(result.value.host), result);
      }),
      { numRuns },
    );
  });

  it('grammar-built hosts with a 12-digit account, a known domain and nothing after it are accepted', () => {
    const valid = fc
      .record({
        scheme: fc.constantFrom('', 'https://'),
        account: fc.stringMatching(/^\d{12}$/),
        dkr: fc.constantFrom('dkr.ecr', 'dkr-ecr', 'dkr.ecr-fips', 'dkr-ecr-fips'),
        region: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/),
        domain: fc.constantFrom('amazonaws.com', 'amazonaws.com.cn', 'amazonaws.eu', 'on.aws', 'c2s.ic.gov', 'sc2s.sgov.gov', 'cloud.adc-e.uk', 'csp.hci.ic.gov'),
      });
    fc.assert(
      fc.property(valid, ({ scheme, account, dkr, region, domain }) => {
        const bare = `${account}.${dkr}.${region}.${domain}`;
        const result = parseRegistryHost(`${scheme}${bare}`);
        assert.ok(result.ok, result.ok ? '' : result.error);
        assert.deepEqual(result.value, { host: bare, account, region, fips: dkr.endsWith('-fips'), domain });
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
      fc.string({ unit: 'grapheme', minLength: 1 }).filter((text) => /\P{ASCII}/u.test(text)).map((text) => `123456789012.dkr.ecr.${text}.amazonaws.com`),
      fc.integer({ min: 0, max: 31 }).map((code) => `123456789012.dkr.ecr.us-east-1${String.fromCharCode(code)}x.amazonaws.com`),
    );
    fc.assert(
      fc.property(bad, (input) => {
        const result = parseRegistryHost(input);
        if (result.ok) assert.fail(`accepted ${JSON.stringify(input.slice(0, 100))}`);
        assert.match(result.error, /empty registry host|longer than 253 characters|not a private ECR registry host/);
        assert.ok(result.error.length < 400, 'the message quotes a cut of the input, not all of it');
      }),
      { numRuns },
    );
  });
});
