// The AWS test server: one HTTP server on 127.0.0.1 speaking ECR and ECR Public (awsJson1_1) and
// STS (awsQuery) as the real SDK clients expect, with an identity model (static users, issued
// session credentials), a trust table, OIDC web identity verification, fault injection, a
// record of every call, and an HTTP control plane under /_test/. Partitions are kept apart as
// AWS keeps them: credentials work only in regions of their own partition, and a role is assumed
// only through its own partition's STS. ECR Public answers only in us-east-1.
//
//   const aws = await start({ tokenLifetimeSeconds: 60, now: () => clock.now() });
//   aws.addUser({ accessKeyId, secretAccessKey, arn: 'arn:aws:iam::111122223333:user/ci' });
//   new ECRClient({ endpoint: aws.endpoint, region: 'eu-west-1', credentials: { accessKeyId, secretAccessKey } });

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlPrefix, handleControl } from './control.ts';
import { regionPartition } from '../../src/aws/partitions.ts';
import { ecrPublicTargetPrefix, getAuthorizationToken, getPublicAuthorizationToken, ecrTargetPrefix, sendEcrError, sendEcrResult } from './ecr.ts';
import { AwsError, authErrors, serviceErrors } from './errors.ts';
import type { Service } from './errors.ts';
import { Faults } from './faults.ts';
import type { Api, FailureKind } from './faults.ts';
import { Identities } from './identity.ts';
import type { Principal, UserSpec } from './identity.ts';
import { WebIdentityVerifier } from './jwt.ts';
import type { IssuerSpec } from './jwt.ts';
import { TrustPolicies } from './policy.ts';
import type { Decision, RolePolicy } from './policy.ts';
import { Recorder } from './recorder.ts';
import type { Call, CallFilter, Counters } from './recorder.ts';
import { parseAuthorization, verifySignature } from './sigv4.ts';
import { handleSts, sendStsError, sendStsResult, stsApis } from './sts.ts';

export type { FaultSpec } from './faults.ts';
export type { Call, CallFilter, Counters } from './recorder.ts';
export type { Principal, UserSpec } from './identity.ts';
export type { IssuerSpec } from './jwt.ts';
export type { Decision, RolePolicy } from './policy.ts';
export type { Faults } from './faults.ts';
export type { TrustPolicies } from './policy.ts';

export interface StartOptions {
  /** 0 (the default): a free port. */
  port?: number;
  /** ECR token lifetime; 12 hours by default, as ECR. */
  tokenLifetimeSeconds?: number;
  /** The clock (ms since the epoch) for token expiry, session expiry and JWT checks. */
  now?: () => number;
  /** Check SigV4 signatures against the caller's secret key (default true). */
  verifySignatures?: boolean;
  /** Leeway for JWT exp/nbf/iat (default 60). */
  clockSkewSeconds?: number;
  /** How long discovery documents and JWKS are cached (default 60 s). */
  jwksCacheMs?: number;
  /** Most calls kept in `calls` (default 100000); counters stay exact. */
  callLogLimit?: number;
  users?: UserSpec[];
}

export interface AwsTestServer {
  /** http://127.0.0.1:PORT: the endpoint for ECRClient and STSClient, and the control plane. */
  readonly endpoint: string;
  readonly port: number;
  addUser(spec: UserSpec): Principal;
  trustIssuer(spec: IssuerSpec): void;
  untrustIssuer(issuer: string): void;
  issuers(): IssuerSpec[];
  setRole(policy: RolePolicy): void;
  setDefaultPolicy(decision: Decision): void;
  readonly policies: TrustPolicies;
  setTokenLifetime(seconds: number): void;
  readonly faults: Faults;
  /** The call log, oldest first. */
  readonly calls: readonly Call[];
  counters(): Counters;
  count(filter?: CallFilter): number;
  resetCounters(): void;
  close(): Promise<void>;
}

