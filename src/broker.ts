// The token broker: one GetAuthorizationToken per distinct (identity, token endpoint), shared by every
// Secret that needs it. A token endpoint is ECR in a region (or its FIPS or dual-stack endpoint), or
// ECR Public. Concurrent requests for the same key collapse into one call; a token is
// reused until it is due; failures are remembered briefly so that many namespaces sharing a broken
// identity do not each call AWS.

import pRetry from 'p-retry';
import { untilAborted } from './abort.ts';
import { endpointKey, stsEndpointFor, type ApiEndpoint, type AwsApi, type AwsCredentials, type EcrEndpoint } from './aws/api.ts';
import { classifyAwsError, describeAwsError, type AwsErrorClass } from './aws/errors.ts';
import type { Clock } from './clock.ts';
import type { Settings } from './config/settings.ts';
import { classifyKubeError, describeKubeError } from './kube/api.ts';
import type { Identity } from './policy.ts';
import { refreshTime } from './refresh.ts';

/** A token as the broker hands it out. */
export interface IssuedToken {
  readonly username: string;
  readonly password: string;
  readonly issuedAt: number;
  readonly expiresAt: number | undefined;
}

/** The identity to get a token for, with what its STS session is called. */
export type TokenIdentity =
  | { readonly mode: 'controller' }
  | { readonly mode: 'assume-role'; readonly roleArn: string; readonly sessionName: string }
  | {
      readonly mode: 'service-account';
      readonly roleArn: string;
      readonly namespace: string;
      readonly serviceAccount: string;
      readonly sessionName: string;
    };

/** Mints ServiceAccount tokens (TokenRequest) for per-tenant web identity. */
export interface ServiceAccountTokens {
  mint(namespace: string, serviceAccount: string, audience: string, expirationSeconds: number): Promise<string>;
}

/** ECR Public's GetAuthorizationToken is named as its IAM action, to tell it from ECR's. */
export type AwsApiName = 'GetAuthorizationToken' | 'ecr-public:GetAuthorizationToken' | 'AssumeRole' | 'AssumeRoleWithWebIdentity' | 'TokenRequest';

/** A failure to get a token, classified, with a message safe for logs and Events. */
export class TokenError extends Error {
  override readonly name = 'TokenError';
  readonly kind: AwsErrorClass;
  readonly api: AwsApiName;

  constructor(api: AwsApiName, kind: AwsErrorClass, message: string, options?: ErrorOptions) {
    super(message, options);
    this.api = api;
    this.kind = kind;
  }
}

export interface BrokerOptions {
  readonly aws: AwsApi;
  readonly serviceAccountTokens: ServiceAccountTokens;
  readonly clock: Clock;
  readonly settings: () => Settings;
  /** Retries of one AWS call on transient errors (p-retry), and their first delay, ms. */
  readonly retries?: number;
  readonly retryMinDelayMs?: number;
  readonly retryMaxDelayMs?: number;
  /** How long a transient failure is remembered before the next caller tries again, ms. */
  readonly transientFailureTtlMs?: number;
  readonly onAwsCall?: (api: AwsApiName, outcome: 'success' | AwsErrorClass) => void;
}

export const webIdentityAudience = 'sts.amazonaws.com';
/** p-retry's longest delay between attempts of one AWS call, ms (unless retryMaxDelayMs says otherwise). */
export const awsRetryMaxDelayMs = 8_000;
/** TokenRequest's minimum lifetime; the token is only used once, right away. */
const webIdentityTokenSeconds = 600;
/** Entries unused this long are dropped, so that removed namespaces do not pin memory. */
const idleEntryMs = 26 * 3_600_000;
/** How often token() looks for such entries. */
const pruneEveryMs = 3_600_000;

interface Entry {
  readonly token: IssuedToken;
  /** The key of the STS session it was fetched with. */
  readonly session: string;
  lastUsed: number;
}

interface Failure {
  readonly error: TokenError;
  readonly until: number;
}

export class TokenBroker {
  readonly #options: BrokerOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #failures = new Map<string, Failure>();
  readonly #inflight = new Map<string, { readonly token: Promise<IssuedToken>; readonly session: string }>();
  readonly #credentials = new Map<string, Promise<AwsCredentials>>();
  #prunedAt: number;

