// Classifying AWS failures (src/aws/errors.ts): transient ones are retried, denials and invalid
// requests wait for their input to change. (test/aws holds the AWS test server, hence this folder.)

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { classifyAwsError, describeAwsError, type AwsErrorClass } from '../../../src/aws/errors.ts';
import { MalformedAwsResponse } from '../../../src/aws/sdk.ts';

/** An error shaped like the SDK's ServiceException. */
function sdkError(name: string, status?: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), { name, ...(status !== undefined ? { $metadata: { httpStatusCode: status } } : {}), ...extra });
}

function withCause(cause: unknown): Error {
  return new Error('wrapped', { cause });
}

describe('classifyAwsError', () => {
  const cases: { name: string; error: unknown; expect: AwsErrorClass }[] = [
    { name: 'ECR throttling is transient (AWS answers it with 400)', error: sdkError('ThrottlingException', 400), expect: 'transient' },
    { name: 'STS throttling is transient', error: sdkError('Throttling', 400), expect: 'transient' },
    { name: 'TooManyRequestsException is transient', error: sdkError('TooManyRequestsException', 429), expect: 'transient' },
    { name: 'a server exception is transient', error: sdkError('ServerException', 500), expect: 'transient' },
    { name: 'ServiceUnavailable is transient', error: sdkError('ServiceUnavailable', 503), expect: 'transient' },
    { name: 'an unknown 500 is transient', error: sdkError('Weird', 500), expect: 'transient' },
    { name: 'an unknown 503 is transient', error: sdkError('Weird', 503), expect: 'transient' },
    { name: 'an unknown 429 is transient', error: sdkError('Weird', 429), expect: 'transient' },
    { name: 'IDPCommunicationError is transient', error: sdkError('IDPCommunicationErrorException', 400), expect: 'transient' },
    { name: 'a request timeout is transient', error: sdkError('TimeoutError'), expect: 'transient' },
    { name: 'a reset connection is transient', error: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), expect: 'transient' },
    { name: 'a refused connection is transient', error: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), expect: 'transient' },
    { name: 'a DNS failure is transient', error: Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), expect: 'transient' },
    {
      name: 'an undici connect timeout is transient',
      error: Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }),
      expect: 'transient',
    },
    { name: 'an error the SDK marks retryable is transient', error: sdkError('Odd', undefined, { $retryable: { throttling: false } }), expect: 'transient' },
    {
      name: 'a network error wrapped with a cause is transient',
      error: withCause(Object.assign(new Error('reset'), { code: 'ECONNRESET' })),
      expect: 'transient',
    },
    { name: 'a denial wrapped with a cause is a denial', error: withCause(sdkError('AccessDeniedException', 400)), expect: 'denied' },
    { name: 'AccessDenied from STS is a denial', error: sdkError('AccessDenied', 403), expect: 'denied' },
    { name: 'AccessDeniedException from ECR is a denial, though AWS answers 400', error: sdkError('AccessDeniedException', 400), expect: 'denied' },
    { name: 'an invalid client token id is a denial', error: sdkError('InvalidClientTokenId', 403), expect: 'denied' },
    { name: 'an expired token is a denial', error: sdkError('ExpiredTokenException', 400), expect: 'denied' },
    { name: 'an invalid web identity token is a denial', error: sdkError('InvalidIdentityTokenException', 400), expect: 'denied' },
    { name: 'a rejected IdP claim is a denial', error: sdkError('IDPRejectedClaimException', 403), expect: 'denied' },
    { name: 'a bad signature is a denial', error: sdkError('SignatureDoesNotMatch', 403), expect: 'denied' },
    { name: 'no credentials at all is a denial', error: sdkError('CredentialsProviderError'), expect: 'denied' },
    { name: 'an unknown 401 is a denial', error: sdkError('Weird', 401), expect: 'denied' },
    { name: 'an unknown 403 is a denial', error: sdkError('Weird', 403), expect: 'denied' },
    { name: 'a malformed AWS answer is invalid', error: new MalformedAwsResponse('no token'), expect: 'invalid' },
    { name: 'a validation error is invalid', error: sdkError('ValidationError', 400), expect: 'invalid' },
    { name: 'an invalid parameter is invalid', error: sdkError('InvalidParameterException', 400), expect: 'invalid' },
    { name: 'an unknown 400 is invalid', error: sdkError('Weird', 400), expect: 'invalid' },
    { name: 'an unknown 404 is invalid', error: sdkError('Weird', 404), expect: 'invalid' },
    { name: 'the name wins over the status: throttling with 400 stays transient', error: sdkError('ThrottlingException', 400), expect: 'transient' },
    { name: 'an error with no HTTP answer at all is taken as a network failure', error: new Error('fetch failed'), expect: 'transient' },
    { name: 'a string thrown is taken as a network failure', error: 'boom', expect: 'transient' },
    { name: 'undefined thrown is taken as a network failure', error: undefined, expect: 'transient' },
    {
      name: 'an error that is its own cause does not recurse',
      error: ((): Error => {
        const e = new Error('self');
        (e as { cause?: unknown }).cause = e;
        return e;
      })(),
      expect: 'transient',
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(classifyAwsError(c.error), c.expect));
  }

  it('a cycle of causes does not recurse forever', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    assert.equal(classifyAwsError(a), 'transient');
  });
});

describe('describeAwsError', () => {
  it('names the error, its HTTP status and the first line of its message', () => {
    const error = sdkError('AccessDenied', 403);
    error.message = 'User: arn:aws:sts::111122223333:assumed-role/node/i-1 is not authorized to perform: sts:AssumeRole\nmore detail';
    assert.equal(
      describeAwsError(error),
      'AccessDenied (HTTP 403): User: arn:aws:sts::111122223333:assumed-role/node/i-1 is not authorized to perform: sts:AssumeRole',
    );
  });

  it('describes an error without a status', () => assert.equal(describeAwsError(new Error('fetch failed')), 'Error: fetch failed'));
  it('describes a thrown string', () => assert.equal(describeAwsError('boom'), 'Error: boom'));

  it('cuts a long message to 300 characters', () => {
    const description = describeAwsError(new Error('x'.repeat(5_000)));
    assert.ok(description.length <= 'Error: '.length + 300);
  });

  it('does not carry a token or key from the message into logs and Events', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIn0.c2lnbmF0dXJl';
    const description = describeAwsError(sdkError('InvalidIdentityTokenException', 400, { message: `token ${jwt} rejected for AKIAIOSFODNN7EXAMPLE` }));
    assert.ok(!description.includes(jwt), description);
    assert.ok(!description.includes('AKIAIOSFODNN7EXAMPLE'), description);
    assert.match(description, /^InvalidIdentityTokenException \(HTTP 400\): token /);
  });
});