const maxBodyBytes = 1 << 20;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBodyBytes) req.destroy(new Error('request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => {
      resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

type Route =
  | { service: 'ecr'; api: Api }
  | { service: 'ecr-public'; api: Api }
  | { service: 'sts'; api: Api; params: URLSearchParams }
  | { unknown: AwsError; service: Service };

function route(req: IncomingMessage, body: Buffer): Route | undefined {
  if (req.method !== 'POST') return undefined;
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string' && target.startsWith(ecrTargetPrefix)) {
    const op = target.slice(ecrTargetPrefix.length);
    if (op === 'GetAuthorizationToken') return { service: 'ecr', api: op };
    return { service: 'ecr', unknown: new AwsError('UnknownOperationException', `Unknown operation ${op}`) };
  }
  if (typeof target === 'string' && target.startsWith(ecrPublicTargetPrefix)) {
    const op = target.slice(ecrPublicTargetPrefix.length);
    if (op === 'GetAuthorizationToken') return { service: 'ecr-public', api: op };
    return { service: 'ecr-public', unknown: new AwsError('UnknownOperationException', `Unknown operation ${op}`) };
  }
  if (req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') === true) {
    const params = new URLSearchParams(body.toString('utf8'));
    const action = params.get('Action') ?? '';
    const api = stsApis.find((a) => a === action);
    if (api !== undefined) return { service: 'sts', api, params };
    return {
      service: 'sts',
      unknown: new AwsError('InvalidAction', `Could not find operation ${action} for version 2011-06-15`),
    };
  }
  return undefined;
}

function faultError(service: Service, kind: Exclude<FailureKind, 'drop'>, api: Api, call: Call): AwsError {
  switch (kind) {
    case 'throttle':
      return serviceErrors.throttle(service);
    case 'unavailable':
      return serviceErrors.unavailable(service);
    case 'internal':
      return serviceErrors.internal(service);
    case 'accessDenied':
      if (api === 'AssumeRoleWithWebIdentity') {
        return new AwsError('AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity', 403);
      }
      return serviceErrors.accessDenied(service, call.caller ?? 'anonymous', `${service}:${api}`, api === 'AssumeRole' ? (call.roleArn ?? '*') : '*');
  }
}

export async function start(options: StartOptions = {}): Promise<AwsTestServer> {
  const now = options.now ?? Date.now;
  let tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 12 * 3600;
  const verifySignatures = options.verifySignatures ?? true;
  const identities = new Identities(now);
  const policies = new TrustPolicies();
  const verifierOptions: ConstructorParameters<typeof WebIdentityVerifier>[0] = { now };
  if (options.clockSkewSeconds !== undefined) verifierOptions.clockSkewSeconds = options.clockSkewSeconds;
  if (options.jwksCacheMs !== undefined) verifierOptions.jwksCacheMs = options.jwksCacheMs;
  const verifier = new WebIdentityVerifier(verifierOptions);
  const faults = new Faults();
  const recorder = new Recorder(options.callLogLimit);
  for (const u of options.users ?? []) identities.addUser(u);

  function authenticate(service: Service, req: IncomingMessage, body: Buffer): Principal {
    const auth = parseAuthorization(req.headers.authorization);
    if (auth === undefined) throw authErrors.missing(service);
    const token = req.headers['x-amz-security-token'];
    const found = identities.resolve(auth.accessKeyId, typeof token === 'string' ? token : undefined);
    if (!found.ok) throw found.reason === 'expired' ? authErrors.expired(service) : authErrors.unknownKey(service);
    // A partition is a separate AWS: its keys are unknown everywhere else.
    const partition = regionPartition(auth.region)?.name;
    if (partition !== undefined && partition !== found.principal.partition) throw authErrors.unknownKey(service);
    const signed = { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, body };
    if (verifySignatures && !verifySignature(signed, auth, found.secretAccessKey)) throw authErrors.badSignature(service);
    return found.principal;
  }

  async function serveAws(r: Route, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const sendError = (err: AwsError): void => {
      if (r.service === 'sts') sendStsError(res, requestId, err);
      else sendEcrError(res, requestId, err);
    };
    if ('unknown' in r) {
      sendError(r.unknown);
      return;
    }
    // An unsigned call (web identity) names no region: its endpoint would, on AWS.
    const signedRegion = parseAuthorization(req.headers.authorization)?.region;
    const region = signedRegion ?? 'us-east-1';
    const call: Call = { api: r.api, service: r.service, region, outcome: 'ok', at: now() };
    if (r.service === 'sts') {
      const roleArn = r.params.get('RoleArn');
      if (roleArn !== null) call.roleArn = roleArn;
    }
    try {
      // Web identity calls are unsigned: the token is the credential.
      const caller = r.api === 'AssumeRoleWithWebIdentity' ? undefined : authenticate(r.service, req, body);
      call.caller = caller?.arn;
      const roleArn = call.roleArn;
      const rolePartition = roleArn === undefined ? undefined : /^arn:([^:]+):/.exec(roleArn)?.[1];
      const partition = signedRegion === undefined ? undefined : regionPartition(signedRegion)?.name;
      if (rolePartition !== undefined && partition !== undefined && rolePartition !== partition) {
        // STS of one partition knows no role of another (AWS answers AccessDenied).
        throw serviceErrors.accessDenied('sts', caller?.arn ?? 'anonymous', `sts:${r.api}`, roleArn ?? '*');
      }
      const decision = faults.take(r.api, call);
      if (decision.delayMs > 0) await sleep(decision.delayMs);
      if (decision.failure === 'drop') {
        call.outcome = 'dropped';
        recorder.record(call);
        req.socket.destroy();
        return;
      }
      if (decision.failure !== undefined) throw faultError(r.service, decision.failure, r.api, call);
      if (r.service === 'ecr') {
        const result = getAuthorizationToken(caller!, region, { tokenLifetimeSeconds, now });
        recorder.record(call);
        sendEcrResult(res, requestId, result);
      } else if (r.service === 'ecr-public') {
        // ECR Public's API is served in us-east-1 only: anywhere else there is no such endpoint.
        if (region !== 'us-east-1') throw new AwsError('UnrecognizedClientException', `ECR Public is not served in ${region}`);
        const result = getPublicAuthorizationToken({ tokenLifetimeSeconds, now });
        recorder.record(call);
        sendEcrResult(res, requestId, result);
      } else {
        const inner = await handleSts(r.api, r.params, caller, { identities, policies, verifier, call });
        recorder.record(call);
        sendStsResult(res, requestId, r.api, inner);
      }
    } catch (e) {
      const err = e instanceof AwsError ? e : serviceErrors.internal(r.service);
      if (!(e instanceof AwsError)) console.error('aws test server: unexpected error', e);
      call.outcome = err.code;
      if (err.detail !== undefined) call.detail = err.detail;
      recorder.record(call);
      sendError(err);
    }
  }

  const httpServer = http.createServer((req, res) => {
    readBody(req)
      .then(async (body) => {
        if (req.url?.startsWith(controlPrefix) === true) {
          handleControl(api, req, body, res);
          return;
        }
        const r = route(req, body);
        if (r === undefined) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
          return;
        }
        await serveAws(r, req, body, res);
      })
      .catch(() => {
        req.socket.destroy();
      });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, '127.0.0.1', () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;

  const api: AwsTestServer = {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    addUser: (spec) => identities.addUser(spec),
    trustIssuer: (spec) => {
      verifier.trustIssuer(spec);
    },
    untrustIssuer: (issuer) => {
      verifier.untrustIssuer(issuer);
    },
    issuers: () => verifier.issuers(),
    setRole: (policy) => {
      policies.setRole(policy);
    },
    setDefaultPolicy: (decision) => {
      policies.setDefault(decision);
    },
    policies,
    setTokenLifetime: (seconds) => {
      if (!(seconds > 0)) throw new TypeError('token lifetime must be positive');
      tokenLifetimeSeconds = seconds;
    },
    faults,
    get calls() {
      return recorder.calls;
    },
    counters: () => recorder.counters(),
    count: (filter) => recorder.count(filter),
    resetCounters: () => {
      recorder.reset();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        httpServer.close((err) => {
          if (err === undefined) resolve();
          else reject(err);
        });
        httpServer.closeAllConnections();
      }),
  };
  return api;
}
