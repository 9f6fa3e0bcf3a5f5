// Helpers for the manifest tests: render kustomizations with `kubectl kustomize`, wrap them in a
// throw-away kustomization (another namespace, extra components), apply them with kubectl against the
// shared control plane, install third-party CRDs, and give cluster-scoped objects test-unique names.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { repoRoot } from '../cluster/controlplane.ts';
import { cluster } from '../support/cluster.ts';

export const kustomizeRoot = join(repoRoot, 'kustomize');
/** Upstream CRDs (Argo CD, Flux, Prometheus Operator), beside the project as ../shared/crds. */
export const crdDir = process.env['KUBE_ECRLOGIN_CRD_DIR'] ?? join(repoRoot, '..', 'shared', 'crds');

/** A rendered object, as plain data. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Run as this user and group (needs root). */
  readonly uid?: number;
  readonly gid?: number;
}

/** Runs a command to completion; never throws for a non-zero exit. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.gid !== undefined ? { gid: options.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    // A command that exits without reading its input (`jq --version`) closes the pipe first: EPIPE
    // then says nothing about the command, whose exit code and output still decide.
    child.stdin.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') reject(error);
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Like run(), but rejects with stderr on a non-zero exit. */
export async function runOk(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}

/** `kubectl kustomize DIR` as YAML text. */
export function kustomizeText(dir: string): Promise<string> {
  return runOk('kubectl', ['kustomize', dir]);
}

/** `kubectl kustomize DIR` as objects. */
export async function kustomize(dir: string): Promise<Manifest[]> {
  return parseManifests(await kustomizeText(dir));
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((object): object is Manifest => object !== null);
}

export function toYaml(objects: readonly Manifest[]): string {
  return objects.map((object) => stringify(object)).join('---\n');
}

/** Directories under kustomize/ holding a kustomization.yaml, relative to kustomize/. */
export const kustomizations = {
  base: ['base'],
  components: [
    'irsa',
    'pod-identity',
    'static-credentials',
    'keyless-tenants',
    'cronjob',
    'high-availability',
    'prometheus',
    'admission-policy',
    'admission-webhook',
    'guard-rails',
  ].map((c) => `components/${c}`),
  overlays: ['default', 'seed-compatible', 'argocd', 'flux'].map((o) => `overlays/${o}`),
} as const;

export function find(objects: readonly Manifest[], kind: string, name?: string): Manifest {
  const found = objects.find((object) => object.kind === kind && (name === undefined || object.metadata.name === name));
  if (found === undefined)
    throw new Error(`no ${kind}${name !== undefined ? ` ${name}` : ''} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

/** A kustomization in a temporary directory, referring to kustomize/ through a symlink. */
export class Scratch {
  readonly dir: string;

  constructor(prefix = 'kube-ecrlogin-kustomize-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    symlinkSync(kustomizeRoot, join(this.dir, 'kustomize'));
  }

  /** Writes DIR/kustomization.yaml (DIR under the scratch directory) and returns DIR. */
  kustomization(name: string, content: Record<string, unknown>): string {
    const dir = join(this.dir, name);
    mkdirSync(dir, { recursive: true });
    const rel = (path: string): string => (path.startsWith('kustomize/') ? `../${path}` : path);
    const body: Record<string, unknown> = { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', ...content };
    for (const key of ['resources', 'components'] as const) {
      const list = body[key];
      if (Array.isArray(list)) body[key] = (list as unknown[]).map((entry) => (typeof entry === 'string' ? rel(entry) : entry));
    }
    writeFileSync(join(dir, 'kustomization.yaml'), stringify(body));
    return dir;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A kustomization that puts `source` (a path under kustomize/) into another namespace, the way the
 * seed-compatible README tells users to: kustomize's NamespaceTransformer with every ServiceAccount
 * subject of (Cluster)RoleBindings moved too.
 */
export function inNamespace(scratch: Scratch, name: string, namespace: string, source: string, components: readonly string[] = []): string {
  return scratch.kustomization(name, {
    resources: [`kustomize/${source}`],
    ...(components.length > 0 ? { components: components.map((c) => `kustomize/${c}`) } : {}),
    transformers: [
      stringify({
        apiVersion: 'builtin',
        kind: 'NamespaceTransformer',
        metadata: { name: 'namespace', namespace },
        setRoleBindingSubjects: 'allServiceAccounts',
        unsetOnly: false,
      }),
    ],
  });
}

/** Cluster-scoped kinds the manifests hold; each gets a test-unique name from isolateClusterScoped. */
const renamed = new Set([
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingAdmissionPolicy',
  'MutatingAdmissionPolicyBinding',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'MutatingWebhookConfiguration',
]);
const clusterScoped = new Set([...renamed, 'Namespace', 'CustomResourceDefinition']);

/**
 * Gives cluster-scoped objects (roles, admission policies and their bindings) a test-unique name, and
 * fixes the references to them (roleRef, policyName), so tests never clash.
 */
export function isolateClusterScoped(objects: readonly Manifest[], suffix: string): Manifest[] {
  return objects.map((object) => {
    const copy = structuredClone(object);
    if (renamed.has(copy.kind)) copy.metadata.name = `${copy.metadata.name}-${suffix}`;
    const roleRef = copy['roleRef'] as { kind?: string; name?: string } | undefined;
    if (roleRef?.kind === 'ClusterRole' && roleRef.name !== undefined) roleRef.name = `${roleRef.name}-${suffix}`;
    const spec = copy['spec'] as { policyName?: string } | undefined;
    if (copy.kind.endsWith('AdmissionPolicyBinding') && spec?.policyName !== undefined) spec.policyName = `${spec.policyName}-${suffix}`;
    return copy;
  });
}

export function isNamespaced(object: Manifest): boolean {
  return !clusterScoped.has(object.kind);
}

/** Paths of kubeconfig files and a kubectl discovery cache private to this process. */
function kubectlFiles(): { kubeconfig: string; cacheDir: string } {
  kubectlFilesCache ??= (() => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-kubectl-'));
    const kubeconfig = cluster().writeKubeconfig(cluster().adminConfig(), join(dir, 'admin.kubeconfig'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return { kubeconfig, cacheDir: join(dir, 'cache') };
  })();
  return kubectlFilesCache;
}
let kubectlFilesCache: { kubeconfig: string; cacheDir: string } | undefined;

/** kubectl as the control plane's admin. */
export function kubectl(args: readonly string[], input?: string): Promise<RunResult> {
  const { kubeconfig, cacheDir } = kubectlFiles();
  return run('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args], input !== undefined ? { input } : {});
}

export interface ApplyOptions {
  readonly dryRun?: boolean;
  readonly fieldManager?: string;
  readonly namespace?: string;
}

/** `kubectl apply --server-side` of objects; rejects with kubectl's message on failure. Returns stderr (warnings). */
export async function apply(objects: readonly Manifest[], options: ApplyOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const args = ['apply', '--server-side', '--force-conflicts', `--field-manager=${options.fieldManager ?? 'kube-ecrlogin-tests'}`, '-f', '-'];
  if (options.dryRun) args.push('--dry-run=server');
  if (options.namespace !== undefined) args.push('--namespace', options.namespace);
  const result = await kubectl(args, toYaml(objects));
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed:\n${result.stderr}`);
  return { stdout: result.stdout, stderr: result.stderr };
}

