// Decoding ECR's authorization token (src/aws/sdk.ts): base64("AWS:<password>") or a clear refusal,
// never a broken Secret.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeAuthorization, MalformedAwsResponse } from '../../../src/aws/sdk.ts';

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const expires = new Date(Date.UTC(2025, 0, 1, 12));

describe('decodeAuthorization', () => {
  it('decodes AWS:<password>, with the expiry in epoch ms (the proxy endpoint beside them is not used)', () => {
    const data = { authorizationToken: b64('AWS:s3cret'), expiresAt: expires, proxyEndpoint: 'https://111122223333.dkr.ecr.us-east-1.amazonaws.com' };
    assert.deepEqual(decodeAuthorization(data), { username: 'AWS', password: 's3cret', expiresAt: expires.getTime() });
  });

  it('splits at the first colon, so a password may contain colons', () => {
    const token = decodeAuthorization({ authorizationToken: b64('AWS:a:b:c') });
    assert.equal(token.username, 'AWS');
    assert.equal(token.password, 'a:b:c');
  });

  it('leaves the expiry unknown when AWS gives none', () => assert.equal(decodeAuthorization({ authorizationToken: b64('AWS:x') }).expiresAt, undefined));
  it('leaves the expiry unknown when AWS gives an invalid date', () =>
    assert.equal(decodeAuthorization({ authorizationToken: b64('AWS:x'), expiresAt: new Date(Number.NaN) }).expiresAt, undefined));

  const refused: { name: string; data: Parameters<typeof decodeAuthorization>[0]; says: RegExp }[] = [
    { name: 'no authorization data', data: undefined, says: /returned no authorization token/ },
    { name: 'no token', data: { expiresAt: expires }, says: /returned no authorization token/ },
    { name: 'an empty token', data: { authorizationToken: '' }, says: /returned no authorization token/ },
    { name: 'a token that is not base64', data: { authorizationToken: 'AWS:plain' }, says: /not base64/ },
    { name: 'a token with whitespace', data: { authorizationToken: `${b64('AWS:x')} ` }, says: /not base64/ },
    { name: 'a token of only padding', data: { authorizationToken: '====' }, says: /not base64/ },
    { name: 'a token in base64url', data: { authorizationToken: Buffer.from('AWS:??>>').toString('base64url') }, says: /not base64/ },
    { name: 'a decoded token without a colon', data: { authorizationToken: b64('AWSpassword') }, says: /not <user>:<password>/ },
    { name: 'a decoded token with an empty user', data: { authorizationToken: b64(':password') }, says: /not <user>:<password>/ },
    { name: 'a decoded token with an empty password', data: { authorizationToken: b64('AWS:') }, says: /not <user>:<password>/ },
  ];
  for (const c of refused) {
    it(`refuses ${c.name} with MalformedAwsResponse`, () => {
      assert.throws(
        () => decodeAuthorization(c.data),
        (error: unknown) => error instanceof MalformedAwsResponse && error.name === 'MalformedAwsResponse' && c.says.test(error.message),
      );
    });
  }

  it('does not put the token in its error messages', () => {
    const token = b64('AWSsecretpasswordwithoutcolon');
    assert.throws(
      () => decodeAuthorization({ authorizationToken: token }),
      (error: Error) => !error.message.includes(token) && !error.message.includes('secretpassword'),
    );
  });
});

describe('decodeAuthorization properties', () => {
  it('any user without a colon and any non-empty password round-trip', () => {
    const user = fc.string({ minLength: 1 }).filter((u) => !u.includes(':'));
    const password = fc.string({ minLength: 1 });
    fc.assert(
      fc.property(user, password, (u, p) => {
        const token = decodeAuthorization({ authorizationToken: b64(`${u}:${p}`), expiresAt: expires });
        assert.deepEqual(token, { username: u, password: p, expiresAt: expires.getTime() });
      }),
      { numRuns: 2_000 },
    );
  });

  it('any other token gives a token with a user and password, or a MalformedAwsResponse with a message', () => {
    const token = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.uint8Array().map((bytes) => Buffer.from(bytes).toString('base64')),
      fc.base64String(),
    );
    fc.assert(
      fc.property(token, (t) => {
        try {
          const decoded = decodeAuthorization({ authorizationToken: t });
          assert.ok(decoded.username !== '' && decoded.password !== '');
          assert.ok(!decoded.username.includes(':'));
        } catch (error) {
          assert.ok(error instanceof MalformedAwsResponse, String(error));
          assert.ok(error.message.length > 0);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
