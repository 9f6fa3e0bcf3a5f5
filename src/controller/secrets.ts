// The managed pull Secret: how we mark it, build it and read it back. Pure.

import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { describeSource, type SecretFormat } from '../annotations.ts';
import { describeIdentity, type IssuedToken } from '../broker.ts';
import { buildDockerConfig, parseDockerConfig, type RegistryLogin } from '../dockerconfig.ts';
import { effectiveExpiry, refreshTime, seedOf, type RefreshSettings } from '../refresh.ts';
import { normalizeHost } from '../registry.ts';
import type { Result } from '../result.ts';
import type { Grant } from './model.ts';

export const managedBy = { key: 'app.kubernetes.io/managed-by', value: 'kube-ecrlogin' } as const;
export const managedSelector = `${managedBy.key}=${managedBy.value}`;
export const dockerConfigKey = '.dockerconfigjson';
export const dockerConfigType = 'kubernetes.io/dockerconfigjson';

export const secretAnnotations = {
  /** The object the Secret serves: Namespace/<ns> or ServiceAccount/<ns>/<name>. */
  owner: 'ecr-login/owner',
  registries: 'ecr-login/registries',
  identity: 'ecr-login/identity',
  issuedAt: 'ecr-login/issued-at',
  expiresAt: 'ecr-login/expires-at',
  specHash: 'ecr-login/spec-hash',
  /** A hash of the data we wrote: the cache holds Secrets' metadata only, never their data. */
  dataHash: 'ecr-login/data-hash',
  /** The format, when not a pull Secret (dockerconfigjson). */
  format: 'ecr-login/format',
} as const;

/**
 * Set by the Secret cache (never taken from the object) when a field manager other than ours has
 * written the Secret's data: the Secret is then rewritten.
 */
export const dataWrittenBy = 'kube-ecrlogin.internal/data-written-by';

/**
 * Set by the Secret cache (never taken from the object), `true`, when our field manager wrote the
 * Secret's data: what tells our Secrets from one someone labelled to look like ours.
 */
export const dataWrittenByUs = 'kube-ecrlogin.internal/data-written-by-us';

export function isManaged(secret: V1Secret): boolean {
  return secret.metadata?.labels?.[managedBy.key] === managedBy.value;
}

/**
 * Whether a cached Secret is ours to delete: it carries our label, we wrote its data (the label alone
 * anyone can set), and its owner annotation names an object in its own namespace. Nothing in a
 * Secret may make the controller act in another namespace.
 */
export function isOurs(secret: V1Secret): boolean {
  return isManaged(secret) && secret.metadata?.annotations?.[dataWrittenByUs] === 'true' && ownerNamespace(secret) === secret.metadata.namespace;
}

/** The namespace of the object a Secret's owner annotation names, if it names one. */
export function ownerNamespace(secret: V1Secret): string | undefined {
  const [kind, first, second] = (secret.metadata?.annotations?.[secretAnnotations.owner] ?? '').split('/');
  if ((kind === 'Namespace' || kind === 'Target') && first !== undefined && first !== '' && second === undefined) return first;
  if (kind === 'ServiceAccount' && first !== undefined && first !== '' && second !== undefined && second !== '') return first;
  return undefined;
}

/** What an existing managed Secret holds, read back from its annotations. */
export interface SecretState {
  readonly owner: string;
  readonly specHash: string;
  readonly issuedAt: number;
  readonly expiresAt: number | undefined;
  /** Absent on a Secret an earlier version wrote: it is rewritten once. */
  readonly dataHash: string | undefined;
}

/**
 * Reads a managed Secret from its annotations (the cache holds metadata only); an error says why it
 * cannot be trusted, and it is rewritten: annotations missing or garbled, or data someone else wrote.
 * A full Secret (a live read, the doctor's list) is also checked for its type and data.
 */
