// The trust table document: users, trusted OIDC issuers, role policies, the default decision
// and the token lifetime, as one JSON shape. main.ts reads it from --trust-file and the
// control plane accepts it on POST /_test/trust; both validate it here before applying.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { UserSpec } from './identity.ts';
import type { IssuerSpec } from './jwt.ts';
import type { Decision, RolePolicy } from './policy.ts';

export interface TestConfig {
  default?: Decision;
  users?: UserSpec[];
  /** `caFile` (a PEM path, relative to the trust file) may stand in for `ca`. */
  issuers?: (IssuerSpec & { caFile?: string })[];
  roles?: RolePolicy[];
  tokenLifetimeSeconds?: number;
}

/** What a config is applied to: the subset of the server API it needs. */
export interface Configurable {
  addUser(spec: UserSpec): unknown;
  trustIssuer(spec: IssuerSpec): void;
  setRole(policy: RolePolicy): void;
  setDefaultPolicy(decision: Decision): void;
  setTokenLifetime(seconds: number): void;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Record<string, unknown>, key: string, where: string, optional: true): string | undefined;
function str(o: Record<string, unknown>, key: string, where: string, optional?: false): string;
function str(o: Record<string, unknown>, key: string, where: string, optional = false): string | undefined {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string') throw new TypeError(`${where}.${key} must be a string`);
  return v;
}

function strings(o: Record<string, unknown>, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new TypeError(`${where}.${key} must be an array of strings`);
  }
  return v;
}

function list(v: unknown, where: string): Record<string, unknown>[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every(isRecord)) throw new TypeError(`${where} must be an array of objects`);
  return v;
}

/** Validates a config document; `caFile` paths are read relative to `baseDir`. */
export function parseTestConfig(v: unknown, baseDir = process.cwd()): TestConfig {
  if (!isRecord(v)) throw new TypeError('config must be a JSON object');
  const out: TestConfig = {};
  if (v['default'] !== undefined) {
    if (v['default'] !== 'allow' && v['default'] !== 'deny') throw new TypeError('default must be "allow" or "deny"');
    out.default = v['default'];
  }
  if (v['tokenLifetimeSeconds'] !== undefined) {
    const t = v['tokenLifetimeSeconds'];
    if (typeof t !== 'number' || !(t > 0)) throw new TypeError('tokenLifetimeSeconds must be a positive number');
    out.tokenLifetimeSeconds = t;
  }
  out.users = list(v['users'], 'users').map((u, i) => ({
    accessKeyId: str(u, 'accessKeyId', `users[${i}]`),
    secretAccessKey: str(u, 'secretAccessKey', `users[${i}]`),
    arn: str(u, 'arn', `users[${i}]`),
  }));
  out.issuers = list(v['issuers'], 'issuers').map((o, i) => {
    const where = `issuers[${i}]`;
    const spec: IssuerSpec = { issuer: str(o, 'issuer', where) };
    const ca = str(o, 'ca', where, true);
    const caFile = str(o, 'caFile', where, true);
    if (ca !== undefined) spec.ca = ca;
    else if (caFile !== undefined) spec.ca = readFileSync(resolve(baseDir, caFile), 'utf8');
    const bearerToken = str(o, 'bearerToken', where, true);
    if (bearerToken !== undefined) spec.bearerToken = bearerToken;
    const audiences = strings(o, 'audiences', where);
    if (audiences !== undefined) spec.audiences = audiences;
    return spec;
  });
  out.roles = list(v['roles'], 'roles').map((o, i) => {
    const where = `roles[${i}]`;
    const role: RolePolicy = { roleArn: str(o, 'roleArn', where) };
    const trustedPrincipals = strings(o, 'trustedPrincipals', where);
    if (trustedPrincipals !== undefined) role.trustedPrincipals = trustedPrincipals;
    const externalId = str(o, 'externalId', where, true);
    if (externalId !== undefined) role.externalId = externalId;
    const max = o['maxSessionDurationSeconds'];
    if (max !== undefined) {
      if (typeof max !== 'number') throw new TypeError(`${where}.maxSessionDurationSeconds must be a number`);
      role.maxSessionDurationSeconds = max;
    }
    const subjects = strings(o, 'webIdentitySubjects', where);
    if (subjects !== undefined) role.webIdentitySubjects = subjects;
    const issuer = str(o, 'webIdentityIssuer', where, true);
    if (issuer !== undefined) role.webIdentityIssuer = issuer;
    return role;
  });
  return out;
}

/** Adds to what the server already has: users, issuers and roles are upserted by key. */
export function applyTestConfig(target: Configurable, config: TestConfig): void {
  if (config.default !== undefined) target.setDefaultPolicy(config.default);
  if (config.tokenLifetimeSeconds !== undefined) target.setTokenLifetime(config.tokenLifetimeSeconds);
  for (const u of config.users ?? []) target.addUser(u);
  for (const i of config.issuers ?? []) {
    const { caFile: _caFile, ...spec } = i;
    target.trustIssuer(spec);
  }
  for (const r of config.roles ?? []) target.setRole(r);
}