const crdFiles = [
  'argocd-applications.yaml',
  'argocd-appprojects.yaml',
  'flux-gitrepositories.yaml',
  'flux-kustomizations.yaml',
  'flux-ocirepositories.yaml',
  'prometheus-operator-servicemonitors.yaml',
  'prometheus-operator-podmonitors.yaml',
  'prometheus-operator-prometheusrules.yaml',
];

/**
 * Installs the Argo CD, Flux and Prometheus Operator CRDs from ../shared/crds and waits until they
 * serve. Idempotent and safe when several test files do it at once: Server-Side Apply of the same
 * content by the same field manager converges, and a conflict is retried.
 */
export async function installCrds(): Promise<void> {
  const args = [
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=kube-ecrlogin-tests-crds',
    ...crdFiles.flatMap((file) => ['-f', join(crdDir, file)]),
  ];
  for (let attempt = 1; ; attempt++) {
    const result = await kubectl(args);
    if (result.code === 0) break;
    if (attempt >= 5) throw new Error(`installing CRDs failed: ${result.stderr}`);
    await sleep(200 * attempt);
  }
  const names = crdFiles.map((file) => {
    const crd = parseManifests(readCrd(file))[0];
    if (crd === undefined) throw new Error(`no CRD in ${file}`);
    return `crd/${crd.metadata.name}`;
  });
  const waited = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...names]);
  if (waited.code !== 0) throw new Error(`CRDs not established: ${waited.stderr}`);
}

function readCrd(file: string): string {
  return readFileSync(join(crdDir, file), 'utf8');
}

/** Creates a namespace (as admin) and returns its name. */
export async function createNamespace(name: string, labels: Record<string, string> = {}): Promise<string> {
  await core().createNamespace({ body: { metadata: { name, labels } } });
  return name;
}

const admissionKinds = new Set([...renamed].filter((kind) => !kind.startsWith('Cluster')));

async function deleteClusterScoped(kind: string, name: string): Promise<void> {
  const client = k8s.KubernetesObjectApi.makeApiClient(cluster().adminConfig());
  await client.delete({ apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata: { name } });
}

