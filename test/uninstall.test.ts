// `kube-ecrlogin uninstall` on the real API server: the controller writes its Secrets and entries,
// stops, and uninstall removes exactly those (and says so, dry run first), while every foreign Secret
// and entry survives: a Secret labelled as ours but written by someone else, one written by our field
// manager whose owner names another namespace, a forged ecr-login/pull-secrets record, an entry of the
// tenant's own beside ours, and everything in a namespace outside --namespace-selector. The scope is
// limited by the controller's test label so that other test files' Secrets are never touched; the
// cluster-wide plan (no selector) is checked as a dry run.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOptions } from '../src/config/options.ts';
import { formatUninstall, planUninstall, uninstall, type UninstallOptions } from '../src/uninstall.ts';
import { apply } from './kustomize/support.ts';
import { cluster, uniqueName } from './support/cluster.ts';
import { runCommand } from './support/command.ts';
import { createServedNamespace, withAwsAndController } from './support/controller.ts';
import { eventually } from './support/eventually.ts';
import { core, pullSecretNames, readSecret } from './support/objects.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const managed = { 'app.kubernetes.io/managed-by': 'kube-ecrlogin' };
const dockerconfig = { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') };

describe('kube-ecrlogin uninstall', () => {
  const setup = withAwsAndController();
  const names = { served: uniqueName('uninstall-a'), forged: uniqueName('uninstall-b'), outside: uniqueName('uninstall-c') };
  let selector: string;
  const scoped = (yes: boolean): UninstallOptions => ({ namespace: 'kube-ecrlogin', namespaceSelector: selector, yes });

  /** Everything in the three namespaces that uninstall may or may not touch, to compare before and after. */
  const snapshot = async (): Promise<{ secrets: string[]; serviceAccounts: string[] }> => {
    const secrets: string[] = [];
    const serviceAccounts: string[] = [];
    for (const namespace of Object.values(names)) {
      for (const s of (await core().listNamespacedSecret({ namespace })).items)
        secrets.push(`${namespace}/${s.metadata?.name ?? ''}@${s.metadata?.resourceVersion ?? ''}`);
      for (const sa of (await core().listNamespacedServiceAccount({ namespace })).items) {
        serviceAccounts.push(
          `${namespace}/${sa.metadata?.name ?? ''} [${pullSecretNames(sa).join(',')}] ${sa.metadata?.annotations?.['ecr-login/pull-secrets'] ?? '-'}`,
        );
      }
    }
    return { secrets: secrets.sort(), serviceAccounts: serviceAccounts.sort() };
  };

  before(async () => {
    const { controller } = setup;
    selector = `${controller.label.key}=${controller.label.value}`;
    const { served, forged, outside } = names;

    // Served: a Namespace-level Secret on the default ServiceAccount, which also lists the tenant's own
    // dockerhub Secret; and a ServiceAccount-level Secret.
    await createServedNamespace(controller, served, { 'ecr-login/server': east });
    await core().createNamespacedSecret({
      namespace: served,
      body: { metadata: { name: 'dockerhub' }, type: 'kubernetes.io/dockerconfigjson', data: dockerconfig },
    });
    await core().createNamespacedServiceAccount({
      namespace: served,
      body: { metadata: { name: 'builder', annotations: { 'ecr-login/server': east } }, imagePullSecrets: [{ name: 'dockerhub' }] },
    });
    await eventually('the controller to write both Secrets and both entries', async () => {
      await readSecret(served, 'ecr-login');
      await readSecret(served, 'ecr-login-builder');
      const builder = await core().readNamespacedServiceAccount({ namespace: served, name: 'builder' });
      assert.deepEqual(pullSecretNames(builder), ['dockerhub', 'ecr-login-builder']);
      const serving = await core().readNamespacedServiceAccount({ namespace: served, name: 'default' });
      assert.deepEqual(pullSecretNames(serving), ['ecr-login']);
    });

    // Forged, in a served namespace: labelled as ours but written by the tenant; written by our field
    // manager but owned by an object of another namespace; a record naming those and the tenant's own.
    await createServedNamespace(controller, forged);
    await core().createNamespacedSecret({
      namespace: forged,
      body: {
        metadata: { name: 'lure', labels: managed, annotations: { 'ecr-login/owner': `Namespace/${forged}` } },
        type: 'kubernetes.io/dockerconfigjson',
        data: dockerconfig,
      },
    });
    await apply(
      [
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'elsewhere', namespace: forged, labels: managed, annotations: { 'ecr-login/owner': `Namespace/${served}` } },
          type: 'kubernetes.io/dockerconfigjson',
          data: dockerconfig,
        },
      ],
      { fieldManager: 'kube-ecrlogin' },
    );
    await core().createNamespacedSecret({
      namespace: forged,
      body: { metadata: { name: 'team-pull' }, type: 'kubernetes.io/dockerconfigjson', data: dockerconfig },
    });
    await core().createNamespacedServiceAccount({
      namespace: forged,
      body: {
        metadata: { name: 'app', annotations: { 'ecr-login/pull-secrets': 'elsewhere,lure,team-pull' } },
        imagePullSecrets: [{ name: 'team-pull' }, { name: 'lure' }, { name: 'elsewhere' }],
      },
    });

    // Outside the selector: a Secret that is ours by every rule, and its recorded entry.
    await core().createNamespace({ body: { metadata: { name: outside } } });
    await apply(
      [
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'ecr-login', namespace: outside, labels: managed, annotations: { 'ecr-login/owner': `Namespace/${outside}` } },
          type: 'kubernetes.io/dockerconfigjson',
          data: dockerconfig,
        },
      ],
      { fieldManager: 'kube-ecrlogin' },
    );
    await core().createNamespacedServiceAccount({
      namespace: outside,
      body: { metadata: { name: 'app', annotations: { 'ecr-login/pull-secrets': 'ecr-login' } }, imagePullSecrets: [{ name: 'ecr-login' }] },
    });

    // As the README says: stop the controller first.
    await controller.stop();
  });

  after(async () => {
    for (const name of Object.values(names))
      await core()
        .deleteNamespace({ name })
        .catch(() => undefined);
  });

  it('plans exactly what the controller wrote, and names what it leaves alone and why (dry run: nothing changes)', async () => {
    const { served, forged } = names;
    const before_ = await snapshot();
    const result = await uninstall(cluster().adminConfig(), scoped(false));
    assert.deepEqual(
      result.plan.entries.map((e) => `${e.namespace}/${e.serviceAccount}: ${e.entries.join(',')}`),
      [`${served}/builder: ecr-login-builder`, `${served}/default: ecr-login`],
    );
    assert.deepEqual(
      result.plan.secrets.map((s) => `${s.namespace}/${s.name}`),
      [`${served}/ecr-login`, `${served}/ecr-login-builder`],
    );
    assert.deepEqual(result.plan.leftAlone, [
      `${forged}/elsewhere: its ecr-login/owner annotation names an object in namespace ${served}`,
      `${forged}/lure: its data was not written by kube-ecrlogin`,
    ]);
    assert.deepEqual(result.done, []);
    assert.deepEqual(await snapshot(), before_, 'a dry run changes nothing');

    const text = formatUninstall(result, scoped(false));
    assert.match(text, /\(dry run: nothing is changed; --yes to do it\)/);
    assert.match(text, new RegExp(`Secrets kube-ecrlogin wrote \\(would be deleted\\): 2\\n  ${served}/ecr-login\\n  ${served}/ecr-login-builder\\n`));
    assert.match(text, /kubectl delete -k /);
    assert.match(text, /kubectl -n kube-ecrlogin delete secret kube-ecrlogin-webhook-tls/);
    assert.match(text, /kubectl -n kube-ecrlogin delete configmap kube-ecrlogin-admission/);
  });

  it('without a selector, plans cluster-wide: the namespace outside the selector too (dry run)', async () => {
    const { served, outside, forged } = names;
    const plan = await planUninstall(cluster().adminConfig(), { namespace: 'kube-ecrlogin', yes: false });
    const secrets = plan.secrets.map((s) => `${s.namespace}/${s.name}`);
    for (const expected of [`${served}/ecr-login`, `${served}/ecr-login-builder`, `${outside}/ecr-login`]) assert.ok(secrets.includes(expected), expected);
    assert.ok(!secrets.some((s) => s.startsWith(`${forged}/`)), 'nothing forged');
    assert.ok(plan.entries.some((e) => e.namespace === outside && e.serviceAccount === 'app'));
  });

  it('with --yes removes them, and every foreign Secret and entry survives', async () => {
    const { served, forged, outside } = names;
    const before_ = await snapshot();
    const result = await uninstall(cluster().adminConfig(), scoped(true));
    assert.deepEqual(result.failed, []);
    assert.deepEqual(result.done, [
      `removed imagePullSecrets ecr-login-builder from ServiceAccount ${served}/builder`,
      `removed imagePullSecrets ecr-login from ServiceAccount ${served}/default`,
      `deleted Secret ${served}/ecr-login`,
      `deleted Secret ${served}/ecr-login-builder`,
    ]);
    const after_ = await snapshot();
    const gone = before_.secrets
      .filter((s) => !after_.secrets.includes(s))
      .map((s) => s.split('@')[0])
      .sort();
    assert.deepEqual(gone, [`${served}/ecr-login`, `${served}/ecr-login-builder`]);
    assert.ok(after_.serviceAccounts.includes(`${served}/builder [dockerhub] -`), after_.serviceAccounts.join('\n'));
    assert.ok(after_.serviceAccounts.includes(`${served}/default [] -`), after_.serviceAccounts.join('\n'));
    for (const line of before_.serviceAccounts.filter((l) => l.startsWith(`${forged}/`) || l.startsWith(`${outside}/`))) {
      assert.ok(after_.serviceAccounts.includes(line), `unchanged: ${line}`);
    }
    for (const secret of before_.secrets.filter((s) => !s.startsWith(`${served}/ecr-login`)))
      assert.ok(after_.secrets.includes(secret), `unchanged: ${secret}`);

    const again = await uninstall(cluster().adminConfig(), scoped(true));
    assert.deepEqual([again.plan.entries, again.plan.secrets, again.done], [[], [], []], 'nothing left to do');
  });

  it('the command: uninstall is a dry run unless --yes, and --yes belongs to uninstall only', async () => {
    const options = parseOptions(['uninstall', '--yes', '--namespace-selector', 'a=b'], { env: {}, hostname: 'h' });
    assert.equal(options.command, 'uninstall');
    assert.equal(options.yes, true);
    assert.equal(parseOptions(['uninstall'], { env: {}, hostname: 'h' }).yes, false);
    assert.throws(() => parseOptions(['run', '--yes'], { env: {}, hostname: 'h' }), /--yes is for uninstall/);

    const dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-uninstall-'));
    const kubeconfig = cluster().writeKubeconfig(cluster().adminConfig(), join(dir, 'admin.kubeconfig'));
    const dry = await runCommand(['uninstall', '--kubeconfig', kubeconfig, '--namespace-selector', selector]).finally(() =>
      rmSync(dir, { recursive: true, force: true }),
    );
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^kube-ecrlogin uninstall, in namespaces with labels .* \(dry run: nothing is changed; --yes to do it\):$/m);
    assert.match(dry.stdout, /^Secrets kube-ecrlogin wrote \(would be deleted\): 0$/m);
  });
});
