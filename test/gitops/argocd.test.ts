// Argo CD itself, not a replay of its field manager: argocd-application-controller and
// argocd-repo-server (built from the Argo CD module, argocd.ts), with Redis from Debian, sync this
// project's kustomize/overlays/argocd and tenant manifests from a Git repository served on loopback
// into a private control plane, while the real controller runs beside them as a process with the
// ServiceAccount that Argo CD created for it. The same scenario as flux.test.ts.
//
// The repository (repository.ts): this checkout's kustomize/, the copy of kustomize/examples/install
// that the overlay's Application syncs (local bases, the admission-policy component), and
// clusters/argocd/: the overlay's Application (patched only for the local URL and branch, and 0
// replicas, since no image can run here) and an Application `tenants` for tenants/ with the overlay's
// ServiceAccount ignoreDifferences entry and sync options (RespectIgnoreDifferences=true,
// ServerSideApply=true, automated with prune and self-heal) copied into it, as its README says. Argo
// CD is bootstrapped as an app of apps: an Application `root` for clusters/argocd.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { defaultUsers, repoRoot, startControlPlane, type ControlPlane } from '../cluster/controlplane.ts';
import { start as startAws, type AwsTestServer } from '../aws/server.ts';
import type { Replica } from '../chaos/replicas.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { pullSecretNames } from '../support/objects.ts';
import { kustomizeRoot, type RunResult } from '../kustomize/support.ts';
import { argocdCrdFiles, argocdUsers, argocdVersion, ensureArgocdBinaries, redisServer, startArgocd, type Argocd } from './argocd.ts';
import { customObjects, dryRuns, installCrds, kubectlFor, realWrites, type CountedWrite, type Kind } from './cluster.ts';
import { startGitServer, type GitServer } from './git-server.ts';
import { admission, controllerUser, doc, overlayPath, seed, startController, tenantFiles } from './repository.ts';

const argocdUser = 'argocd-application-controller';
/** Argo CD's own objects (their status) and Events: not writes to what Git declares. */
const argocdOwn = ['applications', 'appprojects', 'applicationsets', 'events'];
const resyncSeconds = 5;
const applications = ['root', 'kube-ecrlogin', 'tenants'] as const;
const applicationKind: Kind = { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' };

interface Application {
  readonly metadata: { readonly name: string };
  readonly status?: {
    readonly sync?: { readonly status?: string; readonly revision?: string };
    readonly health?: { readonly status?: string };
    readonly operationState?: { readonly phase?: string; readonly message?: string };
    readonly conditions?: readonly { readonly type: string; readonly message?: string }[];
    readonly resources?: readonly { readonly kind: string; readonly name: string; readonly namespace?: string; readonly status?: string }[];
    readonly reconciledAt?: string;
  };
}

/** clusters/argocd: the argocd overlay as a user would patch it, and the tenants' Application. */
function clusterFiles(url: string): Record<string, string> {
  const overlay = parse(readFileSync(join(kustomizeRoot, 'overlays', 'argocd', 'application.yaml'), 'utf8')) as {
    spec: { ignoreDifferences: { kind: string }[]; syncPolicy: unknown };
  };
  const json6902 = (ops: readonly Record<string, unknown>[]): string => stringify(ops);
  return {
    'clusters/argocd/kustomization.yaml': stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: ['../../kustomize/overlays/argocd', 'tenants.yaml'],
      patches: [
        {
          target: { kind: 'Application', name: 'kube-ecrlogin' },
          patch: json6902([
            { op: 'replace', path: '/spec/source/repoURL', value: url },
            { op: 'replace', path: '/spec/source/targetRevision', value: 'main' },
            // No image can be pulled here: the Deployment is kept at 0 replicas and the controller runs
            // as a process with its ServiceAccount's credentials.
            {
              op: 'add',
              path: '/spec/source/kustomize',
              value: {
                patches: [{ target: { kind: 'Deployment', name: 'kube-ecrlogin' }, patch: json6902([{ op: 'replace', path: '/spec/replicas', value: 0 }]) }],
              },
            },
          ]),
        },
      ],
    }),
    'clusters/argocd/tenants.yaml': stringify({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: 'tenants', namespace: 'argocd' },
      spec: {
        project: 'default',
        source: { repoURL: url, targetRevision: 'main', path: 'tenants' },
        destination: { server: 'https://kubernetes.default.svc', namespace: 'default' },
        // The overlay's block for ServiceAccounts, copied as its README tells users to.
        ignoreDifferences: overlay.spec.ignoreDifferences.filter((entry) => entry.kind === 'ServiceAccount'),
        syncPolicy: overlay.spec.syncPolicy,
      },
    }),
  };
}

