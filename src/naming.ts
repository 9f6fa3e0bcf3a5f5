// Names kube-ecrlogin derives: Secret names and STS role session names. Pure.
//
// Secret names, unless `ecr-login/secret-name` says otherwise:
//   Namespace annotation        -> <base>                      (base: config defaults.secretName, `ecr-login`)
//   ServiceAccount annotation   -> <base>-<serviceaccount>
// A name longer than 253 characters keeps its first characters and ends with a hash of the full
// ServiceAccount name, so two ServiceAccounts never share a Secret. Names that still collide (an
// explicit `ecr-login/secret-name` equal to another's name) are resolved in the plan: the Namespace
// annotation wins, then ServiceAccounts in name order; the others get a SecretConflict Event.

import { createHash } from 'node:crypto';
import type { Source } from './annotations.ts';

const maxNameLength = 253;

export function secretNameFor(source: Source, explicit: string | undefined, base: string): string {
  if (explicit !== undefined) return explicit;
  if (source.kind !== 'ServiceAccount') return base;
  const name = `${base}-${source.name}`;
  if (name.length <= maxNameLength) return name;
  const hash = shortHash(source.name, 10);
  return `${name.slice(0, maxNameLength - hash.length - 1).replace(/[-.]+$/, '')}-${hash}`;
}

/**
 * The STS role session name for a source, so that CloudTrail shows whom a token was for:
 * `ecr-login.<namespace>` or `ecr-login.<namespace>.<serviceaccount>`, at most 64 characters of
 * [\w+=,.@-] (longer ones keep their start and end with a hash of the whole).
 */
export function sessionNameFor(source: Source): string {
  const raw = source.kind === 'ServiceAccount' ? `ecr-login.${source.namespace}.${source.name}` : `ecr-login.${source.name}`;
  const safe = raw.replace(/[^\w+=,.@-]/g, '-');
  if (safe.length <= 64) return safe;
  const hash = shortHash(raw, 10);
  return `${safe.slice(0, 64 - hash.length - 1)}-${hash}`;
}

export function shortHash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}
