// Web identity token verification as STS does it: the issuer must be registered (an IAM
// OIDC provider), its discovery document and JWKS are fetched over http(s) (custom CA and
// bearer token allowed, for a local kube-apiserver), the RS256/ES256 signature is checked
// with node:crypto, then aud, exp, nbf and iat against the injected clock.
// JWKS are cached briefly and refetched when a token names an unknown kid.

import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { AwsError } from './errors.ts';

export interface IssuerSpec {
  /** The `iss` value, e.g. https://127.0.0.1:6443 */
  issuer: string;
  /** PEM of the CA that signed the issuer's serving certificate (https issuers). */
  ca?: string;
  /** Sent as `Authorization: Bearer` to the issuer's own origin (kube-apiserver needs one). */
  bearerToken?: string;
  /** Accepted `aud` values (the provider's client ids); default ["sts.amazonaws.com"]. */
  audiences?: string[];
}

export interface VerifiedToken {
  issuer: string;
  subject: string;
  /** The audience that matched. */
  audience: string;
  claims: Record<string, unknown>;
}

export interface VerifierOptions {
  now: () => number;
  clockSkewSeconds?: number;
  jwksCacheMs?: number;
  fetchTimeoutMs?: number;
}

interface KeySet {
  byKid: Map<string, KeyObject>;
  all: KeyObject[];
  fetchedAt: number;
}

const invalid = (message: string): AwsError => new AwsError('InvalidIdentityToken', message);
const communication = (detail: string): AwsError =>
  new AwsError(
    'IDPCommunicationError',
    "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements",
    400,
    detail,
  );

const algorithms: Record<string, { hash: string; keyType: 'rsa' | 'ec' }> = {
  RS256: { hash: 'sha256', keyType: 'rsa' },
  RS384: { hash: 'sha384', keyType: 'rsa' },
  RS512: { hash: 'sha512', keyType: 'rsa' },
  ES256: { hash: 'sha256', keyType: 'ec' },
  ES384: { hash: 'sha384', keyType: 'ec' },
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function decodePart(part: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw invalid('The ID Token provided is not a valid JWT.');
  }
  if (!isRecord(parsed)) throw invalid('The ID Token provided is not a valid JWT.');
  return parsed;
}

const stripSlash = (u: string): string => u.replace(/\/+$/, '');

export class WebIdentityVerifier {
  readonly #now: () => number;
  readonly #skew: number;
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  readonly #issuers = new Map<string, IssuerSpec>();
  readonly #keys = new Map<string, Promise<KeySet>>();

  constructor(options: VerifierOptions) {
    this.#now = options.now;
    this.#skew = options.clockSkewSeconds ?? 60;
    this.#cacheMs = options.jwksCacheMs ?? 60_000;
    this.#timeoutMs = options.fetchTimeoutMs ?? 5_000;
  }

  trustIssuer(spec: IssuerSpec): void {
    this.#issuers.set(spec.issuer, { ...spec });
    this.#keys.delete(spec.issuer);
  }

  untrustIssuer(issuer: string): void {
    this.#issuers.delete(issuer);
    this.#keys.delete(issuer);
  }

  issuers(): IssuerSpec[] {
    return [...this.#issuers.values()].map((s) => ({ ...s }));
  }

  async verify(token: string): Promise<VerifiedToken> {
    const parts = token.split('.');
    if (parts.length !== 3) throw invalid('The ID Token provided is not a valid JWT.');
    const [h, p, s] = parts as [string, string, string];
    const header = decodePart(h);
    const claims = decodePart(p);

    const iss = claims['iss'];
    if (typeof iss !== 'string') throw invalid('The ID Token provided has no issuer.');
    const spec = this.#issuers.get(iss);
    if (spec === undefined) throw invalid(`No OpenIDConnect provider found in your account for ${iss}`);

    const audiences = spec.audiences ?? ['sts.amazonaws.com'];
    const aud = claims['aud'];
    const tokenAudiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a) => typeof a === 'string') : [];
    const audience = tokenAudiences.find((a) => audiences.includes(a));
    if (audience === undefined) throw invalid('Incorrect token audience');

