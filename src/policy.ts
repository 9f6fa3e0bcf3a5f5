// Tenant policy: which namespaces may ask for which registries, roles, identity modes and identity
// ServiceAccounts. Rules are evaluated in order and the first rule whose namespaces match decides;
// with no rules, everything the installation's identity modes allow is allowed; with no policy in
// force under --require-policy, nothing is. Pure.

import { globMatches, selectorMatches } from './config/selector.ts';
import type { Rule, Settings } from './config/settings.ts';
import type { RegistryHost } from './registry.ts';

/** The identity a request resolves to. */
export type Identity =
  | { readonly mode: 'controller' }
  | { readonly mode: 'assume-role'; readonly roleArn: string }
  | { readonly mode: 'service-account'; readonly roleArn: string; readonly serviceAccount: string };

export interface NamespaceFacts {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export type Decision = { readonly allowed: true; readonly rule?: string } | { readonly allowed: false; readonly rule?: string; readonly reason: string };

export function evaluatePolicy(settings: Settings, namespace: NamespaceFacts, identity: Identity, registries: readonly RegistryHost[]): Decision {
  if (settings.denyAll !== undefined) return { allowed: false, reason: settings.denyAll };
  if (!settings.identities.includes(identity.mode)) {
    return { allowed: false, reason: `identity mode ${identity.mode} is not enabled (config: identities)` };
  }
  if (settings.rules.length === 0) return { allowed: true };
  const rule = settings.rules.find((candidate) => namespaceMatches(candidate, namespace));
  if (rule === undefined) {
    return { allowed: false, reason: `no policy rule matches namespace ${namespace.name}` };
  }
  const deny = (reason: string): Decision => ({ allowed: false, rule: rule.name, reason: `rule ${rule.name}: ${reason}` });
  if (rule.identities !== undefined && !rule.identities.includes(identity.mode)) {
    return deny(`identity mode ${identity.mode} is not allowed (allowed: ${list(rule.identities)})`);
  }
  if (identity.mode !== 'controller' && rule.roleArns !== undefined) {
    if (!rule.roleArns.some((pattern) => globMatches(pattern, identity.roleArn))) {
      return deny(`role ${identity.roleArn} is not allowed`);
    }
  }
  // The ServiceAccount whose token is exchanged lends its IAM role: only those the rule names may.
  if (identity.mode === 'service-account' && rule.identityServiceAccounts !== undefined) {
    const names = rule.identityServiceAccounts;
    if (!names.some((glob) => globMatches(glob, identity.serviceAccount))) {
      return deny(`ServiceAccount ${identity.serviceAccount} may not serve as an identity (identityServiceAccounts: ${list(names)})`);
    }
  }
  if (rule.registries !== undefined) {
    const patterns = rule.registries;
    const outside = registries.find((host) => !patterns.some((p) => globMatches(p.account, host.account) && globMatches(p.region, host.region)));
    if (outside !== undefined) return deny(`registry ${outside.host} is not allowed`);
  }
  return { allowed: true, rule: rule.name };
}

/** A rule matches a namespace when its name globs (if any) and its selector (if any) both match. */
export function namespaceMatches(rule: Rule, namespace: NamespaceFacts): boolean {
  const { names, selector } = rule.namespaces;
  if (names === undefined && selector === undefined) return false;
  if (names !== undefined && !names.some((glob) => globMatches(glob, namespace.name))) return false;
  if (selector !== undefined && !selectorMatches(selector, namespace.labels)) return false;
  return true;
}

function list(entries: readonly string[]): string {
  return entries.length === 0 ? 'none' : entries.join(', ');
}