/** Deletes namespaces and cluster-scoped objects a test created; ignores what is already gone. */
export async function cleanUp(objects: readonly { kind: string; name: string }[]): Promise<void> {
  const rbac = cluster().adminConfig().makeApiClient(k8s.RbacAuthorizationV1Api);
  for (const { kind, name } of objects) {
    try {
      if (kind === 'Namespace') await core().deleteNamespace({ name });
      else if (kind === 'ClusterRole') await rbac.deleteClusterRole({ name });
      else if (kind === 'ClusterRoleBinding') await rbac.deleteClusterRoleBinding({ name });
      else if (admissionKinds.has(kind)) await deleteClusterScoped(kind, name);
    } catch (error) {
      if (!(error instanceof k8s.ApiException && error.code === 404)) throw error;
    }
  }
}

export function core(): k8s.CoreV1Api {
  return cluster().adminConfig().makeApiClient(k8s.CoreV1Api);
}

/** The container of a Deployment's or CronJob's Pod template. */
export function podSpecOf(workload: Manifest): PodSpec {
  const spec = workload['spec'] as Record<string, unknown>;
  if (workload.kind === 'Deployment') return (spec['template'] as { spec: PodSpec }).spec;
  if (workload.kind === 'CronJob') return (spec['jobTemplate'] as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
  throw new Error(`${workload.kind} has no Pod template here`);
}

export function podTemplateOf(workload: Manifest): { metadata?: { labels?: Record<string, string> }; spec: PodSpec } {
  const spec = workload['spec'] as Record<string, unknown>;
  if (workload.kind === 'Deployment') return spec['template'] as { spec: PodSpec };
  return (spec['jobTemplate'] as { spec: { template: { spec: PodSpec } } }).spec.template;
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: { secretRef?: { name: string } }[];
  securityContext?: Record<string, unknown>;
  resources?: Record<string, unknown>;
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
}

export interface PodSpec {
  serviceAccountName?: string;
  securityContext?: Record<string, unknown>;
  containers: Container[];
  restartPolicy?: string;
  affinity?: unknown;
  [field: string]: unknown;
}

export function containerOf(workload: Manifest): Container {
  const container = podSpecOf(workload).containers[0];
  if (container === undefined) throw new Error(`${workload.kind}/${workload.metadata.name} has no container`);
  return container;
}

/** Expands $(VAR) in container args from its env values, as the kubelet does. */
export function expandArgs(args: readonly string[], env: Readonly<Record<string, string>>): string[] {
  return args.map((arg) => arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole));
}

/** The controller's RBAC from a kustomization, installed for real under test-unique names. */
export interface InstalledController {
  /** The controller's own namespace (ServiceAccount, Role, ConfigMap). */
  readonly namespace: string;
  /** Everything rendered, cluster-scoped names made unique. */
  readonly objects: readonly Manifest[];
  /** What was applied. */
  readonly applied: readonly Manifest[];
  /** The Kubernetes user the controller is: system:serviceaccount:<namespace>:kube-ecrlogin. */
  readonly user: string;
  /** A KubeConfig with a fresh TokenRequest token of that ServiceAccount. */
  readonly kubeConfig: k8s.KubeConfig;
  /** Namespaces and cluster-scoped objects to remove afterwards. */
  readonly created: readonly { kind: string; name: string }[];
}

const installKinds = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ConfigMap']);

/**
 * Renders `source` (+ components) into `namespace` as the seed-compatible README says to, renames the
 * ClusterRoles and ClusterRoleBindings with `suffix`, creates the namespace (with `labels`) and applies
 * the ServiceAccount, RBAC and ConfigMap for real (plus `extraKinds`), then logs in as that ServiceAccount.
 */
export async function installController(
  scratch: Scratch,
  options: {
    namespace: string;
    suffix: string;
    source?: string;
    components?: readonly string[];
    labels?: Record<string, string>;
    extraKinds?: readonly string[];
    /** Changes the rendered objects before they are applied (e.g. an admission binding's selector). */
    edit?: (objects: Manifest[]) => Manifest[];
  },
): Promise<InstalledController> {
  const { namespace, suffix } = options;
  const rendered = await kustomize(inNamespace(scratch, `install-${suffix}`, namespace, options.source ?? 'base', options.components ?? []));
  const isolated = isolateClusterScoped(rendered, suffix);
  const objects = options.edit?.(isolated) ?? isolated;
  await createNamespace(namespace, options.labels ?? {});
  const kinds = new Set([...installKinds, ...(options.extraKinds ?? [])]);
  const applied = objects.filter((object) => kinds.has(object.kind));
  await apply(applied);
  const created = [
    { kind: 'Namespace', name: namespace },
    ...applied.filter((object) => !isNamespaced(object)).map((object) => ({ kind: object.kind, name: object.metadata.name })),
  ];
  const kubeConfig = await cluster().serviceAccountConfig(namespace, 'kube-ecrlogin');
  return { namespace, objects, applied, user: `system:serviceaccount:${namespace}:kube-ecrlogin`, kubeConfig, created };
}
