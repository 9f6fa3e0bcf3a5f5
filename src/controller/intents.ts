// From a namespace snapshot to what should exist: one grant per annotated object that may have
// credentials, and a problem (for a Warning Event) per object that may not. Pure. (The types: model.ts.)

import { createHash } from 'node:crypto';
import type { V1ServiceAccount } from '@kubernetes/client-node';
import {
  annotations as annotationKeys,
  describeSource,
  eksRoleArnAnnotation,
  parseAnnotations,
  type Request,
  type Source,
  type SecretFormat,
  unknownKeys,
} from '../annotations.ts';
import { identityKey, type TokenIdentity } from '../broker.ts';
import type { Settings } from '../config/settings.ts';
import { sessionNameFor, secretNameFor } from '../naming.ts';
import { evaluatePolicy, type Identity } from '../policy.ts';
import type { RegistryHost } from '../registry.ts';
import type { Result } from '../result.ts';
import { pendingGraceMs, type Grant, type Intents, type Problem, type ProblemReason, type Snapshot } from './model.ts';
import { secretAnnotations } from './secrets.ts';
import { roleArnProblem } from '../validation.ts';
import { type ObjectRef } from '../kube/objects.ts';

export function resolveIntents(snapshot: Snapshot): Intents {
  const { namespace, settings } = snapshot;
  const nsName = namespace.metadata?.name ?? '';
  const serviceAccounts = [...snapshot.serviceAccounts].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  const byName = new Map(serviceAccounts.map((sa) => [nameOf(sa), sa]));

  const objects: { source: Source; ref: ObjectRef; annotations: Record<string, string> | undefined }[] = [
    {
      source: { kind: 'Namespace', namespace: nsName, name: nsName },
      ref: refOf('Namespace', nsName, undefined, namespace.metadata?.uid),
      annotations: namespace.metadata?.annotations,
    },
    ...serviceAccounts.map((sa) => ({
      source: { kind: 'ServiceAccount', namespace: nsName, name: nameOf(sa) } as const,
      ref: refOf('ServiceAccount', nameOf(sa), nsName, sa.metadata?.uid),
      annotations: sa.metadata?.annotations,
    })),
  ];

  const grants: Grant[] = [];
  const problems: Problem[] = [];
  const keep = new Set<string>();
  const annotated: ObjectRef[] = [];
  const claimed = new Map<string, Source>();

  if (snapshot.target !== undefined) {
    // Configured by the operator on the command line: no annotation, no tenant policy.
    const source: Source = { kind: 'Target', namespace: nsName, name: nsName };
    const identity: TokenIdentity =
      settings.defaults.roleArn === undefined
        ? { mode: 'controller' }
        : {
            mode: 'assume-role',
            roleArn: settings.defaults.roleArn,
            sessionName: assumedSessionName(source, settings),
          };
    claimed.set(snapshot.target.secretName, source);
    grants.push({
      source,
      ref: refOf('Namespace', nsName, undefined, namespace.metadata?.uid),
      registries: snapshot.target.registries,
      identity,
      secretName: snapshot.target.secretName,
      forServiceAccounts: { all: false, names: snapshot.target.serviceAccounts },
      format: 'dockerconfigjson',
      specHash: specHash(snapshot.target.registries, identity, 'dockerconfigjson'),
    });
  }

  let recheckAt: number | undefined;
  const created = namespace.metadata?.creationTimestamp === undefined ? undefined : new Date(namespace.metadata.creationTimestamp).getTime();
  for (const { source, ref, annotations } of objects) {
    const unknown = unknownKeys(annotations);
    if (unknown.length > 0) {
      const words = unknown.map((u) => (u.suggestion !== undefined ? `${u.key} (did you mean ${u.suggestion}?)` : u.key));
      problems.push({ ref, reason: 'UnknownAnnotation', message: `annotation ${words.join(', ')} is not one kube-ecrlogin reads; it is ignored` });
    }
    const parsed = parseAnnotations(source, annotations);
    const keepOwned = (): void => {
      for (const secret of snapshot.secrets) {
        if (secret.metadata?.annotations?.[secretAnnotations.owner] === describeSource(source)) keep.add(nameOf(secret));
      }
    };
    if (!parsed.ok) {
      annotated.push(ref);
      problems.push({ ref, reason: 'InvalidAnnotation', message: parsed.error.message });
      keepOwned();
      continue;
    }
    const request = parsed.value;
    if (request === undefined) {
      if (unknown.length > 0) annotated.push(ref);
      continue;
    }
    annotated.push(ref);
    const resolved = resolveIdentity(request, settings, byName);
    if (!resolved.ok) {
      problems.push({ ref, reason: resolved.error.reason, message: resolved.error.message });
      keepOwned();
      continue;
    }
    const decision = evaluatePolicy(settings, { name: nsName, labels: namespace.metadata?.labels ?? {} }, resolved.value, request.registries);
    if (!decision.allowed) {
      problems.push({
        ref,
        reason: 'PolicyDenied',
        message: `denied by policy: ${decision.reason}`,
        ...(decision.rule !== undefined ? { rule: decision.rule } : {}),
      });
      continue;
    }
    const baseName = secretNameFor(source, request.secretName, settings.defaults.secretName);
    // An Argo CD credential template names one registry: one Secret per registry, named for it.
    const outputs =
      request.format === 'argocd-repository'
        ? request.registries.map((registry) => ({
            secretName: `${baseName}-${registry.host.replace(/\./g, '-')}`.slice(0, 253).replace(/-+$/, ''),
            registries: [registry],
          }))
        : [{ secretName: baseName, registries: request.registries }];
    const taken = outputs.map((output) => ({ output, holder: claimed.get(output.secretName) })).find((entry) => entry.holder !== undefined);
    if (taken?.holder !== undefined) {
      problems.push({
        ref,
        reason: 'SecretConflict',
        message: `Secret name ${taken.output.secretName} is already used by ${describeSource(taken.holder)}; set ecr-login/secret-name to another name`,
      });
      continue;
    }
    for (const output of outputs) claimed.set(output.secretName, source);
    if (!request.forServiceAccounts.all && created !== undefined) {
      const missing = request.forServiceAccounts.names.filter((name) => !byName.has(name));
      if (missing.length > 0) {
        // Reported once the Namespace is old enough for them to have appeared; looked at again then.
        const reportAt = created + (snapshot.pendingGraceMs ?? pendingGraceMs);
        if (snapshot.now >= reportAt) {
          problems.push({
            ref,
            reason: 'ServiceAccountPending',
            message: `ServiceAccount${missing.length === 1 ? '' : 's'} ${missing.join(', ')} named in ${annotationKeys.serviceAccounts} ${missing.length === 1 ? 'does' : 'do'} not exist (yet): ${missing.length === 1 ? 'it gets' : 'they get'} the Secret when ${missing.length === 1 ? 'it appears' : 'they appear'}`,
          });
        } else {
          recheckAt = Math.min(recheckAt ?? reportAt, reportAt);
        }
      }
    }
    const identity = tokenIdentity(resolved.value, source, settings);
    for (const output of outputs) {
      grants.push({
        source,
        ref,
        registries: output.registries,
        identity,
        secretName: output.secretName,
        forServiceAccounts: request.forServiceAccounts,
        format: request.format,
        specHash: specHash(output.registries, identity, request.format),
      });
    }
  }
  return { grants, problems, keep, annotated, ...(recheckAt !== undefined ? { recheckAt } : {}) };
}

