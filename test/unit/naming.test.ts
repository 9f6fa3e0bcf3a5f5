// Derived names: Secret names that never collide between ServiceAccounts (long ones hashed, always
// valid object names) and STS session names of at most 64 characters of [\w+=,.@-].

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type Source } from '../../src/annotations.ts';
import { secretNameFor, sessionNameFor, shortHash } from '../../src/naming.ts';
import { dnsSubdomainProblem } from '../../src/validation.ts';

const numRuns = 2_000;

const ns = (name: string): Source => ({ kind: 'Namespace', namespace: name, name });
const sa = (namespace: string, name: string): Source => ({ kind: 'ServiceAccount', namespace, name });

describe('secretNameFor', () => {
  const cases: { name: string; source: Source; explicit?: string; base: string; expect: string }[] = [
    { name: 'a Namespace annotation gets the base name', source: ns('team-a'), base: 'ecr-login', expect: 'ecr-login' },
    { name: 'the static target gets the base name', source: { kind: 'Target', namespace: 'ops', name: 'ops' }, base: 'regcred', expect: 'regcred' },
    { name: 'a ServiceAccount annotation gets the base name and its own', source: sa('team-a', 'builder'), base: 'ecr-login', expect: 'ecr-login-builder' },
    { name: 'an explicit name wins for a Namespace', source: ns('team-a'), explicit: 'pull', base: 'ecr-login', expect: 'pull' },
    { name: 'an explicit name wins for a ServiceAccount', source: sa('team-a', 'builder'), explicit: 'pull', base: 'ecr-login', expect: 'pull' },
    {
      name: 'a name of exactly 253 characters is kept whole',
      source: sa('team-a', 'b'.repeat(253 - 'ecr-login-'.length)),
      base: 'ecr-login',
      expect: `ecr-login-${'b'.repeat(243)}`,
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(secretNameFor(c.source, c.explicit, c.base), c.expect));
  }

  it('a name longer than 253 characters keeps its start and ends with a hash of the ServiceAccount name', () => {
    const long = 'b'.repeat(250);
    const name = secretNameFor(sa('team-a', long), undefined, 'ecr-login');
    assert.equal(name.length, 253);
    assert.ok(name.startsWith('ecr-login-bbbb'));
    assert.ok(name.endsWith(`-${shortHash(long, 10)}`));
    assert.equal(dnsSubdomainProblem(name), undefined);
  });

  it('two long ServiceAccount names with the same start get different names', () => {
    const a = secretNameFor(sa('team-a', `${'x'.repeat(250)}-one`), undefined, 'ecr-login');
    const b = secretNameFor(sa('team-a', `${'x'.repeat(250)}-two`), undefined, 'ecr-login');
    assert.notEqual(a, b);
  });

  it('a cut that would end in a dot or hyphen drops them before the hash', () => {
    const name = secretNameFor(sa('team-a', `${'a'.repeat(231)}.-.b${'c'.repeat(30)}`), undefined, 'ecr-login');
    assert.equal(dnsSubdomainProblem(name), undefined, name);
    assert.doesNotMatch(name, /[-.]{2}/);
  });
});

describe('sessionNameFor', () => {
  const cases: { name: string; source: Source; expect: string }[] = [
    { name: 'a Namespace session is named for the namespace', source: ns('team-a'), expect: 'ecr-login.team-a' },
    { name: 'a ServiceAccount session is named for the namespace and ServiceAccount', source: sa('team-a', 'builder'), expect: 'ecr-login.team-a.builder' },
    { name: 'characters STS refuses become hyphens', source: sa('team a', 'b/c:d'), expect: 'ecr-login.team-a.b-c-d' },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(sessionNameFor(c.source), c.expect));
  }

  it('a long session name is cut to 64 characters ending with a hash of the whole', () => {
    const source = sa('team-a', 'x'.repeat(100));
    const name = sessionNameFor(source);
    assert.equal(name.length, 64);
    assert.ok(name.endsWith(`-${shortHash('ecr-login.team-a.' + 'x'.repeat(100), 10)}`));
  });
});

const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
/** RFC 1123 subdomains, short ones and ones near the 253-character limit. */
const subdomain = fc
  .oneof(
    fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.')),
    fc.tuple(fc.integer({ min: 180, max: 240 }), label).map(([n, tail]) => `${'a'.repeat(n)}.${tail}`.slice(0, 253).replace(/[-.]+$/, '')),
  )
  .filter((name) => name.length <= 253 && dnsSubdomainProblem(name) === undefined);
const base = subdomain.filter((name) => name.length <= 200);
const namespaceName = label;

describe('naming properties', () => {
  it('a ServiceAccount Secret name is always a valid object name of at most 253 characters', () => {
    fc.assert(
      fc.property(base, namespaceName, subdomain, (b, namespace, name) => {
        const secret = secretNameFor(sa(namespace, name), undefined, b);
        assert.equal(dnsSubdomainProblem(secret), undefined, secret);
        assert.notEqual(secret, b, 'never the Namespace Secret name');
      }),
      { numRuns },
    );
  });

  it('two different ServiceAccounts never get the same derived Secret name', () => {
    fc.assert(
      fc.property(base, namespaceName, subdomain, subdomain, (b, namespace, one, two) => {
        fc.pre(one !== two);
        assert.notEqual(secretNameFor(sa(namespace, one), undefined, b), secretNameFor(sa(namespace, two), undefined, b));
      }),
      { numRuns },
    );
  });

  it('a session name is 2 to 64 characters of [\\w+=,.@-] and stable', () => {
    const source = fc.oneof(
      fc.tuple(namespaceName, subdomain).map(([namespace, name]) => sa(namespace, name)),
      namespaceName.map((name) => ns(name)),
      fc.tuple(fc.string(), fc.string()).map(([namespace, name]) => sa(namespace, name)),
    );
    fc.assert(
      fc.property(source, (s) => {
        const name = sessionNameFor(s);
        assert.match(name, /^[\w+=,.@-]{2,64}$/);
        assert.equal(sessionNameFor(s), name);
      }),
      { numRuns },
    );
  });

  it('different ServiceAccounts get different session names', () => {
    fc.assert(
      fc.property(namespaceName, subdomain, subdomain, (namespace, one, two) => {
        fc.pre(one !== two);
        assert.notEqual(sessionNameFor(sa(namespace, one)), sessionNameFor(sa(namespace, two)));
      }),
      { numRuns },
    );
  });
});