export function readSecretState(secret: V1Secret): Result<SecretState> {
  const annotations = secret.metadata?.annotations ?? {};
  const other = annotations[dataWrittenBy];
  if (other !== undefined) return { ok: false, error: `its data was changed by ${other}` };
  if (secret.data !== undefined || secret.type !== undefined) {
    const format = annotations[secretAnnotations.format] ?? 'dockerconfigjson';
    const expectedType = format === 'dockerconfigjson' ? dockerConfigType : 'Opaque';
    if (secret.type !== expectedType) return { ok: false, error: `type is ${secret.type ?? 'unset'}` };
    const key = format === 'dockerconfigjson' ? dockerConfigKey : format === 'config-json' ? 'config.json' : 'password';
    const encoded = secret.data?.[key];
    if (encoded === undefined) return { ok: false, error: `no ${key} key` };
    if (format !== 'argocd-repository') {
      const logins = parseDockerConfig(Buffer.from(encoded, 'base64').toString('utf8'));
      if (!logins.ok) return logins;
    }
    if (annotations[secretAnnotations.dataHash] !== undefined && annotations[secretAnnotations.dataHash] !== dataHashOf(secret.data ?? {})) {
      return { ok: false, error: `its data does not match annotation ${secretAnnotations.dataHash}` };
    }
  }
  const issuedAt = Date.parse(annotations[secretAnnotations.issuedAt] ?? '');
  if (Number.isNaN(issuedAt)) return { ok: false, error: `annotation ${secretAnnotations.issuedAt} is missing or not a time` };
  const expiresText = annotations[secretAnnotations.expiresAt];
  const expiresAt = expiresText === undefined ? undefined : Date.parse(expiresText);
  if (expiresAt !== undefined && Number.isNaN(expiresAt)) return { ok: false, error: `annotation ${secretAnnotations.expiresAt} is not a time` };
  return {
    ok: true,
    value: {
      owner: annotations[secretAnnotations.owner] ?? '',
      specHash: annotations[secretAnnotations.specHash] ?? '',
      issuedAt,
      expiresAt,
      dataHash: annotations[secretAnnotations.dataHash],
    },
  };
}

/** The hash kept in ecr-login/data-hash: of the base64 .dockerconfigjson value. */
export function dataHash(encoded: string): string {
  return createHash('sha256').update(encoded).digest('hex').slice(0, 16);
}

/** The data hash of a Secret's data: a pull Secret's as it always was, any other of all its keys. */
export function dataHashOf(data: Readonly<Record<string, string>>): string {
  const keys = Object.keys(data).sort();
  if (keys.length === 1 && keys[0] === dockerConfigKey) return dataHash(data[dockerConfigKey] ?? '');
  return dataHash(JSON.stringify(keys.map((key) => [key, data[key]])));
}

/** Argo CD's label for a repository credential template (argocd-repo-creds.yaml in Argo CD's docs). */
export const argocdSecretType = { key: 'argocd.argoproj.io/secret-type', value: 'repo-creds' } as const;

/** A Secret's type, data and extra labels for a format (see SecretFormat). */
function payloadOf(format: SecretFormat, logins: readonly RegistryLogin[]): { type: string; data: Record<string, string>; labels: Record<string, string> } {
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  switch (format) {
    case 'dockerconfigjson':
      return { type: dockerConfigType, data: { [dockerConfigKey]: b64(buildDockerConfig(logins)) }, labels: {} };
    case 'config-json':
      // The same {"auths": ...} document, under the file name image builders read.
      return { type: 'Opaque', data: { 'config.json': b64(buildDockerConfig(logins)) }, labels: {} };
    case 'argocd-repository': {
      // One registry per Secret (resolveIntents makes one grant per registry): a credential template
      // whose url, without a scheme, is the prefix of every chart and OCI artifact in that registry.
      const [login] = logins;
      if (login === undefined || logins.length !== 1) throw new Error('an Argo CD repository Secret holds exactly one registry');
      const data = { url: login.host, type: 'helm', enableOCI: 'true', username: login.username, password: login.password };
      return {
        type: 'Opaque',
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
        labels: { [argocdSecretType.key]: argocdSecretType.value },
      };
    }
  }
}

/** When a Secret with these token times is due, with a jitter stable for this Secret and token. */
export function secretRefreshAt(
  namespace: string,
  name: string,
  times: { issuedAt: number; expiresAt: number | undefined },
  settings: RefreshSettings,
): number {
  return refreshTime(times, settings, seedOf(`${namespace}/${name}/${effectiveExpiry(times)}`));
}

/** The token times of a Secret made of several tokens: the oldest issue and the earliest expiry. */
export function combinedTimes(tokens: readonly IssuedToken[]): { issuedAt: number; expiresAt: number | undefined } {
  const issuedAt = Math.min(...tokens.map((t) => t.issuedAt));
  const expiries = tokens.map((t) => effectiveExpiry(t));
  const anyKnown = tokens.some((t) => t.expiresAt !== undefined);
  return { issuedAt, expiresAt: anyKnown ? Math.min(...expiries) : undefined };
}

