// Who is calling: static IAM users registered up front, and the temporary session
// credentials this server issues for AssumeRole / AssumeRoleWithWebIdentity. Each access
// key maps to a principal (ARN, account, user id); session keys expire on the injected clock.

import { createHash, randomBytes } from 'node:crypto';

export interface Principal {
  kind: 'user' | 'assumed-role';
  arn: string;
  /** From the ARN: aws, aws-cn, aws-us-gov, ... Credentials work only in their partition's regions. */
  partition: string;
  account: string;
  /** What GetCallerIdentity returns as UserId: AIDA... for users, AROA...:session for roles. */
  userId: string;
  /** For assumed roles: the role's IAM ARN. */
  roleArn?: string;
  sessionName?: string;
  /** An assumed role that was itself assumed by an assumed role (role chaining). */
  chained?: boolean;
}

export interface UserSpec {
  accessKeyId: string;
  secretAccessKey: string;
  /** e.g. arn:aws:iam::111122223333:user/alice */
  arn: string;
}

export interface SessionCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

export interface RoleArn {
  partition: string;
  account: string;
  name: string;
}

const roleArnPattern = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:[\x21-\x7e]*\/)?([\w+=,.@-]{1,64})$/;

export function parseRoleArn(arn: string): RoleArn | undefined {
  const m = roleArnPattern.exec(arn);
  return m === null ? undefined : { partition: m[1]!, account: m[2]!, name: m[3]! };
}

const base32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function idChars(bytes: Buffer, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += base32.charAt(bytes[i % bytes.length]! % 32);
  return out;
}
/** A stable id of AWS shape (prefix + 17 chars) derived from a name. */
export function stableId(prefix: string, name: string): string {
  return prefix + idChars(createHash('sha256').update(name).digest(), 17);
}
const randomId = (prefix: string, length: number): string => prefix + idChars(randomBytes(length), length);

interface KeyRecord {
  principal: Principal;
  secretAccessKey: string;
  sessionToken?: string;
  expiresAtMs?: number;
}

export type Resolution = { ok: true; principal: Principal; secretAccessKey: string } | { ok: false; reason: 'unknown' | 'expired' };

export class Identities {
  readonly #now: () => number;
  readonly #keys = new Map<string, KeyRecord>();

  constructor(now: () => number) {
    this.#now = now;
  }

  addUser(spec: UserSpec): Principal {
    const [, partition, account] = /^arn:(aws[a-z-]*):iam::(\d{12}):/.exec(spec.arn) ?? [];
    if (partition === undefined || account === undefined) throw new TypeError(`not an IAM ARN: ${spec.arn}`);
    const principal: Principal = { kind: 'user', arn: spec.arn, partition, account, userId: stableId('AIDA', spec.arn) };
    this.#keys.set(spec.accessKeyId, { principal, secretAccessKey: spec.secretAccessKey });
    return principal;
  }

  /** Issue temporary credentials for a role session, as STS does. */
  issueRoleSession(
    role: RoleArn & { arn: string },
    sessionName: string,
    durationSeconds: number,
    chained: boolean,
  ): { principal: Principal; credentials: SessionCredentials } {
    const principal: Principal = {
      kind: 'assumed-role',
      arn: `arn:${role.partition}:sts::${role.account}:assumed-role/${role.name}/${sessionName}`,
      partition: role.partition,
      account: role.account,
      userId: `${stableId('AROA', role.arn)}:${sessionName}`,
      roleArn: role.arn,
      sessionName,
      chained,
    };
    // Whole seconds, as the Expiration timestamp STS returns.
    const expiresAtMs = Math.floor(this.#now() / 1000) * 1000 + durationSeconds * 1000;
    const credentials: SessionCredentials = {
      accessKeyId: randomId('ASIA', 16),
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: 'IQoJb3JpZ2luX2Vj' + randomBytes(420).toString('base64'),
      expiration: new Date(expiresAtMs),
    };
    this.#keys.set(credentials.accessKeyId, {
      principal,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken,
      expiresAtMs,
    });
    return { principal, credentials };
  }

  resolve(accessKeyId: string, sessionToken: string | undefined): Resolution {
    const rec = this.#keys.get(accessKeyId);
    if (rec === undefined || rec.sessionToken !== sessionToken) return { ok: false, reason: 'unknown' };
    if (rec.expiresAtMs !== undefined && this.#now() >= rec.expiresAtMs) return { ok: false, reason: 'expired' };
    return { ok: true, principal: rec.principal, secretAccessKey: rec.secretAccessKey };
  }
}
