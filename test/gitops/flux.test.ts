// Flux itself, not a replay of its field manager: source-controller and kustomize-controller (built
// from their Go modules, flux.ts) sync this project's kustomize/overlays/flux and tenant manifests from
// a Git repository served on loopback (git-server.ts) into a private control plane, while the real
// controller runs beside them as a process with the ServiceAccount that Flux created for it.
//
// The repository (repository.ts) holds this checkout's kustomize/, with the copy of
// kustomize/examples/install that the overlay syncs naming this checkout's directories instead of the
// release tag on GitHub (no network here) and the admission-policy component added, and
// clusters/test/: the overlay (GitRepository and Kustomization `kube-ecrlogin`, patched only for the
// local URL, short intervals, and 0 replicas, since no image can run here) and a Kustomization
// `tenants` for tenants/, with the overlay's own `spec.ignore` block copied into it as the overlay's
// README says. Flux is bootstrapped the usual way: a GitRepository and Kustomization `flux-system`
// for clusters/test.
//
// Asserted, with writes counted from the audit log by user (Flux's controllers have users of their
// own; the server-side dry runs of Flux's drift check are counted apart):
//   - every Kustomization Ready at each commit, with drift correction working (a field Git declares,
//     changed in the cluster, is put back) and never touching the controller's fields;
//   - the controller's Secrets and imagePullSecrets entries survive every sync, unchanged;
//   - steady windows of several reconcile intervals: zero writes by Flux and by the controller;
//   - a new commit re-synced (a changed ServiceAccount, a new tenant with a Deployment: with the
//     admission component, its Pods get the pull Secret at creation); with spec.ignore, a change to a
//     list Git declares does not reach an existing ServiceAccount (Flux keeps the live list);
//   - an annotation removed in Git removes only what the controller added;
//   - prune: true prunes what left Git, never the controller's Secrets.

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
import {
  condition,
  customObjects,
  dryRuns,
  fluxKinds,
  installCrds,
  kubectlFor,
  readCustom,
  realWrites,
  type CountedWrite,
  type CustomObject,
} from './cluster.ts';
import { ensureFluxBinaries, fluxCrdFiles, fluxUsers, fluxVersions, startFlux, type Flux } from './flux.ts';
import { startGitServer, type GitServer } from './git-server.ts';
import { admission, controllerUser, doc, overlayPath, seed, startController, tenantFiles } from './repository.ts';

const kustomizeUser = 'flux-kustomize-controller';
const sourceUser = 'flux-source-controller';
/** Flux's own objects (their status) and Events: not writes to what Git declares. */
const fluxOwn = ['kustomizations', 'gitrepositories', 'ocirepositories', 'buckets', 'helmrepositories', 'helmcharts', 'externalartifacts', 'events'];
const interval = '5s';
const kustomizations = ['flux-system', 'kube-ecrlogin', 'tenants'] as const;
const gitRepositories = ['flux-system', 'kube-ecrlogin'] as const;

/** clusters/test: the flux overlay as a user would patch it, and the tenants' Kustomization. */
function clusterFiles(url: string): Record<string, string> {
  // The overlay's spec.ignore block, copied as its README tells users to.
  const overlay = parse(readFileSync(join(kustomizeRoot, 'overlays', 'flux', 'flux_kustomization.yaml'), 'utf8')) as { spec: { ignore: unknown } };
  const json6902 = (ops: readonly Record<string, unknown>[]): string => stringify(ops);
  return {
    'clusters/test/kustomization.yaml': stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: ['../../kustomize/overlays/flux', 'tenants.yaml'],
      patches: [
        {
          target: { kind: 'GitRepository', name: 'kube-ecrlogin' },
          patch: json6902([
            { op: 'replace', path: '/spec/url', value: url },
            { op: 'replace', path: '/spec/ref', value: { branch: 'main' } },
            { op: 'replace', path: '/spec/interval', value: interval },
          ]),
        },
        {
          target: { kind: 'Kustomization', name: 'kube-ecrlogin' },
          patch: json6902([
            { op: 'replace', path: '/spec/interval', value: interval },
            { op: 'replace', path: '/spec/retryInterval', value: interval },
            { op: 'replace', path: '/spec/timeout', value: '1m' },
            // No image can be pulled here: the Deployment is kept at 0 replicas and the controller runs
            // as a process with its ServiceAccount's credentials.
            {
              op: 'add',
              path: '/spec/patches',
              value: [{ target: { kind: 'Deployment', name: 'kube-ecrlogin' }, patch: json6902([{ op: 'replace', path: '/spec/replicas', value: 0 }]) }],
            },
          ]),
        },
      ],
    }),
    'clusters/test/tenants.yaml': stringify({
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name: 'tenants', namespace: 'flux-system' },
      spec: {
        interval,
        retryInterval: interval,
        timeout: '1m',
        sourceRef: { kind: 'GitRepository', name: 'flux-system' },
        path: './tenants',
        prune: true,
        ignore: overlay.spec.ignore,
      },
    }),
  };
}

