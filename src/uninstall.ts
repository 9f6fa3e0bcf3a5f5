// `kube-ecrlogin uninstall`: removes what kube-ecrlogin wrote into the cluster's namespaces, and
// nothing else; a dry run unless --yes. Then says what is left: kube-ecrlogin's own objects, which
// the manifests (and the controller, in its own namespace) made.
//
// What is ours is decided by the controller's own rules, never by a label alone:
// - a Secret is ours when it carries the managed-by label, our field manager wrote its data
//   (managedFields), and its owner annotation names an object in its own namespace
//   (src/kube/trim.ts metadataForCache through the Secret cache's own transform, then
//   src/controller/secrets.ts isOurs);
// - an imagePullSecrets entry is ours when the ServiceAccount's ecr-login/pull-secrets annotation
//   records it AND it names a Secret of ours in that namespace (src/controller/plan.ts
//   planServiceAccounts, asked to keep nothing).
// Entries are removed first, then the Secrets they name, each write guarded by the resourceVersion
// (and, for a delete, the uid) that was read; a conflict is read again and decided again.
// Stop the controller first: a running one writes its Secrets again.

import {
  ApiException,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Secret,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { loadKubeConfig } from './kube/kubeconfig.ts';
import type { Options } from './config/options.ts';
import { secretMetadata } from './controller/caches.ts';
import { nameOf } from './controller/intents.ts';
import { planServiceAccounts, pullSecretsAnnotation } from './controller/plan.ts';
import { dataWrittenByUs, isOurs, managedBy, managedSelector, ownerNamespace } from './controller/secrets.ts';
import { describeKubeError } from './kube/api.ts';
import { metadataOnly } from './kube/metadata.ts';
import { type JsonPatchOp, fieldManager } from './kube/objects.ts';

export interface UninstallOptions {
  /** The controller's namespace: where its own objects are left for the manifests' delete. */
  readonly namespace: string;
  /** Only namespaces with these labels, as the controller serves (--namespace-selector). */
  readonly namespaceSelector?: string;
  /** Act; without it, only say what would be done. */
  readonly yes: boolean;
}

export interface SecretRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
}

export interface EntryRemoval {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly entries: readonly string[];
  readonly ops: readonly JsonPatchOp[];
}

/** What uninstall finds: what it removes, and what it leaves alone, with why. */
export interface UninstallPlan {
  readonly entries: readonly EntryRemoval[];
  readonly secrets: readonly SecretRef[];
  /** "<namespace>/<name>: why" of Secrets carrying our label that are not ours. */
  readonly leftAlone: readonly string[];
  /** Controllers (Deployments, CronJobs) that still run and would write again; or why that is unknown. */
  readonly running: readonly string[];
}

