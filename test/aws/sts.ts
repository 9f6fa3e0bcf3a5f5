// STS over awsQuery (form-encoded POST, Action=...&Version=2011-06-15; XML responses in the
// https://sts.amazonaws.com/doc/2011-06-15/ namespace): AssumeRole, AssumeRoleWithWebIdentity
// and GetCallerIdentity, with STS's input validation, trust checks and error documents.

import type { ServerResponse } from 'node:http';
import { AwsError, serviceErrors, validationError } from './errors.ts';
import type { Api } from './faults.ts';
import { parseRoleArn } from './identity.ts';
import type { Identities, Principal, SessionCredentials } from './identity.ts';
import type { TrustPolicies } from './policy.ts';
import type { WebIdentityVerifier } from './jwt.ts';
import type { Call } from './recorder.ts';

const xmlns = 'https://sts.amazonaws.com/doc/2011-06-15/';

export interface StsContext {
  identities: Identities;
  policies: TrustPolicies;
  verifier: WebIdentityVerifier;
  /** The call being recorded; handlers fill in roleArn, sessionName, subject. */
  call: Call;
}

export const escapeXml = (s: string): string => s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);

const el = (name: string, value: string): string => `<${name}>${escapeXml(value)}</${name}>`;
const timestamp = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function required(params: URLSearchParams, name: string, field: string): string {
  const v = params.get(name);
  if (v === null)
    throw new AwsError('ValidationError', `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`);
  return v;
}

function roleArn(params: URLSearchParams, call: Call): ReturnType<typeof parseRoleArn> & { arn: string } {
  const arn = required(params, 'RoleArn', 'roleArn');
  call.roleArn = arn;
  if (arn.length < 20) throw validationError('roleArn', arn, 'Member must have length greater than or equal to 20');
  if (arn.length > 2048) throw validationError('roleArn', arn, 'Member must have length less than or equal to 2048');
  const role = parseRoleArn(arn);
  if (role === undefined) throw new AwsError('ValidationError', 'Request ARN is invalid');
  return { ...role, arn };
}

function sessionName(params: URLSearchParams, call: Call): string {
  const name = required(params, 'RoleSessionName', 'roleSessionName');
  call.sessionName = name;
  if (name.length < 2) throw validationError('roleSessionName', name, 'Member must have length greater than or equal to 2');
  if (name.length > 64) throw validationError('roleSessionName', name, 'Member must have length less than or equal to 64');
  if (!/^[\w+=,.@-]*$/.test(name)) {
    throw validationError('roleSessionName', name, 'Member must satisfy regular expression pattern: [\\w+=,.@-]*');
  }
  return name;
}

