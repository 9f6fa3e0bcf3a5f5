// What the MutatingAdmissionPolicy (kustomize/components/admission-policy) cannot see for itself, as
// the data of one parameter ConfigMap. Pure.
//
// The policy reads a Pod's Namespace at admission, so it decides a Namespace's request from its
// annotations with nothing to wait for. It cannot see ServiceAccounts, the config, or the tenant
// policy's verdict; those come from here:
//   secretName              the config's defaults.secretName
//   exclude.<namespace>     the Namespace asks (ecr-login/server) but will get no Secret until its
//                           annotations or the policy change: invalid, or denied. Its Pods get nothing.
//                           (A missing identity ServiceAccount is not a reason: it may appear any
//                           moment, and a Pod admitted meanwhile should carry the Secret to come.)
//   sa.<namespace>.<sa>     a ServiceAccount's own request (ServiceAccount annotation): its Secret.

import type { V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import { annotations } from '../annotations.ts';
import type { Settings } from '../config/settings.ts';
import { resolveIntents } from '../controller/intents.ts';
import { type ProblemReason } from '../controller/model.ts';

/** What one namespace contributes to the parameters. */
export interface NamespaceFacts {
  /** Why the Namespace's own request gets no Secret; undefined when it gets one or asks for none. */
  readonly excluded?: string;
  /** ServiceAccount name -> its own Secret's name. */
  readonly serviceAccounts: ReadonlyMap<string, string>;
}

const none: NamespaceFacts = { serviceAccounts: new Map() };

/** Problems that last until someone changes the annotations or the policy. */
const lasting: ReadonlySet<ProblemReason> = new Set<ProblemReason>(['InvalidAnnotation', 'PolicyDenied']);

/** ConfigMap keys: [-._a-zA-Z0-9], at most 253 characters. */
const maxKeyLength = 253;

/** The facts of one namespace, by the controller's own rules (resolveIntents). */
export function namespaceFacts(namespace: V1Namespace, serviceAccounts: readonly V1ServiceAccount[], settings: Settings): NamespaceFacts {
  const asks = (object: { metadata?: { annotations?: Record<string, string> } }): boolean => object.metadata?.annotations?.[annotations.server] !== undefined;
  if (!asks(namespace) && !serviceAccounts.some(asks)) return none;
  const intents = resolveIntents({ namespace, serviceAccounts, secrets: [], settings, now: 0 });
  const problem = intents.problems.find((p) => p.ref.kind === 'Namespace' && lasting.has(p.reason));
  const byServiceAccount = new Map<string, string>();
  for (const grant of intents.grants) {
    if (grant.source.kind === 'ServiceAccount' && grant.format === 'dockerconfigjson') byServiceAccount.set(grant.source.name, grant.secretName);
  }
  return {
    ...(problem !== undefined ? { excluded: problem.reason } : {}),
    serviceAccounts: byServiceAccount,
  };
}

/** The parameter ConfigMap's data, keys in order. Keys too long for a ConfigMap are left out (and counted). */
export function paramsData(facts: ReadonlyMap<string, NamespaceFacts>, settings: Settings): { data: Record<string, string>; skipped: number } {
  const entries: [string, string][] = [];
  let skipped = 0;
  for (const [namespace, fact] of facts) {
    if (fact.excluded !== undefined) entries.push([`exclude.${namespace}`, fact.excluded]);
    for (const [serviceAccount, secret] of fact.serviceAccounts) {
      const key = `sa.${namespace}.${serviceAccount}`;
      if (key.length > maxKeyLength) skipped++;
      else entries.push([key, secret]);
    }
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { data: Object.fromEntries([['secretName', settings.defaults.secretName], ...entries]), skipped };
}
