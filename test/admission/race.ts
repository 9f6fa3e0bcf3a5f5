// The GitOps race, as a user meets it: one `kubectl apply` of an annotated Namespace (or a Namespace
// with an annotated ServiceAccount) together with a Deployment of three replicas. The cluster's own
// deployment and replicaset controllers make the Pods; each Pod either got the pull Secret at
// creation or never will (spec.imagePullSecrets is immutable).

import * as k8s from '@kubernetes/client-node';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, toYaml, type Manifest } from '../kustomize/support.ts';

export type RaceLevel = 'namespace' | 'serviceaccount';

export interface RaceSpec {
  readonly level: RaceLevel;
  /** The ECR host to annotate. */
  readonly server: string;
  /** Labels of the Namespace (the test controller's, the admission binding's selector). */
  readonly labels: Readonly<Record<string, string>>;
  readonly replicas?: number;
  readonly prefix?: string;
}

export interface RaceOutcome {
  readonly namespace: string;
  /** The Secret each Pod should list. */
  readonly secret: string;
  readonly pods: number;
  /** Pods created without that Secret in spec.imagePullSecrets. */
  readonly missing: number;
}

/** The objects of one try: the Namespace, the ServiceAccount (serviceaccount level), the Deployment. */
export function raceObjects(spec: RaceSpec, namespace: string): { objects: Manifest[]; secret: string } {
  const replicas = spec.replicas ?? 3;
  const nsAnnotations = spec.level === 'namespace' ? { 'ecr-login/server': spec.server } : {};
  const serviceAccount = spec.level === 'namespace' ? 'default' : 'app';
  const labels = { app: 'web' };
  const objects: Manifest[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { ...spec.labels }, annotations: nsAnnotations } }];
  if (spec.level === 'serviceaccount') {
    objects.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount, namespace, annotations: { 'ecr-login/server': spec.server } } });
  }
  objects.push({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { serviceAccountName: serviceAccount, containers: [{ name: 'web', image: `${spec.server}/web:1` }] },
      },
    },
  });
  return { objects, secret: spec.level === 'namespace' ? 'ecr-login' : `ecr-login-${serviceAccount}` };
}

/** One try: applies the objects in one kubectl apply, waits for the Pods, counts those without the Secret. */
export async function raceOnce(spec: RaceSpec): Promise<RaceOutcome> {
  const namespace = uniqueName(spec.prefix ?? `race-${spec.level === 'namespace' ? 'ns' : 'sa'}`);
  const { objects, secret } = raceObjects(spec, namespace);
  const applied = await kubectl(['apply', '-f', '-'], toYaml(objects));
  if (applied.code !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
  const core = cluster().adminConfig().makeApiClient(k8s.CoreV1Api);
  const replicas = spec.replicas ?? 3;
  const pods = await eventually(
    `${replicas} Pods in ${namespace}`,
    async () => {
      const list = await core.listNamespacedPod({ namespace });
      if (list.items.length < replicas) throw new Error(`${list.items.length} Pods so far`);
      return list.items;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const missing = pods.filter((pod) => !(pod.spec?.imagePullSecrets ?? []).some((ref) => ref.name === secret)).length;
  return { namespace, secret, pods: pods.length, missing };
}

export interface RaceTally {
  readonly tries: number;
  readonly pods: number;
  readonly missing: number;
  readonly namespaces: readonly string[];
}

/** `tries` tries one after another; namespaces are deleted afterwards (not waited for). */
export async function race(spec: RaceSpec, tries: number): Promise<RaceTally> {
  let pods = 0;
  let missing = 0;
  const namespaces: string[] = [];
  for (let i = 0; i < tries; i++) {
    const outcome = await raceOnce(spec);
    pods += outcome.pods;
    missing += outcome.missing;
    namespaces.push(outcome.namespace);
  }
  return { tries, pods, missing, namespaces };
}

/** Deletes namespaces without waiting for them to go. */
export async function deleteNamespaces(names: readonly string[]): Promise<void> {
  const core = cluster().adminConfig().makeApiClient(k8s.CoreV1Api);
  await Promise.all(
    names.map((name) =>
      core.deleteNamespace({ name }).catch((error: unknown) => {
        if (!(error instanceof k8s.ApiException && error.code === 404)) throw error;
      }),
    ),
  );
}

/** One line for the test log (and the README's figures). */
export function describeTally(label: string, tally: RaceTally): string {
  return `${label}: ${tally.missing} of ${tally.pods} Pods without the Secret (${tally.tries} tries)`;
}
