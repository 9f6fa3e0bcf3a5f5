// Classifies AWS failures: transient ones are retried with backoff; denials and invalid requests
// wait for their input to change (or a long backoff) instead of being retried in a hot loop.

import { redactString } from '../log.ts';

export type AwsErrorClass = 'transient' | 'denied' | 'invalid';

const transientNames = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'ServerException',
  'InternalFailure',
  'InternalError',
  'InternalServerError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'IDPCommunicationError',
  'IDPCommunicationErrorException',
  'EC2ThrottledException',
  'ProvisionedThroughputExceededException',
]);

const deniedNames = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidIdentityToken',
  'InvalidIdentityTokenException',
  'IDPRejectedClaim',
  'IDPRejectedClaimException',
  'RegionDisabledException',
  'CredentialsProviderError',
  'SignatureDoesNotMatch',
  'MissingAuthenticationToken',
]);

const transientCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

interface SdkLikeError {
  name?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
  cause?: unknown;
}

export function classifyAwsError(error: unknown): AwsErrorClass {
  return classify(error, 0);
}

function classify(error: unknown, depth: number): AwsErrorClass {
  const e = (typeof error === 'object' && error !== null ? error : {}) as SdkLikeError;
  const name = typeof e.name === 'string' ? e.name : '';
  if (transientNames.has(name)) return 'transient';
  if (deniedNames.has(name)) return 'denied';
  if (name === 'MalformedAwsResponse' || name === 'ValidationError' || name === 'InvalidParameterException') {
    return 'invalid';
  }
  const code = typeof e.code === 'string' ? e.code : '';
  if (transientCodes.has(code)) return 'transient';
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined) {
    if (status >= 500 || status === 429) return 'transient';
    if (status === 401 || status === 403) return 'denied';
    return 'invalid';
  }
  if (e.$retryable !== undefined) return 'transient';
  // Bounded: a chain of causes can be a cycle.
  if (e.cause !== undefined && e.cause !== error && depth < 8) return classify(e.cause, depth + 1);
  // No HTTP answer at all: the network failed somewhere between us and AWS.
  return 'transient';
}

/** A one-line description of an AWS failure that is safe to log and put in an Event. */
export function describeAwsError(error: unknown): string {
  const e = (typeof error === 'object' && error !== null ? error : {}) as SdkLikeError & { message?: unknown };
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const raw = typeof e.message === 'string' ? e.message : String(error);
  // Redacted: this goes into Events too, which the log's redaction does not see.
  const message = redactString(raw.split('\n')[0] ?? '').slice(0, 300);
  const status = e.$metadata?.httpStatusCode;
  return `${name}${status !== undefined ? ` (HTTP ${status})` : ''}: ${message}`;
}