function durationSeconds(params: URLSearchParams, max: number, chained: boolean): number {
  const raw = params.get('DurationSeconds');
  if (raw === null) return 3600 > max ? max : 3600;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new AwsError('ValidationError', `Value '${raw}' for parameter DurationSeconds is invalid.`);
  if (n < 900) throw validationError('durationSeconds', raw, 'Member must have value greater than or equal to 900');
  if (n > 43200) throw validationError('durationSeconds', raw, 'Member must have value less than or equal to 43200');
  if (chained && n > 3600) {
    throw new AwsError('ValidationError', 'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.');
  }
  if (n > max) throw new AwsError('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
  return n;
}

function externalId(params: URLSearchParams): string | undefined {
  const id = params.get('ExternalId');
  if (id === null) return undefined;
  if (id.length < 2 || id.length > 1224) {
    throw validationError('externalId', id, 'Member must have length between 2 and 1224');
  }
  if (!/^[\w+=,.@:/-]*$/.test(id)) {
    throw validationError('externalId', id, 'Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*');
  }
  return id;
}

const assumedRoleUser = (p: Principal): string => `<AssumedRoleUser>${el('Arn', p.arn)}${el('AssumedRoleId', p.userId)}</AssumedRoleUser>`;

const credentialsXml = (c: SessionCredentials): string =>
  `<Credentials>${el('AccessKeyId', c.accessKeyId)}${el('SecretAccessKey', c.secretAccessKey)}` +
  `${el('SessionToken', c.sessionToken)}${el('Expiration', timestamp(c.expiration))}</Credentials>`;

function assumeRole(params: URLSearchParams, caller: Principal, ctx: StsContext): string {
  const role = roleArn(params, ctx.call);
  const name = sessionName(params, ctx.call);
  const chained = caller.kind === 'assumed-role';
  const duration = durationSeconds(params, ctx.policies.maxSessionDuration(role.arn), chained);
  const extId = externalId(params);
  if (!ctx.policies.mayAssume(caller.arn, role.arn, extId)) {
    throw serviceErrors.accessDenied('sts', caller.arn, 'sts:AssumeRole', role.arn);
  }
  const { principal, credentials } = ctx.identities.issueRoleSession(role, name, duration, chained);
  const policy = params.get('Policy');
  const packed = policy === null ? '' : el('PackedPolicySize', String(Math.min(99, Math.ceil(policy.length / 20))));
  const sourceIdentity = params.get('SourceIdentity');
  return assumedRoleUser(principal) + credentialsXml(credentials) + packed + (sourceIdentity === null ? '' : el('SourceIdentity', sourceIdentity));
}

async function assumeRoleWithWebIdentity(params: URLSearchParams, ctx: StsContext): Promise<string> {
  const role = roleArn(params, ctx.call);
  const name = sessionName(params, ctx.call);
  const token = required(params, 'WebIdentityToken', 'webIdentityToken');
  if (token.length < 4) throw validationError('webIdentityToken', '***', 'Member must have length greater than or equal to 4');
  if (token.length > 20000) {
    throw validationError('webIdentityToken', '***', 'Member must have length less than or equal to 20000');
  }
  const duration = durationSeconds(params, ctx.policies.maxSessionDuration(role.arn), false);
  const verified = await ctx.verifier.verify(token);
  ctx.call.subject = verified.subject;
  const { aud, exp, iat } = verified.claims;
  ctx.call.audience = Array.isArray(aud) ? aud.map(String) : typeof aud === 'string' ? [aud] : [];
  if (typeof exp === 'number' && typeof iat === 'number') ctx.call.tokenLifetimeSeconds = exp - iat;
  if (!ctx.policies.mayAssumeWithWebIdentity(role.arn, verified.issuer, verified.subject)) {
    throw new AwsError('AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity', 403);
  }
  const { principal, credentials } = ctx.identities.issueRoleSession(role, name, duration, false);
  return (
    el('SubjectFromWebIdentityToken', verified.subject) +
    el('Audience', verified.audience) +
    assumedRoleUser(principal) +
    credentialsXml(credentials) +
    el('Provider', verified.issuer)
  );
}

const getCallerIdentity = (caller: Principal): string => el('Arn', caller.arn) + el('UserId', caller.userId) + el('Account', caller.account);

export const stsApis: readonly Api[] = ['AssumeRole', 'AssumeRoleWithWebIdentity', 'GetCallerIdentity'];

/** Runs one STS action; returns the inner XML of its <ActionResult>. `caller` is absent only for web identity. */
export async function handleSts(api: Api, params: URLSearchParams, caller: Principal | undefined, ctx: StsContext): Promise<string> {
  switch (api) {
    case 'AssumeRoleWithWebIdentity':
      return assumeRoleWithWebIdentity(params, ctx);
    case 'AssumeRole':
      return assumeRole(params, caller!, ctx);
    case 'GetCallerIdentity':
      return getCallerIdentity(caller!);
    case 'GetAuthorizationToken':
      throw new AwsError('InvalidAction', `Could not find operation ${api} for version 2011-06-15`);
  }
}

export function sendStsResult(res: ServerResponse, requestId: string, action: string, inner: string): void {
  send(
    res,
    200,
    requestId,
    `<${action}Response xmlns="${xmlns}">\n  <${action}Result>${inner}</${action}Result>\n` +
      `  <ResponseMetadata>${el('RequestId', requestId)}</ResponseMetadata>\n</${action}Response>\n`,
  );
}

export function sendStsError(res: ServerResponse, requestId: string, err: AwsError): void {
  send(
    res,
    err.status,
    requestId,
    `<ErrorResponse xmlns="${xmlns}">\n  <Error>\n    ${el('Type', err.fault)}\n    ${el('Code', err.code)}\n` +
      `    ${el('Message', err.message)}\n  </Error>\n  ${el('RequestId', requestId)}\n</ErrorResponse>\n`,
  );
}

function send(res: ServerResponse, status: number, requestId: string, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/xml',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': requestId,
  });
  res.end(body);
}
