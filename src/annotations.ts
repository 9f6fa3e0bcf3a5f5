// The annotation API: what a Namespace or ServiceAccount asks of kube-ecrlogin, parsed once into a
// typed request or a clear error. Pure: no I/O, no clock.

import { parseRegistryHost, type RegistryHost } from './registry.ts';
import type { Result } from './result.ts';
import { dnsSubdomainProblem, quote, roleArnPartition, roleArnProblem } from './validation.ts';

export const annotations = {
  /** One or more ECR registry hosts (private, in one partition, or ECR Public), comma-separated. Marks the object as wanting credentials. */
  server: 'ecr-login/server',
  /** Namespace only: ServiceAccounts to patch (comma-separated, or `*`); default `default`. */
  serviceAccounts: 'ecr-login/service-accounts',
  /** IAM role to use for the registries. */
  roleArn: 'ecr-login/role-arn',
  /** Overrides the Secret name. */
  secretName: 'ecr-login/secret-name',
  /** `controller` (default) or `service-account` (per-tenant web identity). */
  identity: 'ecr-login/identity',
  /** Namespace only, with `identity: service-account`: whose token to exchange; default `default`. */
  identityServiceAccount: 'ecr-login/identity-service-account',
  /** The Secret's form: dockerconfigjson (default), config-json, argocd-repository. */
  format: 'ecr-login/format',
} as const;

/**
 * What a Secret holds the credentials as:
 * - dockerconfigjson: a kubernetes.io/dockerconfigjson pull Secret, listed in imagePullSecrets;
 * - config-json: an Opaque Secret with a `config.json` key ({"auths": ...}), for image builders
 *   (Kaniko, BuildKit, Tekton) that mount it as ~/.docker/config.json;
 * - argocd-repository: one Argo CD repository credential template per registry (Helm charts and OCI
 *   artifacts in ECR).
 */
export type SecretFormat = 'dockerconfigjson' | 'config-json' | 'argocd-repository';
export const secretFormats: readonly SecretFormat[] = ['dockerconfigjson', 'config-json', 'argocd-repository'];

/** On a ServiceAccount: the imagePullSecrets entries kube-ecrlogin added (its record, not a request). */
export const pullSecretsRecord = 'ecr-login/pull-secrets';

/** The prefix of every annotation kube-ecrlogin reads (and of the keys it warns about as typos). */
export const annotationPrefix = 'ecr-login/';

/** Every ecr-login/* key kube-ecrlogin reads or writes on a Namespace or ServiceAccount. */
export const knownKeys: readonly string[] = [...Object.values(annotations), pullSecretsRecord];

export interface UnknownKey {
  readonly key: string;
  /** The known key it most likely meant, when one is close. */
  readonly suggestion?: string;
}

/**
 * The ecr-login/* keys on an object that are none of ours: a typo such as ecr-login/servers would
 * otherwise ask for nothing without a word. Each with the closest known key, if one is close.
 */
export function unknownKeys(values: Readonly<Record<string, string>> | undefined): UnknownKey[] {
  const unknown: UnknownKey[] = [];
  for (const key of Object.keys(values ?? {})) {
    if (!key.startsWith(annotationPrefix) || knownKeys.includes(key)) continue;
    const suggestion = closest(key);
    unknown.push({ key, ...(suggestion !== undefined ? { suggestion } : {}) });
  }
  return unknown.sort((a, b) => (a.key < b.key ? -1 : 1));
}

