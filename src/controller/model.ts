// The controller's model: what a reconcile reads (Snapshot), what it decides should exist (Grant),
// and what it must say (Problem). Types and constants only, so that the modules that compute them
// (intents.ts) and those that use them (secrets.ts, plan.ts, the reconciler) need not import each other.

import type { V1Namespace, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import type { SecretFormat, Source, ServiceAccountSet } from '../annotations.ts';
import type { TokenIdentity } from '../broker.ts';
import type { StaticTarget } from '../config/options.ts';
import type { Settings } from '../config/settings.ts';
import type { ObjectRef } from '../kube/objects.ts';
import type { RegistryHost } from '../registry.ts';

/** What the reconciler reads for one namespace: cache objects, never mutated. */
export interface Snapshot {
  readonly namespace: V1Namespace;
  readonly serviceAccounts: readonly V1ServiceAccount[];
  /** Secrets in the namespace that carry our managed-by label. */
  readonly secrets: readonly V1Secret[];
  readonly settings: Settings;
  readonly now: number;
  /** The command line's static target, when it is this namespace. */
  readonly target?: StaticTarget;
  /** Overrides pendingGraceMs (tests). */
  readonly pendingGraceMs?: number;
}

export interface Grant {
  readonly source: Source;
  readonly ref: ObjectRef;
  readonly registries: readonly RegistryHost[];
  readonly identity: TokenIdentity;
  readonly secretName: string;
  readonly forServiceAccounts: ServiceAccountSet;
  /** What the Secret holds the credentials as (one argocd-repository grant per registry). */
  readonly format: SecretFormat;
  /** Changes when what the Secret should hold changes (registries, identity, format). */
  readonly specHash: string;
}

export type ProblemReason = 'InvalidAnnotation' | 'UnknownAnnotation' | 'PolicyDenied' | 'SecretConflict' | 'ServiceAccountMissing' | 'ServiceAccountPending';

/**
 * A ServiceAccount that ecr-login/service-accounts names but that does not exist is reported once
 * its Namespace is this old: a Namespace's `default` ServiceAccount, or one applied with it, appears
 * a moment after the Namespace.
 */
export const pendingGraceMs = 30_000;

export interface Problem {
  readonly ref: ObjectRef;
  readonly reason: ProblemReason;
  readonly message: string;
  readonly rule?: string;
}

export interface Intents {
  readonly grants: readonly Grant[];
  readonly problems: readonly Problem[];
  /** Secrets left as they are although no grant claims them: their object's annotation is broken. */
  readonly keep: ReadonlySet<string>;
  /** Every object with an ecr-login/server annotation (valid or not), or an ecr-login/* key that is none of ours. */
  readonly annotated: readonly ObjectRef[];
  /** When to look again because something may be reported then (a ServiceAccount still pending), epoch ms. */
  readonly recheckAt?: number;
}
