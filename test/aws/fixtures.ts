// Shared test fixtures: a controllable clock, well-known users and SDK client factories
// that always pass credentials explicitly (never from the environment).

import { request } from 'node:http';
import { ECRClient } from '@aws-sdk/client-ecr';
import type { ECRPUBLICClient } from '@aws-sdk/client-ecr-public';
import { STSClient } from '@aws-sdk/client-sts';
import type { UserSpec } from './identity.ts';

export interface TestClock {
  now: () => number;
  advance(ms: number): void;
}

export function testClock(start = Date.parse('2030-01-01T00:00:00Z')): TestClock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

export const alice: UserSpec = {
  accessKeyId: 'AKIAALICEEXAMPLE0001',
  secretAccessKey: 'alice/secret/K7MDENG/bPxRfiCYEXAMPLEKEY',
  arn: 'arn:aws:iam::111122223333:user/alice',
};

export const bob: UserSpec = {
  accessKeyId: 'AKIABOBEXAMPLE000002',
  secretAccessKey: 'bob/secret/K7MDENG/bPxRfiCYEXAMPLEKEY00',
  arn: 'arn:aws:iam::444455556666:user/bob',
};

export interface Keys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

const creds = (k: Keys): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } =>
  k.sessionToken === undefined
    ? { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey }
    : { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey, sessionToken: k.sessionToken };

export interface ClientOptions {
  region?: string;
  maxAttempts?: number;
}

export function ecrClient(endpoint: string, keys: Keys, o: ClientOptions = {}): ECRClient {
  return new ECRClient({
    endpoint,
    region: o.region ?? 'eu-west-1',
    credentials: creds(keys),
    maxAttempts: o.maxAttempts ?? 1,
  });
}

export function stsClient(endpoint: string, keys: Keys, o: ClientOptions = {}): STSClient {
  return new STSClient({
    endpoint,
    region: o.region ?? 'us-east-1',
    credentials: creds(keys),
    maxAttempts: o.maxAttempts ?? 1,
  });
}

/** The SDK credentials of an AssumeRole* response. */
export function sessionKeys(
  c: { AccessKeyId?: string | undefined; SecretAccessKey?: string | undefined; SessionToken?: string | undefined } | undefined,
): Keys {
  if (c?.AccessKeyId === undefined || c.SecretAccessKey === undefined) throw new Error('no credentials in the response');
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
}

/** Resolves to the error a promise rejects with (fails when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof Error) return err;
    throw err;
  }
  throw new Error('expected a rejection, but the call succeeded');
}

export interface SignedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

function bodyText(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  if (body === undefined || body === null) return '';
  throw new Error('cannot capture a streaming request body');
}

/** Records the last request the client signed (the deserialize step sees the final request). */
export function captureSigned(client: ECRClient | ECRPUBLICClient | STSClient): () => SignedRequest {
  let last: SignedRequest | undefined;
  // Both clients share the smithy middleware stack; the union of its overloads is not callable.
  const stack = client.middlewareStack as unknown as ECRClient['middlewareStack'];
  stack.add(
    (next) => async (args) => {
      const r = args.request as { method: string; path: string; headers: Record<string, string>; body?: unknown };
      last = { method: r.method, path: r.path, headers: { ...r.headers }, body: bodyText(r.body) };
      return next(args);
    },
    { step: 'deserialize', name: 'captureSignedRequest' },
  );
  return () => {
    if (last === undefined) throw new Error('no request captured');
    return last;
  };
}

/** Sends a request as-is and returns the raw response: to check wire shapes the SDK would hide. */
export function sendRaw(
  endpoint: string,
  req: { method?: string; path?: string; headers: Record<string, string>; body: string },
): Promise<{ status: number; headers: Headers; text: string }> {
  const url = new URL(req.path ?? '/', endpoint);
  return new Promise((resolve, reject) => {
    const r = request(url, { method: req.method ?? 'POST', headers: req.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        resolve({ status: res.statusCode ?? 0, headers, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    r.on('error', reject);
    r.end(req.body);
  });
}
