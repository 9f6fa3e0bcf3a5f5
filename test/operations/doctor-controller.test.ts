// `kube-ecrlogin doctor` about the running controller, not only the cluster's objects: the controller
// runs as its own process with leader election (as a Deployment runs it), publishes its status in the
// ConfigMap kube-ecrlogin-status (only when it changed: no write in a steady state), and the doctor,
// with the controller's own RBAC or as an admin, names the Lease holder and its age, the running
// version against its own, the namespaces whose last reconcile failed, the config in force when it
// differs from the ConfigMap (invalid, deleted), the Deployment and its Pods, and what it may not read.
// The first log line of `run` names the version, the Kubernetes server version and the identity.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { DoctorReport } from '../../src/doctor.ts';
import { clusterRules, namespaceRules } from '../../src/kube/permissions.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { repoRoot } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { runCommand, type CommandResult } from '../support/command.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { readSecret } from '../support/objects.ts';
import {
  admin,
  createConfig,
  createInstall,
  createServedNamespaces,
  ecrHost,
  policyRules,
  readLease,
  serviceAccount,
  spawnController,
  stopController,
  type ControllerProcess,
  type Install,
} from './support.ts';

const packageVersion = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const config = 'refresh:\n  minInterval: 1s\nrules:\n  - name: everyone\n    namespaces:\n      names: ["*"]\n';

interface PublishedStatus {
  version: string;
  instance: string;
  leaderElection: boolean;
  updatedAt: string;
  config: { configMap: string; source: string; resourceVersion?: string; hash?: string; configMapState: string; errors?: string[] };
  namespaces: { failing: number; unhealthy: number };
  errors: { namespace: string; reason: string; since: string }[];
}

