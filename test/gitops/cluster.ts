// What the GitOps suites need of their private control plane: kubectl as its admin, Flux-style
// reconcile requests and conditions on custom resources, and write counts from its audit log that
// leave out dry runs (an engine's drift check is a server-side dry-run apply, logged as a patch).

import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../support/eventually.ts';
import { writeVerbs, type AuditEvent, type ControlPlane } from '../cluster/controlplane.ts';
import { run, type RunResult } from '../kustomize/support.ts';

/** kubectl as the control plane's admin, with a kubeconfig and discovery cache under dir. */
export function kubectlFor(plane: ControlPlane, dir: string): (args: readonly string[], input?: string) => Promise<RunResult> {
  const kubeconfig = plane.writeKubeconfig(plane.adminConfig(), join(dir, 'admin.kubeconfig'));
  return (args, input) =>
    run('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'kubectl-cache'), ...args], input !== undefined ? { input } : {});
}

/** Applies CRD files (Server-Side Apply) and waits until they serve. */
export async function installCrds(kubectl: (args: readonly string[]) => Promise<RunResult>, files: readonly string[], fieldManager: string): Promise<void> {
  const applied = await kubectl(['apply', '--server-side', `--field-manager=${fieldManager}`, ...files.flatMap((file) => ['-f', file])]);
  if (applied.code !== 0) throw new Error(`installing CRDs: ${applied.stderr}`);
  // kubectl wait fails at once on a CRD whose status is not written yet: ask again until it passes.
  await eventually(
    'the CRDs established',
    async () => {
      const waited = await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd', '--all']);
      if (waited.code !== 0) throw new Error(waited.stderr);
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

/** An audit event with the request URI, which says whether it was a dry run. */
type AuditLine = AuditEvent & { readonly requestURI?: string };

export interface CountedWrite {
  readonly verb: string;
  readonly resource: string;
  readonly namespace: string;
  readonly name: string;
  readonly at: string;
}

/**
 * Writes (not dry runs) by a user since a time, leaving out the resources in `except` (an engine's
 * own custom resources and their status, Events). Call plane.auditCaughtUp() first.
 */
export function realWrites(plane: ControlPlane, user: string, since: Date, except: readonly string[] = []): CountedWrite[] {
  return plane
    .auditEvents({ user, since, verbs: writeVerbs })
    .filter((event: AuditLine) => !(event.requestURI ?? '').includes('dryRun='))
    .filter((event) => !except.includes(event.objectRef?.resource ?? ''))
    .map((event) => ({
      verb: event.verb,
      resource: [event.objectRef?.resource, event.objectRef?.subresource].filter((part) => part !== undefined).join('/'),
      namespace: event.objectRef?.namespace ?? '',
      name: event.objectRef?.name ?? '',
      at: event.requestReceivedTimestamp,
    }));
}

/** Dry-run writes by a user since a time: an engine comparing Git with the cluster. */
export function dryRuns(plane: ControlPlane, user: string, since: Date): number {
  return plane.auditEvents({ user, since, verbs: writeVerbs }).filter((event: AuditLine) => (event.requestURI ?? '').includes('dryRun=')).length;
}

export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
  readonly observedGeneration?: number;
}

export interface CustomObject {
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly generation?: number; readonly annotations?: Record<string, string> };
  readonly spec?: Record<string, unknown>;
  readonly status?: {
    readonly conditions?: readonly Condition[];
    readonly lastHandledReconcileAt?: string;
    readonly lastAppliedRevision?: string;
    readonly observedGeneration?: number;
    readonly artifact?: { readonly revision?: string };
    readonly inventory?: { readonly entries?: readonly { readonly id: string; readonly v: string }[] };
    readonly [field: string]: unknown;
  };
}

export interface Kind {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
}

export const fluxKinds = {
  GitRepository: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'gitrepositories' },
  Kustomization: { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' },
} as const satisfies Record<string, Kind>;

export function customObjects(plane: ControlPlane): k8s.CustomObjectsApi {
  return plane.adminConfig().makeApiClient(k8s.CustomObjectsApi);
}

export async function readCustom(plane: ControlPlane, kind: Kind, namespace: string, name: string): Promise<CustomObject> {
  return (await customObjects(plane).getNamespacedCustomObject({ ...kind, namespace, name })) as CustomObject;
}

export function condition(object: CustomObject, type: string): Condition | undefined {
  return object.status?.conditions?.find((c) => c.type === type);
}
