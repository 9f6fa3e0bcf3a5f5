// Which pull Secrets a new Pod should carry, by the controller's own rules, and the JSON Patch that
// appends the missing ones. Pure: the webhook feeds it what it read.

import type { V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import type { Settings } from '../config/settings.ts';
import { pullSecretsFor, resolveIntents } from '../controller/intents.ts';
import { type JsonPatchOp } from '../kube/objects.ts';

export interface PodAdmission {
  /** The Secrets the Pod should list, whether it lists them already or not. */
  readonly wanted: readonly string[];
  /** Appends those it does not list; empty when there is nothing to do. */
  readonly patch: readonly JsonPatchOp[];
}

/**
 * The Pod's Secrets: those of the grants (Namespace or ServiceAccount annotation, after the tenant
 * policy) that cover its ServiceAccount, exactly as the controller patches that ServiceAccount.
 * `serviceAccounts` must hold the Pod's ServiceAccount if it exists; the others only decide Secret
 * name collisions between ServiceAccounts.
 */
export function admitPod(
  pod: { readonly serviceAccount: string; readonly imagePullSecrets: readonly string[] | undefined },
  namespace: V1Namespace,
  serviceAccounts: readonly V1ServiceAccount[],
  settings: Settings,
): PodAdmission {
  const intents = resolveIntents({ namespace, serviceAccounts, secrets: [], settings, now: 0 });
  const wanted = pullSecretsFor(intents.grants, pod.serviceAccount);
  const listed = pod.imagePullSecrets;
  const missing = wanted.filter((name) => !(listed ?? []).includes(name));
  if (missing.length === 0) return { wanted, patch: [] };
  const patch: JsonPatchOp[] =
    listed === undefined
      ? [{ op: 'add', path: '/spec/imagePullSecrets', value: missing.map((name) => ({ name })) }]
      : missing.map((name) => ({ op: 'add', path: '/spec/imagePullSecrets/-', value: { name } }));
  return { wanted, patch };
}