// Redis comes from Debian (make argocd installs it as root); without it the suite says so and skips.
const skip = redisServer() === undefined ? 'redis-server is not installed (test/gitops/argocd/install-redis.sh, as root)' : false;

describe(`Argo CD ${argocdVersion()} (application controller, repo server) syncs kube-ecrlogin and its tenants from Git`, { skip }, () => {
  let dir: string;
  let plane: ControlPlane;
  let argocd: Argocd;
  let git: GitServer;
  let aws: AwsTestServer;
  let controller: Replica | undefined;
  let kubectl: (args: readonly string[], input?: string) => Promise<RunResult>;
  let core: k8s.CoreV1Api;
  let started: Date;
  let revision = '';

  const kubectlOk = async (args: readonly string[], input?: string): Promise<string> => {
    const result = await kubectl(args, input);
    if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };

  before(async () => {
    const bin = ensureArgocdBinaries();
    dir = `${process.env['KUBE_ECRLOGIN_CLUSTER_DIR'] ?? join(repoRoot, '.cache', 'test', 'cluster')}-gitops-argocd`;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    plane = await startControlPlane({ dir: join(dir, 'cluster'), users: [...defaultUsers, ...argocdUsers] });
    core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
    kubectl = kubectlFor(plane, dir);
    await installCrds(kubectl, argocdCrdFiles(), 'argocd-install');
    argocd = await startArgocd({ plane, dir: join(dir, 'argocd'), namespace: 'argocd', bin, resyncSeconds });

    aws = await startAws();
    aws.addUser(controllerKeys);

    git = await startGitServer();
    seed(git, overlayPath('argocd/application.yaml'));
    git.write(clusterFiles(git.url));
    git.write(tenantFiles({ namespaceAnnotated: true, ciAnnotated: true, builderList: ['dockerhub'], revision: '1', extra: true, tenantC: false }));
    revision = git.commit('kube-ecrlogin and tenants');

    started = new Date();
    // Bootstrap: an app of apps for clusters/argocd.
    await kubectlOk(
      ['apply', '--server-side', '--field-manager=argocd-bootstrap', '-f', '-'],
      doc({
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name: 'root', namespace: 'argocd' },
        spec: {
          project: 'default',
          source: { repoURL: git.url, targetRevision: 'main', path: 'clusters/argocd' },
          destination: { server: 'https://kubernetes.default.svc', namespace: 'argocd' },
          syncPolicy: { automated: { prune: true, selfHeal: true } },
        },
      }),
    );
  });

  after(async () => {
    await controller?.stop();
    await argocd?.stop();
    await git?.close();
    await aws?.close();
    await plane?.stop();
  });

  const readApp = async (name: string): Promise<Application> =>
    (await customObjects(plane).getNamespacedCustomObject({ ...applicationKind, namespace: 'argocd', name })) as Application;

  const assertSynced = (app: Application, commit: string, healthy: boolean): void => {
    const detail = `${app.metadata.name}: sync ${app.status?.sync?.status ?? '-'} at ${app.status?.sync?.revision ?? '-'}, health ${app.status?.health?.status ?? '-'}, operation ${app.status?.operationState?.phase ?? '-'} ${app.status?.operationState?.message ?? ''}, conditions ${JSON.stringify(app.status?.conditions ?? [])}`;
    assert.equal(app.status?.sync?.status, 'Synced', detail);
    assert.equal(app.status?.sync?.revision, commit, detail);
    // The last sync succeeded (an Application whose manifests a commit did not change is not synced again).
    assert.equal(app.status?.operationState?.phase, 'Succeeded', detail);
    if (healthy) assert.equal(app.status?.health?.status, 'Healthy', detail);
  };

  /** Every Application synced the commit and is Synced (and Healthy, but for tenants once tenant-c's Pod, which no kubelet runs, is in). */
  const synced = async (commit: string, tenantsHealthy = true): Promise<void> => {
    for (const name of applications) {
      await eventually(`Application ${name} Synced at ${commit}`, async () => assertSynced(await readApp(name), commit, name !== 'tenants' || tenantsHealthy), {
        timeoutMs: 180_000,
        intervalMs: 250,
      });
    }
  };

  /** Asks Argo CD to look at Git now (what a webhook or `argocd app get --refresh` does). */
  const refresh = async (name: string): Promise<void> => {
    await customObjects(plane).patchNamespacedCustomObject(
      { ...applicationKind, namespace: 'argocd', name, body: { metadata: { annotations: { 'argocd.argoproj.io/refresh': 'normal' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  };

  /** Reconciliations of an Application that completed since a time, from the application controller's log. */
  const completedReconciles = (name: string, since: Date): number =>
    readFileSync(argocd.logs['application-controller'], 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{') && line.includes('Reconciliation completed'))
      .map((line) => JSON.parse(line) as { msg?: string; application?: string; time?: string })
      .filter((line) => line.msg === 'Reconciliation completed' && line.application === name)
      .filter((line) => line.time !== undefined && new Date(line.time) >= since).length;

  const serviceAccount = (namespace: string, name: string): Promise<k8s.V1ServiceAccount> => core.readNamespacedServiceAccount({ namespace, name });
  const entries = async (namespace: string, name: string): Promise<string[]> => pullSecretNames(await serviceAccount(namespace, name));
  const absent = async (read: () => Promise<unknown>): Promise<void> => {
    try {
      await read();
    } catch (error) {
      if (error instanceof k8s.ApiException && error.code === 404) return;
      throw error;
    }
    throw new Error('still there');
  };

  const snapshot = async (secrets: readonly [string, string][], accounts: readonly [string, string][]): Promise<unknown> => ({
    secrets: await Promise.all(
      secrets.map(async ([namespace, name]) => {
        const secret = await core.readNamespacedSecret({ namespace, name });
        return { namespace, name, uid: secret.metadata?.uid, resourceVersion: secret.metadata?.resourceVersion };
      }),
    ),
    accounts: await Promise.all(
      accounts.map(async ([namespace, name]) => {
        const sa = await serviceAccount(namespace, name);
        return { namespace, name, imagePullSecrets: pullSecretNames(sa), resourceVersion: sa.metadata?.resourceVersion };
      }),
    ),
  });

  /** A steady window: at least `reconciles` completed reconciliations of every Application (each a comparison of Git with the cluster), then the writes in it. */
  const steadyWindow = async (
    reconciles: number,
    commit: string,
    tenantsHealthy: boolean,
  ): Promise<{ argocd: CountedWrite[]; controller: CountedWrite[]; dryRuns: number; ms: number }> => {
    await plane.auditCaughtUp();
    const since = new Date();
    await eventually(
      `${reconciles} reconciliations of every Application`,
      () => {
        for (const name of applications) assert.ok(completedReconciles(name, since) >= reconciles, `${name}: ${completedReconciles(name, since)}`);
        return Promise.resolve();
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    for (const name of applications) assertSynced(await readApp(name), commit, name !== 'tenants' || tenantsHealthy);
    await plane.auditCaughtUp();
    return {
      argocd: realWrites(plane, argocdUser, since, argocdOwn),
      controller: realWrites(plane, controllerUser, since),
      dryRuns: dryRuns(plane, argocdUser, since),
      ms: Date.now() - since.getTime(),
    };
  };

  const managed = async (): Promise<string[]> => {
    const ids: string[] = [];
    for (const name of applications) ids.push(...((await readApp(name)).status?.resources ?? []).map((r) => `${r.kind} ${r.namespace ?? ''}/${r.name}`));
    return ids;
  };

  it('syncs kustomize/overlays/argocd and, from it, the controller manifests: every Application Synced and Healthy', async () => {
    await synced(revision);
    const ids = await managed();
    for (const id of ['ServiceAccount kube-ecrlogin/kube-ecrlogin', 'Deployment kube-ecrlogin/kube-ecrlogin', 'Application argocd/kube-ecrlogin'])
      assert.ok(ids.includes(id), `${id} in an Application`);
    if (admission) assert.ok(ids.includes('MutatingAdmissionPolicy /kube-ecrlogin-pull-secret'), ids.join(', '));
    process.stderr.write(`argocd: first sync Synced in ${Date.now() - started.getTime()} ms\n`);
  });

  it("the controller, run with the ServiceAccount Argo CD created and the Deployment's arguments, serves the tenants", async () => {
    controller = await startController(plane, dir, aws);
    await eventually(
      'the tenants served',
      async () => {
        await core.readNamespacedSecret({ namespace: 'tenant-a', name: 'ecr-login' });
        await core.readNamespacedSecret({ namespace: 'tenant-b', name: 'ecr-login-ci' });
        assert.deepEqual(await entries('tenant-a', 'app'), ['ecr-login'], 'appended where Git declares no list');
        assert.deepEqual(await entries('tenant-a', 'builder'), ['dockerhub', 'ecr-login'], 'appended to the list Git declares');
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    assert.deepEqual(await entries('tenant-b', 'ci'), ['ecr-login-ci']);
    await plane.auditCaughtUp();
    const writes = realWrites(plane, controllerUser, started).filter((w) => w.resource === 'serviceaccounts');
    assert.deepEqual(
      writes.map((w) => `${w.namespace}/${w.name}`).sort(),
      ['tenant-a/app', 'tenant-a/builder'],
      'tenant-b/ci, whose list Git declares with the entry, is never written',
    );
  });

  it('steady: several reconciliations with self-heal, Synced, zero writes by Argo CD or the controller', async () => {
    const ours: [string, string][] = [
      ['tenant-a', 'ecr-login'],
      ['tenant-b', 'ecr-login-ci'],
    ];
    const accounts: [string, string][] = [
      ['tenant-a', 'app'],
      ['tenant-a', 'builder'],
      ['tenant-b', 'ci'],
    ];
    // The controller's writes (the entries) are not differences: every Application stays Synced.
    await synced(revision);
    const before = await snapshot(ours, accounts);
    const window = await steadyWindow(3, revision, true);
    process.stderr.write(`argocd: steady window ${window.ms} ms, ${window.dryRuns} dry-run writes by the application controller\n`);
    assert.deepEqual(window.argocd, [], 'Argo CD wrote nothing Git declares');
    assert.deepEqual(window.controller, [], 'the controller wrote nothing');
    assert.deepEqual(await snapshot(ours, accounts), before, 'Secrets and ServiceAccounts unchanged, to the resourceVersion');
    assert.deepEqual(
      (await managed()).filter((id) => id.startsWith('Secret ')),
      [],
      'no Secret in any Application',
    );
  });

  it("self-heal is on: a field Git declares, changed in the cluster, is put back; the controller's entry stays", async () => {
    await plane.auditCaughtUp();
    const since = new Date();
    await core.patchNamespacedServiceAccount(
      { namespace: 'tenant-a', name: 'app', body: { metadata: { labels: { team: 'someone-else' } } }, fieldManager: 'drift' },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually('Argo CD to put the label back', async () => assert.equal((await serviceAccount('tenant-a', 'app')).metadata?.labels?.['team'], 'a'), {
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    await synced(revision);
    assert.deepEqual(await entries('tenant-a', 'app'), ['ecr-login']);
    assert.deepEqual(await entries('tenant-a', 'builder'), ['dockerhub', 'ecr-login']);
    await plane.auditCaughtUp();
    const writes = realWrites(plane, argocdUser, since, argocdOwn).map((w) => `${w.verb} ${w.resource} ${w.namespace}/${w.name}`);
    assert.ok(writes.includes('patch serviceaccounts tenant-a/app'), writes.join(', '));
    assert.ok(!writes.some((w) => w.includes(' secrets ')), writes.join(', '));
    assert.deepEqual(realWrites(plane, controllerUser, since), [], 'the self-heal sync did not take the entries away');
  });

  it("a new commit is re-synced: changed objects applied, the entries kept, a new tenant's Pods get the pull Secret", async () => {
    const before = (await core.readNamespacedSecret({ namespace: 'tenant-a', name: 'ecr-login' })).metadata?.uid;
    await plane.auditCaughtUp();
    const since = new Date();
    git.write(tenantFiles({ namespaceAnnotated: true, ciAnnotated: true, builderList: ['dockerhub', 'quay'], revision: '2', extra: true, tenantC: true }));
    revision = git.commit('builder revision 2, tenant-c');
    for (const name of applications) await refresh(name);
    await synced(revision, false);
    assert.equal((await serviceAccount('tenant-a', 'builder')).metadata?.labels?.['revision'], '2');
    // RespectIgnoreDifferences=true: the sync sends the live value of the ignored list, so the entry
    // stays, and so Git's new entry (quay) does not reach a ServiceAccount that exists.
    assert.deepEqual(
      await entries('tenant-a', 'builder'),
      ['dockerhub', 'ecr-login'],
      "the sync kept the entry (RespectIgnoreDifferences), and left out Git's change",
    );
    assert.deepEqual(await entries('tenant-a', 'app'), ['ecr-login']);
    assert.equal((await core.readNamespacedSecret({ namespace: 'tenant-a', name: 'ecr-login' })).metadata?.uid, before);

    await eventually(
      'tenant-c served',
      async () => {
        await core.readNamespacedSecret({ namespace: 'tenant-c', name: 'ecr-login' });
        assert.deepEqual(await entries('tenant-c', 'default'), ['ecr-login']);
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    if (admission) {
      const pods = await eventually(
        "the Deployment's Pod",
        async () => {
          const list = await core.listNamespacedPod({ namespace: 'tenant-c', labelSelector: 'app=web' });
          assert.ok(list.items.length > 0);
          return list.items;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      for (const pod of pods)
        assert.deepEqual(
          (pod.spec?.imagePullSecrets ?? []).map((ref) => ref.name),
          ['ecr-login'],
          `${pod.metadata?.name ?? ''} got the pull Secret at creation`,
        );
    }
    await plane.auditCaughtUp();
    const applied = realWrites(plane, argocdUser, since, argocdOwn).map((w) => `${w.resource} ${w.namespace}/${w.name}`);
    assert.ok(applied.includes('serviceaccounts tenant-a/builder'), applied.join(', '));
    assert.ok(!applied.some((w) => w.startsWith('secrets ')), applied.join(', '));
    const controllerWrites = realWrites(plane, controllerUser, since).map((w) => `${w.resource} ${w.namespace}/${w.name}`);
    assert.ok(!controllerWrites.some((w) => w.includes('tenant-a/') || w.includes('tenant-b/')), `only tenant-c: ${controllerWrites.join(', ')}`);

    const window = await steadyWindow(2, revision, false);
    assert.deepEqual(window.argocd, []);
    assert.deepEqual(window.controller, []);
  });

  it('removing the annotations in Git removes only what the controller added; prune never deletes its Secrets', async () => {
    const tenantC = (await core.readNamespacedSecret({ namespace: 'tenant-c', name: 'ecr-login' })).metadata?.uid;
    await plane.auditCaughtUp();
    const since = new Date();
    git.write(tenantFiles({ namespaceAnnotated: false, ciAnnotated: false, builderList: ['dockerhub', 'quay'], revision: '2', extra: false, tenantC: true }));
    revision = git.commit('tenant-a and tenant-b/ci no longer ask for credentials; tenant-b/extra removed');
    for (const name of applications) await refresh(name);
    await synced(revision, false);

    await eventually('tenant-b/extra pruned', () => absent(() => serviceAccount('tenant-b', 'extra')), { timeoutMs: 60_000, intervalMs: 250 });
    await eventually(
      'what the controller added removed',
      async () => {
        await absent(() => core.readNamespacedSecret({ namespace: 'tenant-a', name: 'ecr-login' }));
        await absent(() => core.readNamespacedSecret({ namespace: 'tenant-b', name: 'ecr-login-ci' }));
        assert.deepEqual(await entries('tenant-a', 'app'), []);
        // Once the controller has taken its entry out, the list is a difference Argo CD no longer ignores,
        // and self-heal applies what Git declares now (quay included, held back while the entry was in).
        assert.deepEqual(await entries('tenant-a', 'builder'), ['dockerhub', 'quay'], "Git's list");
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    assert.deepEqual(await entries('tenant-b', 'ci'), ['ecr-login-ci'], "an entry Git declares is not the controller's to remove");
    assert.equal((await core.readNamespacedSecret({ namespace: 'tenant-c', name: 'ecr-login' })).metadata?.uid, tenantC, 'prune left the Secret in place');
    assert.equal((await core.readNamespace({ name: 'tenant-a' })).metadata?.annotations?.['ecr-login/server'], undefined);

    await plane.auditCaughtUp();
    const deletes = realWrites(plane, controllerUser, since)
      .filter((w) => w.verb === 'delete')
      .map((w) => `${w.resource} ${w.namespace}/${w.name}`);
    assert.deepEqual(deletes.sort(), ['secrets tenant-a/ecr-login', 'secrets tenant-b/ecr-login-ci']);
    const argocdDeletes = realWrites(plane, argocdUser, since, argocdOwn)
      .filter((w) => w.verb === 'delete')
      .map((w) => `${w.resource} ${w.namespace}/${w.name}`);
    assert.deepEqual(argocdDeletes, ['serviceaccounts tenant-b/extra']);
    assert.deepEqual(
      realWrites(plane, argocdUser, started).filter((w) => w.resource === 'secrets'),
      [],
      'over the whole run, Argo CD never wrote a Secret',
    );

    const window = await steadyWindow(2, revision, false);
    assert.deepEqual(window.argocd, []);
    assert.deepEqual(window.controller, []);
  });
});