/** The known key nearest to `key` by edit distance (separators and case aside), if near enough. */
function closest(key: string): string | undefined {
  const norm = (k: string): string => k.slice(annotationPrefix.length).toLowerCase().replace(/[-_.]/g, '');
  let best: { key: string; distance: number } | undefined;
  for (const known of knownKeys) {
    const distance = editDistance(norm(key), norm(known));
    if (best === undefined || distance < best.distance) best = { key: known, distance };
  }
  if (best === undefined) return undefined;
  const length = norm(best.key).length;
  return best.distance <= Math.max(2, Math.floor(length / 3)) ? best.key : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The role annotation IRSA uses; the fallback role in service-account identity mode. */
export const eksRoleArnAnnotation = 'eks.amazonaws.com/role-arn';

/** Annotations that only make sense on a Namespace. */
const namespaceOnly: readonly string[] = [annotations.serviceAccounts, annotations.identityServiceAccount];

/** Target: the static target of the command line (the original kube-ecrlogin's AWS_ECR_SERVER). */
export type SourceKind = 'Namespace' | 'ServiceAccount' | 'Target';

/** The annotated object a request comes from. */
export interface Source {
  readonly kind: SourceKind;
  readonly namespace: string;
  /** The namespace name for a Namespace or Target, the ServiceAccount name for a ServiceAccount. */
  readonly name: string;
}

export type IdentityKind = 'controller' | 'service-account';

/** Which ServiceAccounts get the Secret in imagePullSecrets. */
export type ServiceAccountSet = { readonly all: true } | { readonly all: false; readonly names: readonly string[] };

/** What one annotated object asks for, before policy and defaults apply. */
export interface Request {
  readonly source: Source;
  readonly registries: readonly RegistryHost[];
  readonly identity: IdentityKind;
  /** The ServiceAccount whose token is exchanged in service-account identity mode. */
  readonly identityServiceAccount: string;
  readonly roleArn?: string;
  readonly secretName?: string;
  readonly forServiceAccounts: ServiceAccountSet;
  readonly format: SecretFormat;
}

export interface AnnotationError {
  readonly source: Source;
  readonly annotation: string;
  readonly message: string;
}

/** What an object's annotations ask for: a request, or undefined when they ask for nothing; or why they are invalid. */
export type ParseResult = Result<Request | undefined, AnnotationError>;

/** Longest annotation value read; Kubernetes allows 256 KiB for all of them together. */
export const maxValueLength = 4096;
const maxRegistries = 32;

/** Parses the ecr-login annotations of an object. Objects without `ecr-login/server` ask for nothing. */
export function parseAnnotations(source: Source, values: Readonly<Record<string, string>> | undefined): ParseResult {
  const get = (key: string): string | undefined => values?.[key];
  const server = get(annotations.server);
  if (server === undefined) return { ok: true, value: undefined };
  const fail = (annotation: string, message: string): ParseResult => ({
    ok: false,
    error: { source, annotation, message: `annotation ${annotation}: ${message}` },
  });

  for (const key of Object.values(annotations)) {
    const value = get(key);
    if (value !== undefined && value.length > maxValueLength) {
      return fail(key, `value is ${value.length} characters long, more than the ${maxValueLength} allowed`);
    }
  }
  if (source.kind === 'ServiceAccount') {
    const misplaced = namespaceOnly.find((key) => get(key) !== undefined);
    if (misplaced !== undefined) return fail(misplaced, 'only applies to a Namespace, not a ServiceAccount');
  }

  const registries = parseList(server);
  if (registries.length === 0) return fail(annotations.server, 'names no registry host');
  if (registries.length > maxRegistries) {
    return fail(annotations.server, `names ${registries.length} hosts, more than the ${maxRegistries} allowed`);
  }
  const hosts: RegistryHost[] = [];
  for (const entry of registries) {
    const parsed = parseRegistryHost(entry);
    if (!parsed.ok) return fail(annotations.server, parsed.error);
    if (hosts.some((host) => host.host === parsed.value.host)) {
      return fail(annotations.server, `lists ${quote(parsed.value.host)} twice`);
    }
    hosts.push(parsed.value);
  }
  // An IAM principal, and every credential it gets, belongs to one partition: no identity reaches two.
  const partitions = [...new Set(hosts.map((host) => host.partition))];
  if (partitions.length > 1) {
    return fail(
      annotations.server,
      `lists registries of partitions ${partitions.join(', ')}; one identity cannot reach more than one partition (use one annotated object per partition)`,
    );
  }
  const partition = partitions[0] ?? 'aws';

  const formatValue = get(annotations.format)?.trim() ?? 'dockerconfigjson';
  const format = secretFormats.find((candidate) => candidate === formatValue);
  if (format === undefined) return fail(annotations.format, `${quote(formatValue)} is not one of ${secretFormats.join(', ')}`);
  if (format !== 'dockerconfigjson' && get(annotations.serviceAccounts) !== undefined) {
    return fail(annotations.serviceAccounts, `has no use with ${annotations.format}: ${format} (only pull Secrets go into imagePullSecrets)`);
  }

  const identityValue = get(annotations.identity)?.trim() ?? 'controller';
  if (identityValue !== 'controller' && identityValue !== 'service-account') {
    return fail(annotations.identity, `${quote(identityValue)} is not one of controller, service-account`);
  }

  const roleArn = get(annotations.roleArn)?.trim();
  if (roleArn !== undefined) {
    const problem = roleArnProblem(roleArn);
    if (problem !== undefined) return fail(annotations.roleArn, problem);
    const rolePartition = roleArnPartition(roleArn);
    if (rolePartition !== partition) {
      return fail(
        annotations.roleArn,
        `role ${quote(roleArn)} is in partition ${rolePartition ?? 'unknown'}, but the registries are in partition ${partition}: a role reaches only its own partition's registries (arn:${partition}:iam::...)`,
      );
    }
  }

  const secretName = get(annotations.secretName)?.trim();
  if (secretName !== undefined) {
    const problem = dnsSubdomainProblem(secretName);
    if (problem !== undefined) return fail(annotations.secretName, `Secret name ${problem}`);
  }

  let identityServiceAccount = source.kind === 'ServiceAccount' ? source.name : 'default';
  const identitySa = get(annotations.identityServiceAccount)?.trim();
  if (identitySa !== undefined) {
    const problem = dnsSubdomainProblem(identitySa);
    if (problem !== undefined) return fail(annotations.identityServiceAccount, `ServiceAccount name ${problem}`);
    identityServiceAccount = identitySa;
  }

  let forServiceAccounts: ServiceAccountSet = source.kind === 'ServiceAccount' ? { all: false, names: [source.name] } : { all: false, names: ['default'] };
  const listed = get(annotations.serviceAccounts);
  if (listed !== undefined) {
    const parsed = parseServiceAccountSet(listed);
    if (!parsed.ok) return fail(annotations.serviceAccounts, parsed.error);
    forServiceAccounts = parsed.value;
  }

  const request: Request = {
    source,
    registries: hosts,
    identity: identityValue,
    identityServiceAccount,
    // Only pull Secrets go into imagePullSecrets.
    forServiceAccounts: format === 'dockerconfigjson' ? forServiceAccounts : { all: false, names: [] },
    format,
    ...(roleArn !== undefined ? { roleArn } : {}),
    ...(secretName !== undefined ? { secretName } : {}),
  };
  return { ok: true, value: request };
}

function parseList(value: string): string[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

function parseServiceAccountSet(value: string): Result<ServiceAccountSet> {
  const names = parseList(value);
  if (names.length === 0) return { ok: false, error: 'names no ServiceAccount (use `*` for all of them)' };
  if (names.includes('*')) {
    return names.length === 1 ? { ok: true, value: { all: true } } : { ok: false, error: '`*` cannot be combined with names' };
  }
  const seen = new Set<string>();
  for (const name of names) {
    const problem = dnsSubdomainProblem(name);
    if (problem !== undefined) return { ok: false, error: `ServiceAccount name ${problem}` };
    if (seen.has(name)) return { ok: false, error: `lists ${quote(name)} twice` };
    seen.add(name);
  }
  return { ok: true, value: { all: false, names } };
}

/** A short label for a source, used in logs, Events and the Secret's annotations. */
export function describeSource(source: Source): string {
  return source.kind === 'ServiceAccount' ? `ServiceAccount/${source.namespace}/${source.name}` : `${source.kind}/${source.name}`;
}