/** The identity a request uses: its role annotation, else (web identity) the ServiceAccount's IRSA role, else the default role. */
function resolveIdentity(
  request: Request,
  settings: Settings,
  serviceAccounts: ReadonlyMap<string, V1ServiceAccount>,
): Result<Identity, { readonly reason: ProblemReason; readonly message: string }> {
  if (request.identity === 'controller') {
    const roleArn = request.roleArn ?? settings.defaults.roleArn;
    return { ok: true, value: roleArn === undefined ? { mode: 'controller' } : { mode: 'assume-role', roleArn } };
  }
  const account = serviceAccounts.get(request.identityServiceAccount);
  if (account === undefined) {
    return {
      ok: false,
      error: {
        reason: 'ServiceAccountMissing',
        message: `identity ServiceAccount ${request.identityServiceAccount} does not exist in namespace ${request.source.namespace}`,
      },
    };
  }
  const irsaRole = account.metadata?.annotations?.[eksRoleArnAnnotation]?.trim();
  const roleArn = request.roleArn ?? (irsaRole !== undefined && irsaRole !== '' ? irsaRole : undefined) ?? settings.defaults.roleArn;
  if (roleArn === undefined) {
    return {
      ok: false,
      error: {
        reason: 'InvalidAnnotation',
        message: `identity service-account needs a role: set ecr-login/role-arn, or ${eksRoleArnAnnotation} on ServiceAccount ${request.identityServiceAccount}`,
      },
    };
  }
  const problem = roleArnProblem(roleArn);
  if (problem !== undefined) {
    return {
      ok: false,
      error: { reason: 'InvalidAnnotation', message: `annotation ${eksRoleArnAnnotation} on ServiceAccount ${request.identityServiceAccount}: ${problem}` },
    };
  }
  return { ok: true, value: { mode: 'service-account', roleArn, serviceAccount: request.identityServiceAccount } };
}