/** The Secret a grant should have, given a token per region. */
export function buildSecret(grant: Grant, tokens: ReadonlyMap<string, IssuedToken>): V1Secret {
  const used: IssuedToken[] = [];
  const logins = grant.registries.map((registry) => {
    const token = tokens.get(registry.region);
    if (token === undefined) throw new Error(`no token for region ${registry.region}`);
    used.push(token);
    return { host: registry.host, username: token.username, password: token.password };
  });
  const times = combinedTimes(used);
  const payload = payloadOf(grant.format, logins);
  const annotations: Record<string, string> = {
    [secretAnnotations.owner]: describeSource(grant.source),
    [secretAnnotations.registries]: grant.registries.map((r) => r.host).join(','),
    [secretAnnotations.identity]: describeIdentity(grant.identity),
    [secretAnnotations.issuedAt]: new Date(times.issuedAt).toISOString(),
    [secretAnnotations.specHash]: grant.specHash,
    [secretAnnotations.dataHash]: dataHashOf(payload.data),
    ...(grant.format !== 'dockerconfigjson' ? { [secretAnnotations.format]: grant.format } : {}),
  };
  if (times.expiresAt !== undefined) annotations[secretAnnotations.expiresAt] = new Date(times.expiresAt).toISOString();
  const secret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: grant.secretName,
      namespace: grant.source.namespace,
      labels: { [managedBy.key]: managedBy.value, ...payload.labels },
      annotations,
    },
    type: payload.type,
    data: payload.data,
  };
  if (grant.ref.kind === 'ServiceAccount' && grant.ref.uid !== undefined) {
    // The Secret goes with its ServiceAccount, also when the controller is not running.
    secret.metadata = { ...secret.metadata, ownerReferences: [{ apiVersion: 'v1', kind: 'ServiceAccount', name: grant.ref.name, uid: grant.ref.uid }] };
  }
  return secret;
}

/**
 * Whether writing desired would change existing. The issue time alone is not a change: an identical
 * token re-issued (or re-read) is not worth a write.
 */
export function secretDiffers(existing: V1Secret, desired: V1Secret): boolean {
  const have = existing.metadata?.annotations ?? {};
  const want = desired.metadata?.annotations ?? {};
  // The cache holds metadata only: the data is compared through its hash. A full Secret is checked whole.
  if (existing.data !== undefined || existing.type !== undefined) {
    if (existing.type !== desired.type) return true;
    const keys = (s: V1Secret): string => JSON.stringify(Object.keys(s.data ?? {}).sort());
    if (keys(existing) !== keys(desired)) return true;
    if (Object.keys(desired.data ?? {}).some((key) => existing.data?.[key] !== desired.data?.[key])) return true;
  }
  if (have[dataWrittenBy] !== undefined) return true;
  if (existing.metadata?.labels?.[managedBy.key] !== managedBy.value) return true;
  for (const [key, value] of Object.entries(desired.metadata?.labels ?? {})) if (existing.metadata.labels[key] !== value) return true;
  for (const key of Object.values(secretAnnotations)) {
    if (key === secretAnnotations.issuedAt) continue;
    if (have[key] !== want[key]) return true;
  }
  const ownerOf = (s: V1Secret): string => JSON.stringify((s.metadata?.ownerReferences ?? []).map((o) => [o.kind, o.name, o.uid]));
  return ownerOf(existing) !== ownerOf(desired);
}

/**
 * Whether an unmanaged Secret is what the original kube-ecrlogin wrote for these registries
 * (`kubectl create secret docker-registry --docker-server=<host> --docker-username=AWS`): a
 * dockerconfigjson Secret with that one key, whose logins are all user AWS for hosts among the
 * target's. Only such a Secret may be adopted (--target-adopt); any other is left alone.
 */
export function isOriginalLogin(secret: V1Secret, hosts: readonly string[]): boolean {
  if (secret.type !== dockerConfigType) return false;
  const keys = Object.keys(secret.data ?? {});
  const encoded = secret.data?.[dockerConfigKey];
  if (keys.length !== 1 || encoded === undefined) return false;
  const logins = parseDockerConfig(Buffer.from(encoded, 'base64').toString('utf8'));
  if (!logins.ok || logins.value.length === 0) return false;
  return logins.value.every((login) => login.username === 'AWS' && hosts.includes(normalizeHost(login.host)));
}