describe('kube-ecrlogin doctor, about the running controller', () => {
  let aws: AwsTestServer;
  let install: Install;
  let controller: ControllerProcess;
  let controllerUser: string;
  const kubeconfigs = { leastPrivilege: '', admin: '' };
  const ns = { good: uniqueName('docrun-good'), failing: uniqueName('docrun-failing') };

  const env = (kubeconfig: string): Record<string, string> => ({
    KUBECONFIG: kubeconfig,
    AWS_ENDPOINT_URL: aws.endpoint,
    AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
    AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  const doctor = (kubeconfig: string, args: readonly string[] = []): Promise<CommandResult> =>
    runCommand(['doctor', '--namespace', install.namespace, '--namespace-selector', install.selector, '--aws-retries', '0', ...args], env(kubeconfig));
  const report = async (kubeconfig: string, args: readonly string[] = []): Promise<DoctorReport> => {
    const result = await doctor(kubeconfig, [...args, '--json']);
    assert.ok(result.stdout.startsWith('{'), result.stderr);
    return JSON.parse(result.stdout) as DoctorReport;
  };
  const check = (doctorReport: DoctorReport, name: string): { status: string; detail: string } => {
    const found = doctorReport.checks.find((c) => c.name === name);
    assert.ok(found, `${name} in ${doctorReport.checks.map((c) => c.name).join(', ')}`);
    return found;
  };
  const status = async (): Promise<PublishedStatus> => {
    const configMap = await admin().core.readNamespacedConfigMap({ namespace: install.namespace, name: 'kube-ecrlogin-status' });
    return JSON.parse(configMap.data?.['status.json'] ?? '') as PublishedStatus;
  };
  const policyConfigMap = (): Promise<k8s.V1ConfigMap> => admin().core.readNamespacedConfigMap({ namespace: install.namespace, name: 'kube-ecrlogin-config' });
  const statusWrites = (): number =>
    cluster()
      .writes({ user: controllerUser, namespace: install.namespace, resource: 'configmaps' })
      .filter((w) => w.objectRef?.name === 'kube-ecrlogin-status').length;

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    aws.faults.set({ api: 'GetAuthorizationToken', region: 'eu-south-1', kind: 'accessDenied' });
    install = await createInstall('docrun');
    await createConfig(install, config);
    const account = await serviceAccount(install, 'controller');
    controllerUser = account.user;
    await createServedNamespaces(install, [ns.good], () => ({ 'ecr-login/server': ecrHost('us-east-1') }));
    await createServedNamespaces(install, [ns.failing], () => ({ 'ecr-login/server': ecrHost('eu-south-1') }));

    // The doctor with exactly the controller's RBAC, and as an admin.
    const { core, rbac } = admin();
    const name = 'doctor';
    const full = `${install.namespace}-${name}`;
    await core.createNamespacedServiceAccount({ namespace: install.namespace, body: { metadata: { name } } });
    const subjects = [{ kind: 'ServiceAccount', name, namespace: install.namespace }];
    await rbac.createClusterRole({ body: { metadata: { name: full }, rules: policyRules(clusterRules) } });
    await rbac.createClusterRoleBinding({
      body: { metadata: { name: full }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: full }, subjects },
    });
    await rbac.createNamespacedRole({ namespace: install.namespace, body: { metadata: { name }, rules: policyRules(namespaceRules) } });
    await rbac.createNamespacedRoleBinding({
      namespace: install.namespace,
      body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects },
    });
    const plane = cluster();
    kubeconfigs.leastPrivilege = plane.writeKubeconfig(
      await plane.serviceAccountConfig(install.namespace, name),
      join(plane.state.dir, 'ops', `${full}.kubeconfig`),
    );
    kubeconfigs.admin = plane.writeKubeconfig(plane.adminConfig(), join(plane.state.dir, 'ops', `${install.namespace}-admin.kubeconfig`));

    controller = await spawnController({
      install,
      identity: 'replica-a',
      kubeconfig: account.kubeconfig,
      awsEndpoint: aws.endpoint,
      args: ['--leader-elect', '--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '1s', '--status-interval', '1s', '--log-level', 'info'],
    });
    await eventually('the good namespace served', () => readSecret(ns.good, 'ecr-login'), { timeoutMs: 60_000 });
    await eventually(
      'the status names the failing namespace',
      async () => {
        const published = await status();
        assert.deepEqual(
          published.errors.map((e) => e.namespace),
          [ns.failing],
        );
      },
      { timeoutMs: 60_000 },
    );
  });

  after(async () => {
    await stopController(controller);
    await aws.close();
  });

  it("run's first log line names the version, the Kubernetes server version and the identity mode", () => {
    const first = controller
      .output()
      .split('\n')
      .find((line) => line.startsWith('{'));
    assert.ok(first, controller.output());
    const line = JSON.parse(first) as Record<string, unknown>;
    assert.equal(line['message'], 'Starting kube-ecrlogin');
    assert.equal(line['version'], packageVersion);
    assert.match(String(line['kubernetes']), /^v1\.\d+\.\d+/);
    assert.equal(line['identity'], 'static keys (AWS_ACCESS_KEY_ID)');
    assert.equal(line['leaderElection'], true);
    assert.equal(line['namespace'], install.namespace);
  });

  it('publishes its status (version, leader, config in force, failing namespaces), and writes it again only when it changes', async () => {
    const published = await status();
    const policy = await policyConfigMap();
    assert.equal(published.version, packageVersion);
    assert.equal(published.instance, 'replica-a');
    assert.equal(published.leaderElection, true);
    assert.deepEqual(published.config, {
      configMap: `${install.namespace}/kube-ecrlogin-config`,
      source: 'configmap',
      resourceVersion: policy.metadata?.resourceVersion,
      hash: published.config.hash,
      configMapState: 'valid',
    });
    assert.match(published.config.hash ?? '', /^[0-9a-f]{16}$/);
    assert.deepEqual(published.namespaces, { failing: 1, unhealthy: 0 });
    assert.match(published.errors[0]?.reason ?? '', /^GetAuthorizationToken failed: AccessDeniedException/);
    assert.ok(!JSON.stringify(published).includes(controllerKeys.secretAccessKey));

    // A steady state: the failing namespace is retried, the good one resynced, the Lease renewed;
    // the status (written at most every second) is not written again.
    await cluster().auditCaughtUp();
    const before = statusWrites();
    assert.ok(before >= 1);
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    await cluster().auditCaughtUp();
    assert.equal(statusWrites(), before, 'no status write while nothing changed');
    assert.equal((await status()).updatedAt, published.updatedAt);
  });

  it("as the controller's RBAC: names the Lease holder and its age, the running version, the last errors, and what it cannot read", async (t) => {
    const result = await doctor(kubeconfigs.leastPrivilege);
    t.diagnostic(`\n${result.stdout}`);
    const out = result.stdout;
    assert.match(
      out,
      new RegExp(
        `^controller +WARN +cannot list Deployments in namespace ${install.namespace}, so its Deployment and Pods are not checked: HTTP 403.*run the doctor as a user who may read them\\)$`,
        'm',
      ),
    );
    assert.match(
      out,
      new RegExp(
        `^controller lease +ok +Lease ${install.namespace}/kube-ecrlogin is held by replica-a, leading since \\d+(\\.\\d+)?[ms]\\S* ago, renewed \\d+(\\.\\d+)?m?s ago; \\d+ transitions?$`,
        'm',
      ),
    );
    assert.match(
      out,
      new RegExp(
        `^controller status +ok +version ${packageVersion.replaceAll('.', '\\.')}, as this doctor; written by replica-a .* ago \\(written when it changes\\)$`,
        'm',
      ),
    );
    assert.match(
      out,
      new RegExp(
        `^controller errors +WARN +the last reconcile of 1 namespace failed, retried with backoff: ${ns.failing} \\(since .* ago: GetAuthorizationToken failed: AccessDeniedException`,
        'm',
      ),
    );
    const policy = await policyConfigMap();
    assert.match(
      out,
      new RegExp(
        `^config in force +ok +the controller runs this ConfigMap: the config.yaml of ConfigMap ${install.namespace}/kube-ecrlogin-config at resourceVersion ${policy.metadata?.resourceVersion} \\(hash [0-9a-f]{16}\\)$`,
        'm',
      ),
    );
    const json = await report(kubeconfigs.leastPrivilege);
    assert.equal(json.controller?.instance, 'replica-a');
  });

  it('once the failure is fixed, the status and the doctor no longer name it', async () => {
    aws.faults.clear({});
    await eventually('the status without errors', async () => assert.deepEqual((await status()).namespaces, { failing: 0, unhealthy: 0 }), {
      timeoutMs: 60_000,
    });
    assert.deepEqual(check(await report(kubeconfigs.leastPrivilege), 'controller errors'), {
      name: 'controller errors',
      status: 'ok',
      detail: "no namespace's last reconcile failed",
    });
  });

  it('says which config is in force, and why, while the ConfigMap is invalid and after it is deleted', async () => {
    const { core } = admin();
    const good = await policyConfigMap();
    const inForce = `the config.yaml of ConfigMap ${install.namespace}/kube-ecrlogin-config at resourceVersion ${good.metadata?.resourceVersion} \\(hash [0-9a-f]{16}\\)`;

    await core.replaceNamespacedConfigMap({
      namespace: install.namespace,
      name: 'kube-ecrlogin-config',
      body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': 'refresh:\n  margin: always\n' } },
    });
    await eventually('the status sees it invalid', async () => assert.equal((await status()).config.configMapState, 'invalid'));
    const invalid = await report(kubeconfigs.leastPrivilege);
    assert.equal(check(invalid, 'config').status, 'fail');
    assert.equal(check(invalid, 'config in force').status, 'warn');
    assert.match(
      check(invalid, 'config in force').detail,
      new RegExp(
        `^the ConfigMap is invalid \\(see config\\), so the controller keeps ${inForce} in force until it restarts; fix it first: a restart with it refuses to start$`,
      ),
    );

    await core.deleteNamespacedConfigMap({ namespace: install.namespace, name: 'kube-ecrlogin-config' });
    await eventually('the status sees it deleted', async () => assert.equal((await status()).config.configMapState, 'missing'));
    const deleted = await report(kubeconfigs.leastPrivilege);
    // The ConfigMap alone says "the defaults apply": true after a restart, not of the running controller.
    assert.match(check(deleted, 'config').detail, /absent: the defaults apply$/);
    assert.equal(check(deleted, 'config in force').status, 'warn');
    assert.match(
      check(deleted, 'config in force').detail,
      new RegExp(`^the ConfigMap was deleted; the controller keeps ${inForce} in force until it restarts, and then the defaults apply \\(no rules\\)$`),
    );

    await createConfig(install, config);
    await eventually('the status runs the new ConfigMap', async () => assert.equal((await status()).config.configMapState, 'valid'));
    assert.equal(check(await report(kubeconfigs.leastPrivilege), 'config in force').status, 'ok');
  });

  it("as an admin: checks the controller's Deployment and its Pods", async () => {
    const apps = cluster().adminConfig().makeApiClient(k8s.AppsV1Api);
    const labels = { 'app.kubernetes.io/name': 'kube-ecrlogin', 'app.kubernetes.io/component': 'controller' };
    await apps.createNamespacedDeployment({
      namespace: install.namespace,
      body: {
        metadata: { name: 'kube-ecrlogin', labels: { 'app.kubernetes.io/name': 'kube-ecrlogin' } },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [{ name: 'kube-ecrlogin', image: 'ghcr.io/kube-ecrlogin/kube-ecrlogin:test' }] } },
        },
      },
    });
    try {
      // This control plane has no scheduler and no kubelet: the Pod stays Pending, and the doctor says so.
      await eventually('its Pod', async () =>
        assert.equal(
          (await admin().core.listNamespacedPod({ namespace: install.namespace, labelSelector: 'app.kubernetes.io/component=controller' })).items.length,
          1,
        ),
      );
      const result = await doctor(kubeconfigs.admin);
      assert.equal(result.code, 1, result.stdout);
      assert.match(result.stdout, /^controller +FAIL +Deployment kube-ecrlogin: 0 of 1 ready; Pod kube-ecrlogin-\S+ Pending, not ready$/m);
      assert.match(result.stdout, /\nunhealthy: 1 failing check: controller\n$/);
    } finally {
      await apps.deleteNamespacedDeployment({ namespace: install.namespace, name: 'kube-ecrlogin' });
    }
  });

  it('names a version that differs from its own', async () => {
    // Another install whose status says an older controller runs there.
    const other = await createInstall('docver');
    const published: PublishedStatus = {
      version: '0.0.1',
      instance: 'old-replica',
      leaderElection: false,
      updatedAt: new Date().toISOString(),
      config: { configMap: `${other.namespace}/kube-ecrlogin-config`, source: 'defaults', configMapState: 'missing' },
      namespaces: { failing: 0, unhealthy: 0 },
      errors: [],
    };
    await admin().core.createNamespacedConfigMap({
      namespace: other.namespace,
      body: { metadata: { name: 'kube-ecrlogin-status' }, data: { 'status.json': JSON.stringify(published) } },
    });
    const result = await runCommand(['doctor', '--namespace', other.namespace, '--namespace-selector', other.selector, '--json'], env(kubeconfigs.admin));
    const json = JSON.parse(result.stdout) as DoctorReport;
    assert.equal(check(json, 'controller status').status, 'warn');
    assert.match(
      check(json, 'controller status').detail,
      new RegExp(`^the controller runs version 0\\.0\\.1, this doctor is ${packageVersion.replaceAll('.', '\\.')}: `),
    );
    assert.equal(check(json, 'config in force').detail, 'the controller runs the defaults (no ConfigMap at its start: no rules, everything allowed)');
    assert.equal(
      json.checks.find((c) => c.name === 'controller lease'),
      undefined,
      'no Lease and no leader election: nothing to say',
    );
  });

  it('when the leader stops renewing the Lease, says that no replica leads', async () => {
    controller.kill('SIGKILL');
    await controller.exited;
    const lease = await readLease(install);
    const renewed = new Date(lease?.spec?.renewTime ?? 0).getTime();
    // The Lease lasts 4 s; the doctor allows 5 s for clock skew.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, renewed + 9_500 - Date.now())));
    const json = await report(kubeconfigs.leastPrivilege);
    assert.equal(check(json, 'controller lease').status, 'fail');
    assert.match(
      check(json, 'controller lease').detail,
      new RegExp(`^Lease ${install.namespace}/kube-ecrlogin is held by replica-a but was last renewed \\S+ ago \\(it lasts 4s\\): no replica leads; `),
    );
    assert.ok(json.failing.includes('controller lease'));
  });
});