/** The STS session name of an assumed role shared by every object naming it (aws.sessionScope: shared). */
export const sharedSessionName = 'kube-ecrlogin';

/** The STS session an assumed role is asked for: named for the object, or shared (aws.sessionScope). */
function assumedSessionName(source: Source, settings: Settings): string {
  return settings.aws.sessionScope === 'shared' ? sharedSessionName : sessionNameFor(source);
}

function tokenIdentity(identity: Identity, source: Source, settings: Settings): TokenIdentity {
  switch (identity.mode) {
    case 'controller':
      return identity;
    case 'assume-role':
      return { mode: 'assume-role', roleArn: identity.roleArn, sessionName: assumedSessionName(source, settings) };
    case 'service-account':
      return {
        mode: 'service-account',
        roleArn: identity.roleArn,
        namespace: source.namespace,
        serviceAccount: identity.serviceAccount,
        sessionName: sessionNameFor({ kind: 'ServiceAccount', namespace: source.namespace, name: identity.serviceAccount }),
      };
  }
}

function specHash(registries: readonly RegistryHost[], identity: TokenIdentity, format: SecretFormat): string {
  const hosts = registries.map((r) => r.host).sort();
  // A pull Secret's hash is as it always was, so that an upgrade rewrites none.
  return createHash('sha256')
    .update(JSON.stringify({ v: 1, hosts, identity: identityKey(identity), ...(format !== 'dockerconfigjson' ? { format } : {}) }))
    .digest('hex')
    .slice(0, 16);
}

function refOf(kind: ObjectRef['kind'], name: string, namespace: string | undefined, uid: string | undefined): ObjectRef {
  return { kind, name, ...(namespace !== undefined ? { namespace } : {}), ...(uid !== undefined ? { uid } : {}) };
}

/** Whether a grant's Secret belongs in a ServiceAccount's imagePullSecrets (and so in its Pods'). */
export function grantCovers(grant: Grant, serviceAccount: string): boolean {
  return grant.forServiceAccounts.all || grant.forServiceAccounts.names.includes(serviceAccount);
}

/**
 * The Secrets a Pod running as a ServiceAccount should list in spec.imagePullSecrets: those of the
 * grants that cover the ServiceAccount, in grant order. One rule for the ServiceAccount patch, the
 * admission webhook and the doctor.
 */
export function pullSecretsFor(grants: readonly Grant[], serviceAccount: string): string[] {
  return [...new Set(grants.filter((grant) => grantCovers(grant, serviceAccount)).map((grant) => grant.secretName))];
}

export function nameOf(object: { metadata?: { name?: string } }): string {
  return object.metadata?.name ?? '';
}