/** Reads the cluster and plans; writes nothing. */
export async function planUninstall(config: KubeConfig, options: UninstallOptions): Promise<UninstallPlan> {
  const core = config.makeApiClient(CoreV1Api);
  const selected = options.namespaceSelector === undefined ? undefined : await namespacesSelected(core, options.namespaceSelector);
  const inScope = (namespace: string | undefined): boolean => namespace !== undefined && (selected === undefined || selected.has(namespace));

  const labelled = (await secretsLabelled(config)).filter((secret) => inScope(secret.metadata?.namespace));
  const ours = labelled.filter((secret) => isOurs(secret));
  const leftAlone = labelled.filter((secret) => !isOurs(secret)).map((secret) => `${key(secret)}: ${whyNotOurs(secret)}`);
  const oursByNamespace = new Map<string, Set<string>>();
  for (const secret of ours) {
    const namespace = secret.metadata?.namespace ?? '';
    oursByNamespace.set(namespace, (oursByNamespace.get(namespace) ?? new Set<string>()).add(nameOf(secret)));
  }

  const entries: EntryRemoval[] = [];
  for (const sa of await serviceAccountsRecording(core)) {
    const namespace = sa.metadata?.namespace;
    if (!inScope(namespace) || namespace === undefined) continue;
    const removal = planEntries(sa, oursByNamespace.get(namespace) ?? new Set());
    if (removal !== undefined) entries.push(removal);
  }

  return {
    entries: entries.sort((a, b) => `${a.namespace}/${a.serviceAccount}`.localeCompare(`${b.namespace}/${b.serviceAccount}`)),
    secrets: ours
      .map((secret) => ({
        namespace: secret.metadata?.namespace ?? '',
        name: nameOf(secret),
        uid: secret.metadata?.uid ?? '',
        resourceVersion: secret.metadata?.resourceVersion ?? '',
      }))
      .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`)),
    leftAlone: leftAlone.sort(),
    running: await controllersRunning(config),
  };
}

/** The entries of one ServiceAccount that are ours to remove, as the controller would remove them. */
function planEntries(sa: V1ServiceAccount, owned: ReadonlySet<string>): EntryRemoval | undefined {
  const [patch] = planServiceAccounts([sa], [], new Set(), new Set(), owned);
  if (patch === undefined || patch.removed.length === 0) return undefined;
  return { namespace: sa.metadata?.namespace ?? '', serviceAccount: patch.serviceAccount, entries: patch.removed, ops: patch.ops };
}

export interface UninstallResult {
  readonly plan: UninstallPlan;
  /** What was done (with --yes), as "<what> <namespace>/<name>". */
  readonly done: readonly string[];
  /** What could not be done, and why. */
  readonly failed: readonly string[];
}

/** Plans and, with options.yes, acts: entries first, then the Secrets. */
export async function uninstall(config: KubeConfig, options: UninstallOptions): Promise<UninstallResult> {
  const plan = await planUninstall(config, options);
  if (!options.yes) return { plan, done: [], failed: [] };
  const core = config.makeApiClient(CoreV1Api);
  const done: string[] = [];
  const failed: string[] = [];
  for (const removal of plan.entries) {
    const where = `${removal.namespace}/${removal.serviceAccount}`;
    try {
      const removed = await removeEntries(core, config, removal);
      if (removed.length > 0) done.push(`removed imagePullSecrets ${removed.join(', ')} from ServiceAccount ${where}`);
    } catch (error) {
      failed.push(`ServiceAccount ${where}: ${describeKubeError(error)}`);
    }
  }
  for (const secret of plan.secrets) {
    const where = `${secret.namespace}/${secret.name}`;
    try {
      if (await deleteSecret(core, config, secret)) done.push(`deleted Secret ${where}`);
    } catch (error) {
      failed.push(`Secret ${where}: ${describeKubeError(error)}`);
    }
  }
  return { plan, done, failed };
}

/**
 * Applies a planned removal; on a conflict (the ServiceAccount changed since it was read, so the
 * JSON Patch's test failed) reads it again and plans again, a few times.
 */
async function removeEntries(core: CoreV1Api, config: KubeConfig, removal: EntryRemoval): Promise<readonly string[]> {
  let current: EntryRemoval | undefined = removal;
  for (let attempt = 1; current !== undefined; attempt++) {
    try {
      await core.patchNamespacedServiceAccount(
        { namespace: current.namespace, name: current.serviceAccount, body: current.ops, fieldManager },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
      return current.entries;
    } catch (error) {
      if (isStatus(error, 404)) return [];
      if (!(isStatus(error, 409) || isStatus(error, 422)) || attempt >= 5) throw error;
      const list = await core.listNamespacedServiceAccount({ namespace: current.namespace, fieldSelector: `metadata.name=${current.serviceAccount}` });
      const sa = list.items[0];
      if (sa === undefined) return [];
      current = planEntries(sa, await oursIn(config, current.namespace));
    }
  }
  return [];
}

/** Deletes a Secret if it is still the one read; if it changed, reads it again and decides again. */
async function deleteSecret(core: CoreV1Api, config: KubeConfig, secret: SecretRef): Promise<boolean> {
  let current = secret;
  for (let attempt = 1; ; attempt++) {
    try {
      await core.deleteNamespacedSecret({
        namespace: current.namespace,
        name: current.name,
        body: { preconditions: { uid: current.uid, resourceVersion: current.resourceVersion } },
      });
      return true;
    } catch (error) {
      if (isStatus(error, 404)) return false;
      if (!isStatus(error, 409) || attempt >= 5) throw error;
      const again = await ourSecret(config, current.namespace, current.name);
      if (again === undefined) return false;
      current = again;
    }
  }
}

/** A Secret read again, if it is still ours. */
async function ourSecret(config: KubeConfig, namespace: string, name: string): Promise<SecretRef | undefined> {
  const found = (await secretsLabelled(config, namespace)).find((s) => nameOf(s) === name && isOurs(s));
  return found === undefined ? undefined : { namespace, name, uid: found.metadata?.uid ?? '', resourceVersion: found.metadata?.resourceVersion ?? '' };
}

/** Secrets carrying our label, metadata only, as the controller's Secret cache keeps them. */
async function secretsLabelled(config: KubeConfig, namespace?: string): Promise<V1Secret[]> {
  const core = metadataOnly(config).makeApiClient(CoreV1Api);
  const out: V1Secret[] = [];
  let token: string | undefined;
  do {
    const page =
      namespace === undefined
        ? await core.listSecretForAllNamespaces({ labelSelector: managedSelector, limit: 500, ...(token !== undefined ? { _continue: token } : {}) })
        : await core.listNamespacedSecret({ namespace, labelSelector: managedSelector, limit: 500, ...(token !== undefined ? { _continue: token } : {}) });
    out.push(...page.items.map((item) => secretMetadata(item)));
    token = page.metadata?._continue || undefined;
  } while (token !== undefined);
  return out;
}

async function oursIn(config: KubeConfig, namespace: string): Promise<Set<string>> {
  return new Set((await secretsLabelled(config, namespace)).filter((secret) => isOurs(secret)).map((secret) => nameOf(secret)));
}

/** ServiceAccounts with our record of entries added (annotations cannot be selected server-side). */
async function serviceAccountsRecording(core: CoreV1Api): Promise<V1ServiceAccount[]> {
  const out: V1ServiceAccount[] = [];
  let token: string | undefined;
  do {
    const page = await core.listServiceAccountForAllNamespaces({ limit: 500, ...(token !== undefined ? { _continue: token } : {}) });
    out.push(...page.items.filter((sa) => sa.metadata?.annotations?.[pullSecretsAnnotation] !== undefined));
    token = page.metadata?._continue || undefined;
  } while (token !== undefined);
  return out;
}

async function namespacesSelected(core: CoreV1Api, selector: string): Promise<Set<string>> {
  const list = await core.listNamespace({ labelSelector: selector });
  return new Set(list.items.map((ns) => nameOf(ns)));
}

/** Why a Secret with our label is not ours (isOurs' conditions, in its order). */
function whyNotOurs(secret: V1Secret): string {
  if (secret.metadata?.annotations?.[dataWrittenByUs] !== 'true') return 'its data was not written by kube-ecrlogin';
  const owner = ownerNamespace(secret);
  return owner === undefined ? 'its ecr-login/owner annotation names no object' : `its ecr-login/owner annotation names an object in namespace ${owner}`;
}

/**
 * Deployments with replicas and CronJobs not suspended that run kube-ecrlogin (by the manifests'
 * label), anywhere: a running controller writes its Secrets and entries again. Asked, never decided on.
 */
async function controllersRunning(config: KubeConfig): Promise<string[]> {
  const selector = 'app.kubernetes.io/name=kube-ecrlogin';
  try {
    const [deployments, cronJobs] = await Promise.all([
      config.makeApiClient(AppsV1Api).listDeploymentForAllNamespaces({ labelSelector: selector }),
      config.makeApiClient(BatchV1Api).listCronJobForAllNamespaces({ labelSelector: selector }),
    ]);
    return [
      ...deployments.items.filter((d) => (d.spec?.replicas ?? 1) > 0).map((d) => `Deployment ${key(d)} (${String(d.spec?.replicas ?? 1)} replicas)`),
      ...cronJobs.items.filter((c) => c.spec.suspend !== true).map((c) => `CronJob ${key(c)} (not suspended)`),
    ].sort();
  } catch (error) {
    return [`unknown: cannot list Deployments and CronJobs (${describeKubeError(error)})`];
  }
}

function key(object: { metadata?: { namespace?: string; name?: string } }): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

function isStatus(error: unknown, code: number): boolean {
  return error instanceof ApiException && error.code === code;
}

/** The report: what was (or would be) done, what was left alone, and what is left to delete. */
export function formatUninstall(result: UninstallResult, options: UninstallOptions): string {
  const { plan } = result;
  const lines: string[] = [];
  const scope = options.namespaceSelector === undefined ? 'every namespace' : `namespaces with labels ${options.namespaceSelector}`;
  lines.push(options.yes ? `kube-ecrlogin uninstall, in ${scope}:` : `kube-ecrlogin uninstall, in ${scope} (dry run: nothing is changed; --yes to do it):`);
  if (plan.running.length > 0) {
    lines.push('', 'Still running, and would write its Secrets again (stop it first: scale the Deployment to 0, suspend the CronJob):');
    for (const running of plan.running) lines.push(`  ${running}`);
  }
  const verb = (done: string): string => (options.yes ? done : `would be ${done}`);
  lines.push('', `imagePullSecrets entries kube-ecrlogin added (${verb('removed')}): ${String(plan.entries.reduce((n, e) => n + e.entries.length, 0))}`);
  for (const removal of plan.entries) lines.push(`  ServiceAccount ${removal.namespace}/${removal.serviceAccount}: ${removal.entries.join(', ')}`);
  lines.push(`Secrets kube-ecrlogin wrote (${verb('deleted')}): ${String(plan.secrets.length)}`);
  for (const secret of plan.secrets) lines.push(`  ${secret.namespace}/${secret.name}`);
  if (plan.leftAlone.length > 0) {
    lines.push(`Secrets labelled ${managedBy.key}=${managedBy.value} that kube-ecrlogin did not write (left alone): ${String(plan.leftAlone.length)}`);
    for (const why of plan.leftAlone) lines.push(`  ${why}`);
  }
  if (result.failed.length > 0) {
    lines.push('', `Failed (${String(result.failed.length)}; run again):`);
    for (const failure of result.failed) lines.push(`  ${failure}`);
  }
  const ns = options.namespace;
  lines.push(
    '',
    "Left to delete, kube-ecrlogin's own objects:",
    '  kubectl delete -k <the kustomization you applied>     (or: kubectl delete -f install.yaml, the file of the release)',
    `    the controller, its RBAC, the policy ConfigMap and the Namespace ${ns}; with their components, the`,
    '    ValidatingAdmissionPolicies (guard-rails), the MutatingAdmissionPolicy and its binding (admission-policy),',
    '    the MutatingWebhookConfiguration (admission-webhook), ServiceMonitor and PrometheusRule (prometheus).',
    `  What the controller made in ${ns} and no manifest lists (gone with the Namespace; if you keep it):`,
    `    kubectl -n ${ns} delete secret kube-ecrlogin-webhook-tls --ignore-not-found      # the webhook's certificate`,
    `    kubectl -n ${ns} delete configmap kube-ecrlogin-admission --ignore-not-found     # the admission policy's parameters`,
  );
  return `${lines.join('\n')}\n`;
}

/** The command: plans (and with --yes acts) with the command line's kubeconfig, and prints the report. */
export async function runUninstall(options: Options, out: NodeJS.WritableStream): Promise<number> {
  const scope: UninstallOptions = {
    namespace: options.namespace,
    yes: options.yes,
    ...(options.namespaceSelector !== undefined ? { namespaceSelector: options.namespaceSelector } : {}),
  };
  const result = await uninstall(loadKubeConfig(options.kubeconfig), scope);
  out.write(formatUninstall(result, scope));
  return result.failed.length === 0 ? 0 : 1;
}
