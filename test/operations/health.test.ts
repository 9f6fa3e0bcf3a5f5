// /healthz and /readyz of a real `kube-ecrlogin run` process whose caches cannot sync until RBAC lets
// them: alive throughout; not ready while its config cannot be read, nor while its caches have not
// listed; ready once they have. The RBAC granted step by step is the one src/kube/permissions.ts
// declares. And the event-loop watchdog behind /healthz.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clusterRules, namespaceRules } from '../../src/kube/permissions.ts';
import { eventLoopWatchdog } from '../../src/server.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { uniqueName } from '../support/cluster.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { readSecret } from '../support/objects.ts';
import {
  admin,
  createConfig,
  createInstall,
  createServedNamespaces,
  ecrHost,
  httpGet,
  policyRules,
  serviceAccount,
  spawnController,
  stopController,
  type ControllerProcess,
  type Install,
} from './support.ts';

const subject = (install: Install): { kind: string; name: string; namespace: string } => ({
  kind: 'ServiceAccount',
  name: 'health',
  namespace: install.namespace,
});

describe('/healthz and /readyz', () => {
  let aws: AwsTestServer;
  let install: Install;
  let controller: ControllerProcess;
  const served = uniqueName('health');

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    install = await createInstall('health');
    await createConfig(install, '');
    await createServedNamespaces(install, [served], () => ({ 'ecr-login/server': ecrHost('us-east-1') }));
    // A ServiceAccount with no permission at all, yet.
    const account = await serviceAccount(install, 'health', { clusterAdmin: false });
    controller = await spawnController({ install, identity: 'health-0', kubeconfig: account.kubeconfig, awsEndpoint: aws.endpoint });
  });

  after(async () => {
    await stopController(controller);
    await aws.close();
    await admin()
      .rbac.deleteClusterRole({ name: `${install.namespace}-health` })
      .catch(() => undefined);
    await admin()
      .rbac.deleteClusterRoleBinding({ name: `${install.namespace}-health` })
      .catch(() => undefined);
  });

  it('is alive but not ready while it cannot read its config', async () => {
    await eventually('the probes answer, and the ConfigMap list was refused', async () => {
      assert.equal((await httpGet(`${controller.healthUrl}/healthz`)).status, 200);
      assert.ok(controller.output().includes('Watch failed, restarting'));
    });
    const ready = await httpGet(`${controller.healthUrl}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body, 'loading config\n');
  });

  it('is alive but not ready while its caches have not synced', async () => {
    const { rbac } = admin();
    await rbac.createNamespacedRole({ namespace: install.namespace, body: { metadata: { name: 'health' }, rules: policyRules(namespaceRules) } });
    await rbac.createNamespacedRoleBinding({
      namespace: install.namespace,
      body: { metadata: { name: 'health' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'health' }, subjects: [subject(install)] },
    });
    await eventually('the config loaded', async () => {
      const ready = await httpGet(`${controller.healthUrl}/readyz`);
      assert.equal(ready.body, 'caches not synced\n');
      assert.equal(ready.status, 503);
    });
    assert.equal((await httpGet(`${controller.healthUrl}/healthz`)).status, 200);
  });

  it('is ready once its caches have synced, with exactly the ClusterRole the controller needs', async () => {
    const { rbac } = admin();
    const name = `${install.namespace}-health`;
    await rbac.createClusterRole({ body: { metadata: { name }, rules: policyRules(clusterRules) } });
    await rbac.createClusterRoleBinding({
      body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name }, subjects: [subject(install)] },
    });
    await eventually('ready', async () => {
      const ready = await httpGet(`${controller.healthUrl}/readyz`);
      assert.equal(ready.status, 200);
      assert.equal(ready.body, 'ok\n');
    });
    assert.equal((await httpGet(`${controller.healthUrl}/healthz`)).status, 200);
    // And it works with these permissions: the annotated namespace gets its Secret.
    await eventually('the Secret', () => readSecret(served, 'ecr-login'));
  });

  it('answers only GET and HEAD on known paths', async () => {
    assert.equal((await httpGet(`${controller.healthUrl}/healthz`, 'HEAD')).status, 200);
    assert.equal((await httpGet(`${controller.healthUrl}/healthz`, 'POST')).status, 405);
    assert.equal((await httpGet(`${controller.healthUrl}/metrics`)).status, 404, 'metrics are on their own port');
    assert.equal((await httpGet(`${controller.healthUrl}/nothing`)).status, 404);
  });
});

describe('the event-loop watchdog behind /healthz', () => {
  it('fails after the loop was held up longer than the stall limit, and recovers once that is older than the window', async () => {
    const watchdog = eventLoopWatchdog({ intervalMs: 20, stallMs: 200, windowMs: 600 });
    try {
      assert.equal(watchdog.probe(), undefined);
      const blockedUntil = Date.now() + 400;
      while (Date.now() < blockedUntil) {
        // A synchronous hold-up, as a hot loop or a huge JSON.parse would cause.
      }
      const problem = await eventually('the stall reported', () => {
        const found = watchdog.probe();
        assert.match(found ?? '', /^event loop stalled for \d+ ms/);
        return Promise.resolve(found);
      });
      const stalled = Number(/stalled for (\d+) ms/.exec(problem ?? '')?.[1]);
      assert.ok(stalled >= 200, `${stalled} ms`);
      await eventually(
        'healthy again',
        () => {
          assert.equal(watchdog.probe(), undefined);
          return Promise.resolve();
        },
        { timeoutMs: 5_000, intervalMs: 50 },
      );
    } finally {
      watchdog.stop();
    }
  });

  it('does not fail for ordinary delays', async () => {
    // 1.5 s of 30 ms turns against a 500 ms limit: more than the limit in total, and within one window,
    // so a watchdog that added delays up would fail; and room for the few hundred ms a loaded test machine
    // can preempt the process (production's limit is 10 s).
    const watchdog = eventLoopWatchdog({ intervalMs: 20, stallMs: 500, windowMs: 600 });
    try {
      const until = Date.now() + 1_500;
      while (Date.now() < until) {
        const busy = Date.now() + 30;
        while (Date.now() < busy) {
          // 30 ms of work at a time.
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(watchdog.probe(), undefined);
    } finally {
      watchdog.stop();
    }
  });
});