describe(`Flux (source-controller ${fluxVersions().sourceController}, kustomize-controller ${fluxVersions().kustomizeController}) syncs kube-ecrlogin and its tenants from Git`, () => {
  let dir: string;
  let plane: ControlPlane;
  let flux: Flux;
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
    const bin = ensureFluxBinaries();
    dir = `${process.env['KUBE_ECRLOGIN_CLUSTER_DIR'] ?? join(repoRoot, '.cache', 'test', 'cluster')}-gitops-flux`;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    // A control plane of its own: the overlay installs fixed names (namespace kube-ecrlogin, its
    // ClusterRoles, admission policies) and Flux watches every namespace.
    plane = await startControlPlane({ dir: join(dir, 'cluster'), users: [...defaultUsers, ...fluxUsers] });
    core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
    kubectl = kubectlFor(plane, dir);
    await installCrds(kubectl, fluxCrdFiles(bin), 'flux-install');
    await kubectlOk(['create', 'namespace', 'flux-system']);
    flux = await startFlux({ plane, dir: join(dir, 'flux'), namespace: 'flux-system', bin });

    aws = await startAws();
    aws.addUser(controllerKeys);

    git = await startGitServer();
    seed(git, overlayPath('flux/flux_kustomization.yaml'));
    git.write(clusterFiles(git.url));
    git.write(tenantFiles({ namespaceAnnotated: true, ciAnnotated: true, builderList: ['dockerhub'], revision: '1', extra: true, tenantC: false }));
    revision = git.commit('kube-ecrlogin and tenants');

    started = new Date();
    // Bootstrap, as `flux bootstrap` leaves it: Flux syncs clusters/test from the repository.
    await kubectlOk(
      ['apply', '--server-side', '--field-manager=flux-bootstrap', '-f', '-'],
      [
        doc({
          apiVersion: 'source.toolkit.fluxcd.io/v1',
          kind: 'GitRepository',
          metadata: { name: 'flux-system', namespace: 'flux-system' },
          spec: { interval, url: git.url, ref: { branch: 'main' } },
        }),
        doc({
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name: 'flux-system', namespace: 'flux-system' },
          spec: {
            interval,
            retryInterval: interval,
            timeout: '1m',
            path: './clusters/test',
            prune: true,
            sourceRef: { kind: 'GitRepository', name: 'flux-system' },
          },
        }),
      ].join('---\n'),
    );
  });

  after(async () => {
    await controller?.stop();
    await flux?.stop();
    await git?.close();
    await aws?.close();
    await plane?.stop();
  });

  /** Every GitRepository has the commit and every Kustomization applied it and is Ready. */
  const synced = async (commit: string): Promise<void> => {
    for (const name of gitRepositories) {
      await eventually(
        `GitRepository ${name} at ${commit}`,
        async () => {
          const object = await readCustom(plane, fluxKinds.GitRepository, 'flux-system', name);
          assert.equal(object.status?.artifact?.revision, `main@sha1:${commit}`);
          assertReady(object);
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
    }
    for (const name of kustomizations) {
      await eventually(
        `Kustomization ${name} Ready at ${commit}`,
        async () => {
          const object = await readCustom(plane, fluxKinds.Kustomization, 'flux-system', name);
          assertReady(object);
          assert.equal(object.status?.lastAppliedRevision, `main@sha1:${commit}`);
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
    }
  };

  const assertReady = (object: CustomObject): void => {
    const ready = condition(object, 'Ready');
    assert.equal(ready?.status, 'True', `${object.metadata.name}: ${ready?.reason ?? ''} ${ready?.message ?? ''}`);
    assert.equal(object.status?.observedGeneration, object.metadata.generation);
  };

  /** Asks Flux to reconcile now (as `flux reconcile` does) and waits until it has, Ready. */
  let requests = 0;
  const reconcile = async (kind: keyof typeof fluxKinds, name: string): Promise<void> => {
    const token = `${Date.now()}-${++requests}`;
    await customObjects(plane).patchNamespacedCustomObject(
      { ...fluxKinds[kind], namespace: 'flux-system', name, body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': token } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually(
      `${kind} ${name} to handle reconcile request ${token}`,
      async () => {
        const object = await readCustom(plane, fluxKinds[kind], 'flux-system', name);
        assert.equal(object.status?.lastHandledReconcileAt, token);
        assertReady(object);
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  };

  /** Reconciles of a Kustomization that finished since a time, from kustomize-controller's log (one info line each). */
  const finishedReconciles = (name: string, since: Date): number =>
    readFileSync(flux.logs['kustomize-controller'], 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{') && line.includes('Reconciliation finished'))
      .map((line) => JSON.parse(line) as { msg?: string; logger?: string; controller?: string; name?: string; ts?: string })
      .filter((line) => line.controller === 'kustomization' && line.logger === undefined && line.name === name)
      .filter((line) => line.ts !== undefined && new Date(line.ts) >= since).length;

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

  /** What must not change in a steady window: the controller's Secrets and the ServiceAccounts it serves, exactly. */
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

  /**
   * A steady window: at least `reconciles` finished reconciles of every Kustomization (their own
   * intervals, with drift detection: a dry-run apply of every object each time), then the writes in it.
   */
  const steadyWindow = async (
    reconciles: number,
  ): Promise<{ flux: CountedWrite[]; source: CountedWrite[]; controller: CountedWrite[]; dryRuns: number; ms: number }> => {
    await plane.auditCaughtUp();
    const since = new Date();
    await eventually(
      `${reconciles} reconciles of every Kustomization`,
      () => {
        for (const name of kustomizations) assert.ok(finishedReconciles(name, since) >= reconciles, `${name}: ${finishedReconciles(name, since)}`);
        return Promise.resolve();
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    // Ready (between reconciles: during one, Flux reports Ready Unknown, "Reconciliation in progress").
    for (const name of kustomizations) {
      await eventually(`Kustomization ${name} Ready`, async () => assertReady(await readCustom(plane, fluxKinds.Kustomization, 'flux-system', name)), {
        timeoutMs: 30_000,
        intervalMs: 100,
      });
    }
    await plane.auditCaughtUp();
    return {
      flux: realWrites(plane, kustomizeUser, since, fluxOwn),
      source: realWrites(plane, sourceUser, since, fluxOwn),
      controller: realWrites(plane, controllerUser, since),
      dryRuns: dryRuns(plane, kustomizeUser, since),
      ms: Date.now() - since.getTime(),
    };
  };

  const inventories = async (): Promise<string[]> => {
    const ids: string[] = [];
    for (const name of kustomizations) {
      const object = await readCustom(plane, fluxKinds.Kustomization, 'flux-system', name);
      ids.push(...(object.status?.inventory?.entries ?? []).map((entry) => entry.id));
    }
    return ids;
  };

  it('syncs kustomize/overlays/flux and, from it, the controller manifests: every Kustomization Ready', async () => {
    await synced(revision);
    const ids = await inventories();
    for (const id of [
      'kube-ecrlogin_kube-ecrlogin__ServiceAccount',
      'kube-ecrlogin_kube-ecrlogin_apps_Deployment',
      'flux-system_kube-ecrlogin_source.toolkit.fluxcd.io_GitRepository',
    ]) {
      assert.ok(ids.includes(id), `${id} in an inventory`);
    }
    if (admission) assert.ok(ids.includes('_kube-ecrlogin-pull-secret_admissionregistration.k8s.io_MutatingAdmissionPolicy'));
    process.stderr.write(`flux: first sync Ready in ${Date.now() - started.getTime()} ms\n`);
  });

  it("the controller, run with the ServiceAccount Flux created and the Deployment's arguments, serves the tenants", async () => {
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
    if (admission)
      await eventually('the admission parameters', () => core.readNamespacedConfigMap({ namespace: 'kube-ecrlogin', name: 'kube-ecrlogin-admission' }));
  });

  it('steady: several reconcile intervals with drift detection, Ready, zero writes by Flux or the controller', async () => {
    // Flux's own first reconciles after the controller's writes, which changed nothing Flux declares.
    for (const name of kustomizations) await reconcile('Kustomization', name);
    const ours: [string, string][] = [
      ['tenant-a', 'ecr-login'],
      ['tenant-b', 'ecr-login-ci'],
    ];
    const accounts: [string, string][] = [
      ['tenant-a', 'app'],
      ['tenant-a', 'builder'],
      ['tenant-b', 'ci'],
    ];
    const before = await snapshot(ours, accounts);
    const window = await steadyWindow(3);
    process.stderr.write(`flux: steady window ${window.ms} ms, ${window.dryRuns} dry-run applies by kustomize-controller\n`);
    assert.deepEqual(window.flux, [], 'kustomize-controller wrote nothing Git declares');
    assert.deepEqual(window.source, []);
    assert.deepEqual(window.controller, [], 'the controller wrote nothing');
    assert.ok(window.dryRuns > 0, 'Flux compared Git with the cluster (server-side dry-run applies)');
    assert.deepEqual(await snapshot(ours, accounts), before, 'Secrets and ServiceAccounts unchanged, to the resourceVersion');
    assert.deepEqual(
      (await inventories()).filter((id) => id.endsWith('__Secret')),
      [],
      'no Secret in any inventory',
    );
  });

  it("drift detection is on: a field Git declares, changed in the cluster, is put back; the controller's entry stays", async () => {
    await plane.auditCaughtUp();
    const since = new Date();
    await core.patchNamespacedServiceAccount(
      { namespace: 'tenant-a', name: 'app', body: { metadata: { labels: { team: 'someone-else' } } }, fieldManager: 'drift' },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await reconcile('Kustomization', 'tenants');
    const sa = await serviceAccount('tenant-a', 'app');
    assert.equal(sa.metadata?.labels?.['team'], 'a', 'Flux corrected the drift');
    assert.deepEqual(pullSecretNames(sa), ['ecr-login']);
    await plane.auditCaughtUp();
    assert.deepEqual(
      realWrites(plane, kustomizeUser, since, fluxOwn).map((w) => `${w.verb} ${w.resource} ${w.namespace}/${w.name}`),
      ['patch serviceaccounts tenant-a/app'],
    );
    assert.deepEqual(realWrites(plane, controllerUser, since), []);
  });

  it("a new commit is re-synced: changed objects applied, the entries kept, a new tenant's Pods get the pull Secret", async () => {
    const before = (await core.readNamespacedSecret({ namespace: 'tenant-a', name: 'ecr-login' })).metadata?.uid;
    await plane.auditCaughtUp();
    const since = new Date();
    git.write(tenantFiles({ namespaceAnnotated: true, ciAnnotated: true, builderList: ['dockerhub', 'quay'], revision: '2', extra: true, tenantC: true }));
    revision = git.commit('builder revision 2, tenant-c');
    await reconcile('GitRepository', 'flux-system');
    await synced(revision);
    assert.equal((await serviceAccount('tenant-a', 'builder')).metadata?.labels?.['revision'], '2');
    // spec.ignore takes /imagePullSecrets out of apply too: Flux sends the live list (it adopts the value
    // when no other Apply manager owns it), so the entry stays, and so Git's new entry (quay) does not
    // reach a ServiceAccount that exists: a list declared in Git is applied at creation only.
    assert.deepEqual(await entries('tenant-a', 'builder'), ['dockerhub', 'ecr-login'], "the apply kept the entry (spec.ignore), and left out Git's change");
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
    const applied = realWrites(plane, kustomizeUser, since, fluxOwn).map((w) => `${w.resource} ${w.namespace}/${w.name}`);
    assert.ok(applied.includes('serviceaccounts tenant-a/builder'), applied.join(', '));
    assert.ok(
      !applied.some((w) => w.startsWith('secrets ') || w === 'serviceaccounts tenant-a/app' || w.startsWith('serviceaccounts tenant-c/')),
      applied.join(', '),
    );
    const controllerWrites = realWrites(plane, controllerUser, since).map((w) => `${w.resource} ${w.namespace}/${w.name}`);
    assert.ok(!controllerWrites.some((w) => w.includes('tenant-a/') || w.includes('tenant-b/')), `only tenant-c: ${controllerWrites.join(', ')}`);

    const window = await steadyWindow(2);
    assert.deepEqual(window.flux, []);
    assert.deepEqual(window.controller, []);
  });

  it('removing the annotations in Git removes only what the controller added; prune: true never deletes its Secrets', async () => {
    const tenantC = (await core.readNamespacedSecret({ namespace: 'tenant-c', name: 'ecr-login' })).metadata?.uid;
    await plane.auditCaughtUp();
    const since = new Date();
    git.write(tenantFiles({ namespaceAnnotated: false, ciAnnotated: false, builderList: ['dockerhub', 'quay'], revision: '2', extra: false, tenantC: true }));
    revision = git.commit('tenant-a and tenant-b/ci no longer ask for credentials; tenant-b/extra removed');
    await reconcile('GitRepository', 'flux-system');
    await synced(revision);

    await absent(() => serviceAccount('tenant-b', 'extra')); // pruned: prune is on
    await eventually(
      'what the controller added removed',
      async () => {
        await absent(() => core.readNamespacedSecret({ namespace: 'tenant-a', name: 'ecr-login' }));
        await absent(() => core.readNamespacedSecret({ namespace: 'tenant-b', name: 'ecr-login-ci' }));
        assert.deepEqual(await entries('tenant-a', 'app'), []);
        await plane.auditCaughtUp();
        assert.equal(
          realWrites(plane, controllerUser, since).filter((w) => w.resource === 'serviceaccounts' && w.name === 'builder').length,
          1,
          'the controller took its entry out of builder',
        );
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    // builder: the controller removed its entry, once. Flux applies the Namespace (whose annotation is
    // gone) before the ServiceAccounts, so the controller's removal can land between Flux's read of
    // builder and its dry run: Flux then sees drift (the controller's annotation went) and applies the
    // list it read, the entry included (spec.ignore adopts the live value, from a read that is stale
    // by then). The entry is then Flux's, names a deleted Secret, and stays. Which one happened is in
    // the audit log.
    await reconcile('Kustomization', 'tenants');
    const removal = realWrites(plane, controllerUser, since).find((w) => w.resource === 'serviceaccounts' && w.name === 'builder');
    const fluxAfter = realWrites(plane, kustomizeUser, since, fluxOwn).filter(
      (w) => w.resource === 'serviceaccounts' && w.name === 'builder' && removal !== undefined && w.at > removal.at,
    );
    const builder = await entries('tenant-a', 'builder');
    if (builder.includes('ecr-login')) {
      assert.deepEqual(builder, ['dockerhub', 'ecr-login']);
      assert.ok(fluxAfter.length > 0, 'the entry is back only if Flux applied builder after the controller took it out');
      process.stderr.write(
        `flux: applied tenant-a/builder after the controller took its entry out, from an earlier read: the entry is back (Flux's), naming a deleted Secret\n`,
      );
    } else {
      assert.deepEqual(builder, ['dockerhub'], 'the entry Git declared at creation stays');
    }
    assert.deepEqual(await entries('tenant-b', 'ci'), ['ecr-login-ci'], "an entry Git declares is not the controller's to remove");
    assert.equal((await serviceAccount('tenant-a', 'builder')).metadata?.labels?.['revision'], '2');
    assert.equal((await core.readNamespacedSecret({ namespace: 'tenant-c', name: 'ecr-login' })).metadata?.uid, tenantC, 'prune left the Secret in place');
    assert.equal((await core.readNamespace({ name: 'tenant-a' })).metadata?.annotations?.['ecr-login/server'], undefined);

    await plane.auditCaughtUp();
    const deletes = realWrites(plane, controllerUser, since)
      .filter((w) => w.verb === 'delete')
      .map((w) => `${w.resource} ${w.namespace}/${w.name}`);
    assert.deepEqual(deletes.sort(), ['secrets tenant-a/ecr-login', 'secrets tenant-b/ecr-login-ci']);
    const fluxDeletes = realWrites(plane, kustomizeUser, since, fluxOwn)
      .filter((w) => w.verb === 'delete')
      .map((w) => `${w.resource} ${w.namespace}/${w.name}`);
    assert.deepEqual(fluxDeletes, ['serviceaccounts tenant-b/extra']);
    // Over the whole run, Flux never wrote a Secret.
    assert.deepEqual(
      realWrites(plane, kustomizeUser, started).filter((w) => w.resource === 'secrets'),
      [],
    );

    const window = await steadyWindow(2);
    assert.deepEqual(window.flux, []);
    assert.deepEqual(window.controller, []);
  });
});
