// The Git repository the GitOps suites serve to a real engine: this checkout's kustomize/, the copy of
// kustomize/examples/install the overlays sync (made local), and tenant manifests, commit by commit.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import type { AwsTestServer } from '../aws/server.ts';
import { Replica } from '../chaos/replicas.ts';
import { kubeMinor, repoRoot, type ControlPlane } from '../cluster/controlplane.ts';
import { kustomizeRoot } from '../kustomize/support.ts';
import { controllerKeys } from '../support/controller.ts';
import type { GitServer } from './git-server.ts';

export const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
export const west = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
/** The controller as the ServiceAccount the overlay creates. */
export const controllerUser = 'system:serviceaccount:kube-ecrlogin:kube-ecrlogin';
/** MutatingAdmissionPolicy is GA (admissionregistration.k8s.io/v1) from Kubernetes 1.36: the admission-policy component where it exists. */
export const admission = kubeMinor() !== '1.34';

export const doc = (object: Record<string, unknown>): string => stringify(object);

/**
 * The overlays sync "your copy of kustomize/examples/install" (`path`), which fetches its bases from
 * this project's release tag on GitHub. No network here: the copy in the repository names the same
 * directories of this checkout instead, as `make validate` builds it, and, where it exists, adds the
 * admission-policy component, as the overlays' READMEs say to.
 */
function localInstall(path: string): Record<string, string> {
  const text = readFileSync(join(repoRoot, path, 'kustomization.yaml'), 'utf8');
  const depth = path.split('/').length - 1; // from kustomize/examples/install up to kustomize/
  const up = '../'.repeat(depth);
  const local = parse(text.replace(/https:\/\/github\.com\/[^/]+\/kube-ecrlogin\/\/kustomize\/([^?\s]+)\?ref=\S+/g, `${up}$1`)) as { components?: string[] };
  if (admission) local.components = [...(local.components ?? []), `${up}components/admission-policy`];
  return { [`${path}/kustomization.yaml`]: stringify(local) };
}

/** Puts this checkout's kustomize/ into the repository, with the local copy of `installPath`. */
export function seed(git: GitServer, installPath: string): void {
  git.copy(kustomizeRoot, 'kustomize');
  git.write(localInstall(installPath.replace(/^\.\//, '')));
}

/** The path an overlay's GitOps object syncs (spec.path of flux_kustomization.yaml, spec.source.path of application.yaml). */
export function overlayPath(file: 'flux/flux_kustomization.yaml' | 'argocd/application.yaml'): string {
  const object = parse(readFileSync(join(kustomizeRoot, 'overlays', file), 'utf8')) as { spec: { path?: string; source?: { path?: string } } };
  const path = object.spec.path ?? object.spec.source?.path;
  if (path === undefined) throw new Error(`no path in overlays/${file}`);
  return path;
}

export interface TenantRevision {
  /** tenant-a's Namespace asks for credentials (ecr-login/server, for ServiceAccounts app and builder). */
  readonly namespaceAnnotated: boolean;
  /** ServiceAccount tenant-b/ci asks for its own credentials; Git lists its Secret. */
  readonly ciAnnotated: boolean;
  /** imagePullSecrets Git declares on tenant-a/builder. */
  readonly builderList: readonly string[];
  /** A label Git declares, changed between commits. */
  readonly revision: string;
  /** ServiceAccount tenant-b/extra is in Git. */
  readonly extra: boolean;
  /** tenant-c: an annotated Namespace and a Deployment in one commit. */
  readonly tenantC: boolean;
}

export function tenantFiles(r: TenantRevision): Record<string, string | null> {
  const a = [
    doc({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'tenant-a',
        labels: { team: 'a' },
        ...(r.namespaceAnnotated ? { annotations: { 'ecr-login/server': east, 'ecr-login/service-accounts': 'app,builder' } } : {}),
      },
    }),
    // Git does not declare imagePullSecrets: the controller's entry is not Flux's business.
    doc({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: 'tenant-a', labels: { team: 'a' } } }),
    // Git declares a list: the tenants Kustomization's spec.ignore keeps Flux off it.
    doc({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'builder', namespace: 'tenant-a', labels: { team: 'a', revision: r.revision } },
      imagePullSecrets: r.builderList.map((name) => ({ name })),
    }),
  ];
  const b = [
    doc({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tenant-b', labels: { team: 'b' } } }),
    // Git lists the Secret the controller keeps for this ServiceAccount: it never writes the ServiceAccount.
    doc({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'ci', namespace: 'tenant-b', ...(r.ciAnnotated ? { annotations: { 'ecr-login/server': west } } : {}) },
      imagePullSecrets: [{ name: 'ecr-login-ci' }],
    }),
    ...(r.extra ? [doc({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'extra', namespace: 'tenant-b' } })] : []),
  ];
  const c = [
    doc({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tenant-c', annotations: { 'ecr-login/server': east } } }),
    doc({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'tenant-c' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: `${east}/web:1` }] } },
      },
    }),
  ];
  return {
    'tenants/tenant-a.yaml': a.join('---\n'),
    'tenants/tenant-b.yaml': b.join('---\n'),
    'tenants/tenant-c.yaml': r.tenantC ? c.join('---\n') : null,
    'tenants/kustomization.yaml': doc({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: ['tenant-a.yaml', 'tenant-b.yaml', ...(r.tenantC ? ['tenant-c.yaml'] : [])],
    }),
  };
}

/**
 * The controller as a process on this machine (no image can run here), with what the engine applied:
 * the arguments of the Deployment in the cluster (bind addresses on loopback instead of the Pod's
 * ports), its namespace as POD_NAMESPACE, and a token of the ServiceAccount the manifests created.
 */
export async function startController(plane: ControlPlane, dir: string, aws: AwsTestServer): Promise<Replica> {
  const deployment = await plane.adminConfig().makeApiClient(k8s.AppsV1Api).readNamespacedDeployment({ namespace: 'kube-ecrlogin', name: 'kube-ecrlogin' });
  assert.equal(deployment.spec?.replicas, 0, 'the engine applied the 0-replica patch');
  const args = deployment.spec?.template.spec?.containers[0]?.args ?? [];
  assert.equal(args[0], 'run');
  if (admission) assert.ok(args.includes('--admission-params=kube-ecrlogin-admission'), 'the admission-policy component is in');
  const local = args.slice(1).map((arg) => arg.replace(/^(--(?:metrics|health-probe)-bind-address)=.*$/, '$1=0'));
  const kubeconfig = plane.writeKubeconfig(await plane.serviceAccountConfig('kube-ecrlogin', 'kube-ecrlogin'), join(dir, 'controller.kubeconfig'));
  const controller = new Replica({
    name: 'kube-ecrlogin-local',
    args: local,
    env: {
      KUBECONFIG: kubeconfig,
      POD_NAMESPACE: 'kube-ecrlogin',
      AWS_ENDPOINT_URL: aws.endpoint,
      AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    logFile: join(dir, 'controller.log'),
  });
  controller.start();
  return controller;
}