  constructor(options: BrokerOptions) {
    this.#options = options;
    this.#prunedAt = options.clock.now();
  }

  /**
   * A token for identity from a token endpoint (ECR in a region, or ECR Public). The cached token is
   * handed out when `acceptable` says it is fresh enough for the caller (by default: not yet due for
   * refresh); otherwise the broker fetches a new one, but never for the same key more often than the
   * settings' minInterval. An aborted `signal` ends this caller's wait, not the fetch others may share.
   */
  async token(identity: TokenIdentity, endpoint: EcrEndpoint, acceptable?: (token: IssuedToken) => boolean, signal?: AbortSignal): Promise<IssuedToken> {
    const key = tokenKey(identity, endpoint);
    const now = this.#options.clock.now();
    if (now - this.#prunedAt >= pruneEveryMs) {
      this.#prunedAt = now;
      this.prune();
    }
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      const refresh = this.#options.settings().refresh;
      const fresh = acceptable === undefined ? refreshTime(entry.token, refresh) > now : acceptable(entry.token);
      const tooSoon = now < entry.token.issuedAt + refresh.minInterval;
      if (fresh || tooSoon) {
        entry.lastUsed = now;
        return entry.token;
      }
    }
    const failure = this.#failures.get(key);
    if (failure !== undefined && now < failure.until) throw failure.error;

    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      const sts = stsEndpointFor(endpoint);
      const session = sessionKey(identity, sts);
      pending = { token: this.#fetch(key, identity, endpoint, sts, session).finally(() => this.#inflight.delete(key)), session };
      this.#inflight.set(key, pending);
    }
    return untilAborted(pending.token, signal);
  }

  /** Number of cached tokens (for metrics and tests). */
  get size(): number {
    return this.#entries.size;
  }

  /** Number of cached STS sessions (for tests). */
  get cachedCredentials(): number {
    return this.#credentials.size;
  }

  /** Drops entries and failures nobody asked for in a day, and the sessions of identities with no token left. */
  prune(): void {
    const now = this.#options.clock.now();
    for (const [key, entry] of this.#entries) if (now - entry.lastUsed > idleEntryMs) this.#entries.delete(key);
    for (const [key, failure] of this.#failures) if (now >= failure.until) this.#failures.delete(key);
    // A session (identity, STS endpoint) may serve several tokens (ECR in us-east-1 and ECR Public): it
    // is kept while one of them is; refetched when next needed.
    const live = new Set([...this.#entries.values(), ...this.#inflight.values()].map((used) => used.session));
    for (const key of this.#credentials.keys()) if (!live.has(key)) this.#credentials.delete(key);
  }

  async #fetch(key: string, identity: TokenIdentity, endpoint: EcrEndpoint, sts: ApiEndpoint, session: string): Promise<IssuedToken> {
    const { clock, settings } = this.#options;
    const api: AwsApiName = endpoint.service === 'ecr-public' ? 'ecr-public:GetAuthorizationToken' : 'GetAuthorizationToken';
    try {
      const credentials = await this.#credentialsFor(identity, sts, session);
      const token = await this.#call(api, () => this.#options.aws.getAuthorizationToken(endpoint, credentials));
      const issued: IssuedToken = {
        username: token.username,
        password: token.password,
        issuedAt: clock.now(),
        expiresAt: token.expiresAt,
      };
      this.#entries.set(key, { token: issued, session, lastUsed: issued.issuedAt });
      this.#failures.delete(key);
      return issued;
    } catch (error) {
      const failed = error instanceof TokenError ? error : new TokenError(api, 'transient', String(error));
      const ttl = failed.kind === 'transient' ? (this.#options.transientFailureTtlMs ?? 2_000) : settings().refresh.minInterval;
      this.#failures.set(key, { error: failed, until: clock.now() + ttl });
      throw failed;
    }
  }

  async #credentialsFor(identity: TokenIdentity, sts: ApiEndpoint, key: string): Promise<AwsCredentials | undefined> {
    if (identity.mode === 'controller') return undefined;
    const now = this.#options.clock.now();
    const cached = this.#credentials.get(key);
    if (cached !== undefined) {
      const credentials = await cached.catch(() => undefined);
      // Keep five minutes of headroom; an STS session lasts at least fifteen.
      if (credentials?.expiration !== undefined && credentials.expiration.getTime() - 300_000 > now) return credentials;
      this.#credentials.delete(key);
    }
    const pending = this.#assume(identity, sts);
    this.#credentials.set(key, pending);
    pending.catch(() => this.#credentials.delete(key));
    return pending;
  }

  async #assume(identity: Exclude<TokenIdentity, { mode: 'controller' }>, endpoint: ApiEndpoint): Promise<AwsCredentials> {
    const { aws, settings } = this.#options;
    const durationSeconds = settings().aws.sessionDurationSeconds;
    if (identity.mode === 'assume-role') {
      const externalId = settings().aws.externalId;
      return this.#call('AssumeRole', () =>
        aws.assumeRole({
          endpoint,
          roleArn: identity.roleArn,
          sessionName: identity.sessionName,
          durationSeconds,
          ...(externalId !== undefined ? { externalId } : {}),
        }),
      );
    }
    let webIdentityToken: string;
    try {
      webIdentityToken = await this.#options.serviceAccountTokens.mint(
        identity.namespace,
        identity.serviceAccount,
        webIdentityAudience,
        webIdentityTokenSeconds,
      );
      this.#options.onAwsCall?.('TokenRequest', 'success');
    } catch (error) {
      const kind = classifyKubeError(error);
      this.#options.onAwsCall?.('TokenRequest', kind);
      throw new TokenError(
        'TokenRequest',
        kind,
        `could not request a token for ServiceAccount ${identity.namespace}/${identity.serviceAccount}: ${describeKubeError(error)}`,
        { cause: error },
      );
    }
    return this.#call('AssumeRoleWithWebIdentity', () =>
      aws.assumeRoleWithWebIdentity({
        endpoint,
        roleArn: identity.roleArn,
        sessionName: identity.sessionName,
        durationSeconds,
        webIdentityToken,
      }),
    );
  }

  /** One AWS call with p-retry on transient errors; the result is counted per attempt. */
  async #call<T>(api: AwsApiName, call: () => Promise<T>): Promise<T> {
    const onAwsCall = this.#options.onAwsCall;
    try {
      return await pRetry(
        async () => {
          try {
            const result = await call();
            onAwsCall?.(api, 'success');
            return result;
          } catch (error) {
            onAwsCall?.(api, classifyAwsError(error));
            throw error instanceof Error ? error : new Error(String(error));
          }
        },
        {
          retries: this.#options.retries ?? 3,
          minTimeout: this.#options.retryMinDelayMs ?? 500,
          maxTimeout: this.#options.retryMaxDelayMs ?? awsRetryMaxDelayMs,
          factor: 2,
          randomize: true,
          shouldRetry: ({ error }) => classifyAwsError(error) === 'transient',
        },
      );
    } catch (error) {
      throw new TokenError(api, classifyAwsError(error), `${api} failed: ${describeAwsError(error)}`, { cause: error });
    }
  }
}

/** The cache key of an identity: who the token is for, without the endpoint. */
export function identityKey(identity: TokenIdentity): string {
  switch (identity.mode) {
    case 'controller':
      return 'controller';
    case 'assume-role':
      return `assume-role|${identity.roleArn}|${identity.sessionName}`;
    case 'service-account':
      return `service-account|${identity.namespace}/${identity.serviceAccount}|${identity.roleArn}`;
  }
}

export function tokenKey(identity: TokenIdentity, endpoint: EcrEndpoint): string {
  return `${identityKey(identity)}|${endpointKey(endpoint.service, endpoint)}`;
}

/** The cache key of an STS session: the identity and the STS endpoint it was obtained from. */
function sessionKey(identity: TokenIdentity, sts: ApiEndpoint): string {
  return `${identityKey(identity)}|${endpointKey('sts', sts)}`;
}

/** Describes an Identity without secrets, for logs and Events. */
export function describeIdentity(identity: Identity | TokenIdentity): string {
  switch (identity.mode) {
    case 'controller':
      return "the controller's own identity";
    case 'assume-role':
      return `role ${identity.roleArn}`;
    case 'service-account':
      return `role ${identity.roleArn} via ServiceAccount web identity`;
  }
}
