// The .dockerconfigjson of a pull Secret: built with one auths entry per host, read back exactly, and
// anything malformed refused with a reason.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildDockerConfig, parseDockerConfig, type RegistryLogin } from '../../src/dockerconfig.ts';

const numRuns = 2_000;

const east = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const west = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

describe('buildDockerConfig', () => {
  it('writes one auths entry per host with username, password and auth = base64(username:password)', () => {
    const json = buildDockerConfig([{ host: east, username: 'AWS', password: 'secret' }]);
    assert.deepEqual(JSON.parse(json), { auths: { [east]: { username: 'AWS', password: 'secret', auth: b64('AWS:secret') } } });
  });

  it('sorts hosts so that the same logins in another order give the same bytes', () => {
    const a = { host: east, username: 'AWS', password: 'one' };
    const b = { host: west, username: 'AWS', password: 'two' };
    assert.equal(buildDockerConfig([a, b]), buildDockerConfig([b, a]));
    assert.deepEqual(Object.keys((JSON.parse(buildDockerConfig([a, b])) as { auths: object }).auths), [west, east]);
  });

  it('gives the same bytes in either order for hosts a locale-aware comparison calls equal', () => {
    for (const [x, y] of [
      ['a\u0000', 'a'],
      ['\u00e9', 'e\u0301'],
    ] as const) {
      const one = { host: x, username: 'AWS', password: 'one' };
      const two = { host: y, username: 'AWS', password: 'two' };
      assert.equal(buildDockerConfig([one, two]), buildDockerConfig([two, one]), JSON.stringify([x, y]));
    }
  });

  it('writes an empty auths object for no logins', () => assert.equal(buildDockerConfig([]), '{"auths":{}}'));

  const refused: { name: string; login: RegistryLogin; says: RegExp }[] = [
    { name: 'an empty password is refused', login: { host: east, username: 'AWS', password: '' }, says: /empty credential for 123456789012/ },
    { name: 'an empty username is refused', login: { host: east, username: '', password: 'x' }, says: /empty credential/ },
    { name: 'an empty host is refused', login: { host: '', username: 'AWS', password: 'x' }, says: /an unnamed registry/ },
    { name: 'a username with a colon is refused (auth could not be split back)', login: { host: east, username: 'A:WS', password: 'x' }, says: /contains ':'/ },
  ];
  for (const c of refused) {
    it(c.name, () => assert.throws(() => buildDockerConfig([c.login]), c.says));
  }

  it('does not put the password in its error messages', () => {
    assert.throws(
      () => buildDockerConfig([{ host: east, username: 'A:WS', password: 'hunter2' }]),
      (error: Error) => !error.message.includes('hunter2'),
    );
  });
});

describe('parseDockerConfig', () => {
  it('reads logins back, with or without auth', () => {
    const json = JSON.stringify({
      auths: { [east]: { username: 'AWS', password: 'p', auth: b64('AWS:p') }, [west]: { username: 'AWS', password: 'q', email: 'x@example.com' } },
    });
    assert.deepEqual(parseDockerConfig(json), {
      ok: true,
      value: [
        { host: east, username: 'AWS', password: 'p' },
        { host: west, username: 'AWS', password: 'q' },
      ],
    });
  });

  it('a password containing a colon survives', () => {
    const login = { host: east, username: 'AWS', password: 'a:b:c' };
    assert.deepEqual(parseDockerConfig(buildDockerConfig([login])), { ok: true, value: [login] });
  });

  const refused: { name: string; json: string; says: RegExp }[] = [
    { name: 'text that is not JSON is refused', json: '{"auths":', says: /not JSON/ },
    { name: 'an empty string is refused', json: '', says: /not JSON/ },
    { name: 'JSON null is refused', json: 'null', says: /no auths object/ },
    { name: 'a document without auths is refused', json: '{"credsStore":"ecr-login"}', says: /no auths object/ },
    { name: 'auths as a list is refused', json: '{"auths":[]}', says: /no auths object/ },
    { name: 'auths as a string is refused', json: '{"auths":"x"}', says: /no auths object/ },
    { name: 'an entry without a password is refused', json: `{"auths":{"${east}":{"username":"AWS"}}}`, says: /no username or password/ },
    { name: 'an entry with an empty username is refused', json: `{"auths":{"${east}":{"username":"","password":"x"}}}`, says: /no username or password/ },
    { name: 'an entry that is null is refused', json: `{"auths":{"${east}":null}}`, says: /no username or password/ },
    { name: 'an entry that is a number is refused', json: `{"auths":{"${east}":5}}`, says: /no username or password/ },
    { name: 'an entry with only auth is refused', json: `{"auths":{"${east}":{"auth":"${b64('AWS:x')}"}}}`, says: /no username or password/ },
    {
      name: 'an auth value that does not match username and password is refused',
      json: `{"auths":{"${east}":{"username":"AWS","password":"x","auth":"${b64('AWS:y')}"}}}`,
      says: /does not match/,
    },
  ];
  for (const c of refused) {
    it(c.name, () => {
      const result = parseDockerConfig(c.json);
      assert.ok(!result.ok, 'refused');
      assert.match(result.error, c.says);
    });
  }
});

/** Logins with distinct hosts; usernames without ':'; any non-empty text otherwise. */
const text = fc.oneof(fc.string({ minLength: 1 }), fc.string({ unit: 'binary', minLength: 1 }), fc.string({ unit: 'grapheme', minLength: 1 }));
const logins = fc.uniqueArray(
  fc
    .record({
      host: fc.oneof(text, fc.constantFrom(east, west, '1', '__proto__', 'constructor')),
      username: text.filter((u) => !u.includes(':')),
      password: text,
    })
    .map((login) => ({ ...login })),
  { selector: (login) => login.host, maxLength: 8 },
);

const byHost = (a: RegistryLogin, b: RegistryLogin): number => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0);

describe('dockerconfig properties', () => {
  it('parse(build(logins)) gives the logins back', () => {
    fc.assert(
      fc.property(logins, (input) => {
        const back = parseDockerConfig(buildDockerConfig(input));
        if (!back.ok) assert.fail(back.error);
        assert.deepEqual([...back.value].sort(byHost), [...input].sort(byHost));
      }),
      { numRuns },
    );
  });

  it('the bytes do not depend on the order of the logins', () => {
    fc.assert(
      fc.property(
        logins.chain((input) => fc.tuple(fc.constant(input), fc.shuffledSubarray(input, { minLength: input.length, maxLength: input.length }))),
        ([input, shuffled]) => {
          assert.equal(buildDockerConfig(shuffled), buildDockerConfig(input));
        },
      ),
      { numRuns },
    );
  });

  it('parsing never throws: any text gives logins or an error message', () => {
    const json = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.jsonValue().map((value) => JSON.stringify(value)),
      fc.jsonValue().map((value) => JSON.stringify({ auths: value })),
      fc.dictionary(fc.string(), fc.jsonValue()).map((auths) => JSON.stringify({ auths })),
      fc.nat({ max: 1_000 }).map((n) => `{"auths":{"${'x'.repeat(65_536 + n)}":{}}}`),
    );
    fc.assert(
      fc.property(json, (input) => {
        const result = parseDockerConfig(input);
        if (!result.ok) assert.ok(result.error.length > 0);
        else for (const login of result.value) assert.ok(login.username !== '' && login.password !== '');
      }),
      { numRuns },
    );
  });
});