    const alg = typeof header['alg'] === 'string' ? algorithms[header['alg']] : undefined;
    if (alg === undefined) throw invalid(`Unsupported signing algorithm: ${String(header['alg'])}`);
    const kid = typeof header['kid'] === 'string' ? header['kid'] : undefined;
    const key = await this.#key(spec, kid);
    if (key === undefined) throw invalid('Unable to find a key in the JWKS that matches the kid of the token');
    if (key.asymmetricKeyType !== alg.keyType) throw invalid('The key type does not match the token algorithm');
    const signature = Buffer.from(s, 'base64url');
    const signed = Buffer.from(`${h}.${p}`);
    // JWS ECDSA signatures are r||s, not DER.
    const ok = cryptoVerify(alg.hash, signed, alg.keyType === 'ec' ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
    if (!ok) throw invalid("Couldn't verify the signature of the token");

    const nowSeconds = this.#now() / 1000;
    const exp = claims['exp'];
    if (typeof exp !== 'number') throw invalid('The ID Token provided has no expiration.');
    if (nowSeconds > exp + this.#skew) {
      // Sic: the real message has no space before the second timestamp.
      throw new AwsError('ExpiredTokenException', `Token expired: current date/time ${Math.floor(nowSeconds)} must be before the expiration date/time${exp}`);
    }
    const nbf = claims['nbf'];
    if (typeof nbf === 'number' && nbf > nowSeconds + this.#skew) throw invalid('Token is not valid yet (nbf)');
    const iat = claims['iat'];
    if (iat !== undefined && (typeof iat !== 'number' || iat > nowSeconds + this.#skew)) {
      throw invalid('Token issued in the future (iat)');
    }
    const sub = claims['sub'];
    if (typeof sub !== 'string' || sub === '') throw invalid('The ID Token provided has no subject.');
    return { issuer: iss, subject: sub, audience, claims };
  }

  /** The verification key for a kid, refetching the JWKS once when the kid is unknown. */
  async #key(spec: IssuerSpec, kid: string | undefined): Promise<KeyObject | undefined> {
    const pick = (set: KeySet): KeyObject | undefined => (kid !== undefined ? set.byKid.get(kid) : set.all.length === 1 ? set.all[0] : undefined);
    let set = await this.#keySet(spec, false);
    let key = pick(set);
    if (key === undefined) {
      set = await this.#keySet(spec, true);
      key = pick(set);
    }
    return key;
  }

  async #keySet(spec: IssuerSpec, refresh: boolean): Promise<KeySet> {
    const cached = this.#keys.get(spec.issuer);
    if (cached !== undefined && !refresh) {
      const set = await cached.catch(() => undefined);
      if (set !== undefined && performance.now() - set.fetchedAt < this.#cacheMs) return set;
    }
    const pending = this.#fetchKeySet(spec);
    this.#keys.set(spec.issuer, pending);
    pending.catch(() => this.#keys.delete(spec.issuer));
    return pending;
  }

  async #fetchKeySet(spec: IssuerSpec): Promise<KeySet> {
    const discoveryUrl = `${stripSlash(spec.issuer)}/.well-known/openid-configuration`;
    const discovery = await this.#getJson(spec, discoveryUrl, 'application/json');
    if (!isRecord(discovery) || typeof discovery['jwks_uri'] !== 'string') {
      throw communication(`${discoveryUrl}: no jwks_uri`);
    }
    if (typeof discovery['issuer'] === 'string' && stripSlash(discovery['issuer']) !== stripSlash(spec.issuer)) {
      throw invalid('The issuer in the OpenID configuration does not match the token issuer');
    }
    // kube-apiserver answers 406 unless the JWK Set media type is acceptable.
    const jwksUrl = discovery['jwks_uri'];
    const jwks = await this.#getJson(spec, jwksUrl, 'application/jwk-set+json, application/json');
    if (!isRecord(jwks) || !Array.isArray(jwks['keys'])) throw communication(`${jwksUrl}: no keys`);
    const set: KeySet = { byKid: new Map(), all: [], fetchedAt: performance.now() };
    for (const jwk of jwks['keys'] as unknown[]) {
      if (!isRecord(jwk) || (jwk['use'] !== undefined && jwk['use'] !== 'sig')) continue;
      let key: KeyObject;
      try {
        key = createPublicKey({ key: jwk, format: 'jwk' });
      } catch {
        continue;
      }
      set.all.push(key);
      if (typeof jwk['kid'] === 'string') set.byKid.set(jwk['kid'], key);
    }
    return set;
  }

  #getJson(spec: IssuerSpec, url: string, accept: string): Promise<unknown> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return Promise.reject(communication(`not a URL: ${url}`));
    }
    const sameOrigin = target.origin === new URL(spec.issuer).origin;
    const headers: Record<string, string> = { accept };
    if (spec.bearerToken !== undefined && sameOrigin) headers['authorization'] = `Bearer ${spec.bearerToken}`;
    const options: https.RequestOptions = { headers, timeout: this.#timeoutMs };
    if (spec.ca !== undefined) options.ca = spec.ca;
    const get = target.protocol === 'https:' ? https.get : target.protocol === 'http:' ? http.get : undefined;
    if (get === undefined) return Promise.reject(communication(`unsupported scheme: ${url}`));
    return new Promise((resolve, reject) => {
      const req = get(target, options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 1 << 20) req.destroy(new Error('response too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(communication(`GET ${url}: HTTP ${String(res.statusCode)}`));
            return;
          }
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch {
            reject(communication(`GET ${url}: not JSON`));
          }
        });
        res.on('error', (err) => {
          reject(communication(`GET ${url}: ${err.message}`));
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        reject(communication(`GET ${url}: ${err.message}`));
      });
    });
  }
}
