// The trust table: which caller may sts:AssumeRole which role (with an optional ExternalId),
// which web identity subjects may sts:AssumeRoleWithWebIdentity it, and its
// MaxSessionDuration. Roles not in the table follow the default decision (allow-all unless
// set to deny). Patterns are IAM StringLike globs: `*` any run of characters, `?` one.

export interface RolePolicy {
  roleArn: string;
  /** Caller ARN globs allowed to AssumeRole; absent: any caller. */
  trustedPrincipals?: string[];
  /** When set, AssumeRole must pass exactly this ExternalId. */
  externalId?: string;
  /** 3600 unless set (900..43200), as IAM. */
  maxSessionDurationSeconds?: number;
  /** `sub` globs allowed to AssumeRoleWithWebIdentity; absent: no web identity may assume the role. */
  webIdentitySubjects?: string[];
  /** When set, only tokens from this issuer may assume the role with web identity. */
  webIdentityIssuer?: string;
}

export type Decision = 'allow' | 'deny';

export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

export const globMatch = (glob: string, value: string): boolean => globToRegExp(glob).test(value);

const anyMatch = (globs: readonly string[], value: string): boolean => globs.some((g) => globMatch(g, value));

export class TrustPolicies {
  #default: Decision = 'allow';
  readonly #roles = new Map<string, RolePolicy>();

  get default(): Decision {
    return this.#default;
  }

  setDefault(decision: Decision): void {
    this.#default = decision;
  }

  setRole(policy: RolePolicy): void {
    const max = policy.maxSessionDurationSeconds;
    if (max !== undefined && (!Number.isInteger(max) || max < 900 || max > 43200)) {
      throw new TypeError(`maxSessionDurationSeconds must be 900..43200, got ${max}`);
    }
    this.#roles.set(policy.roleArn, { ...policy });
  }

  removeRole(roleArn: string): void {
    this.#roles.delete(roleArn);
  }

  clear(): void {
    this.#roles.clear();
    this.#default = 'allow';
  }

  roles(): RolePolicy[] {
    return [...this.#roles.values()].map((r) => ({ ...r }));
  }

  maxSessionDuration(roleArn: string): number {
    return this.#roles.get(roleArn)?.maxSessionDurationSeconds ?? 3600;
  }

  mayAssume(callerArn: string, roleArn: string, externalId: string | undefined): boolean {
    const role = this.#roles.get(roleArn);
    if (role === undefined) return this.#default === 'allow';
    if (role.trustedPrincipals !== undefined && !anyMatch(role.trustedPrincipals, callerArn)) return false;
    return role.externalId === undefined || role.externalId === externalId;
  }

  mayAssumeWithWebIdentity(roleArn: string, issuer: string, subject: string): boolean {
    const role = this.#roles.get(roleArn);
    if (role === undefined) return this.#default === 'allow';
    if (role.webIdentitySubjects === undefined) return false;
    if (role.webIdentityIssuer !== undefined && role.webIdentityIssuer !== issuer) return false;
    return anyMatch(role.webIdentitySubjects, subject);
  }
}
