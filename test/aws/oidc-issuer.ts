// A tiny OIDC issuer for tests: serves /.well-known/openid-configuration and a JWKS over
// http (or https with a given key and certificate) on 127.0.0.1, and signs RS256 JWTs
// with its current key. `rotate()` switches to a new key and kid; `requireBearer` makes
// it answer 401 without that token, like a kube-apiserver. Like kube-apiserver, the JWKS is
// served as application/jwk-set+json, with 406 when the Accept header does not allow it.

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OidcIssuer {
  /** http(s)://127.0.0.1:PORT */
  readonly issuer: string;
  readonly kid: string;
  /** Discovery and JWKS requests answered so far. */
  readonly fetches: number;
  /** Signs claims with the current key (iss defaults to this issuer). */
  sign(claims: Record<string, unknown>): string;
  /** A new key and kid; the old key is no longer published. */
  rotate(): void;
  close(): Promise<void>;
}

export interface OidcIssuerOptions {
  tls?: { key: string; cert: string };
  requireBearer?: string;
}

export function generateRsaKey(): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

/** A compact RS256 JWS. */
export function signJwt(privateKey: KeyObject, kid: string | undefined, claims: Record<string, unknown>): string {
  const header = kid === undefined ? { alg: 'RS256', typ: 'JWT' } : { alg: 'RS256', typ: 'JWT', kid };
  const encode = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${encode(header)}.${encode(claims)}`;
  return `${input}.${cryptoSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

/** Service account token claims as a kube-apiserver would issue them, valid for `lifetimeSeconds` from `nowMs`. */
export function serviceAccountClaims(
  issuer: string,
  subject: string,
  nowMs: number,
  overrides: Record<string, unknown> = {},
  lifetimeSeconds = 3600,
): Record<string, unknown> {
  const iat = Math.floor(nowMs / 1000);
  return { iss: issuer, sub: subject, aud: ['sts.amazonaws.com'], iat, nbf: iat, exp: iat + lifetimeSeconds, ...overrides };
}

/** A self-signed certificate for 127.0.0.1 made with the openssl CLI; undefined when openssl is missing. */
export function selfSignedCert(): { key: string; cert: string } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function startOidcIssuer(options: OidcIssuerOptions = {}): Promise<OidcIssuer> {
  let key = generateRsaKey();
  let generation = 1;
  let fetches = 0;
  const kid = (): string => `test-key-${generation}`;
  let issuer = '';

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (options.requireBearer !== undefined && req.headers.authorization !== `Bearer ${options.requireBearer}`) {
      json(401, { kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
      return;
    }
    fetches++;
    if (req.url === '/.well-known/openid-configuration') {
      json(200, {
        issuer,
        jwks_uri: `${issuer}/openid/v1/jwks`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    } else if (req.url === '/openid/v1/jwks') {
      const accept = req.headers.accept ?? '*/*';
      if (!/application\/jwk-set\+json|application\/\*|\*\/\*/.test(accept)) {
        json(406, { kind: 'Status', status: 'Failure', reason: 'NotAcceptable', code: 406 });
        return;
      }
      const jwk = key.export({ format: 'jwk' });
      const body = { keys: [{ kty: jwk.kty, n: jwk.n, e: jwk.e, use: 'sig', alg: 'RS256', kid: kid() }] };
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify(body));
    } else {
      json(404, {});
    }
  };
  const server = options.tls ? https.createServer(options.tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `${options.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    get kid() {
      return kid();
    },
    get fetches() {
      return fetches;
    },
    sign: (claims) => signJwt(key, kid(), { iss: issuer, ...claims }),
    rotate: () => {
      key = generateRsaKey();
      generation++;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
