// After the connection to kube-apiserver heals, the controller sees changes again within one backoff
// cap (--backoff-max): neither its watches nor its start-up wait for the informers' own, longer backoff.

import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { readSecret } from '../support/objects.ts';
import { startProxy, type TcpProxy } from './proxy.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const backoffMaxMs = 2_000;
/** Informers that back off by doubling would next try 31 s after a partition began: 15 s after it healed. */
const partitionMs = 16_000;

/** An admin KubeConfig that reaches the apiserver through the proxy. */
function throughProxy(proxy: TcpProxy): k8s.KubeConfig {
  const plane = cluster();
  const config = new k8s.KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'via-proxy', server: proxy.url, caData: Buffer.from(plane.caPem).toString('base64') }],
    users: [{ name: 'admin', token: plane.tokenOf('admin') }],
    contexts: [{ name: 'via-proxy', cluster: 'via-proxy', user: 'admin' }],
    currentContext: 'via-proxy',
  });
  return config;
}

describe('recovery from an unreachable apiserver', () => {
  let aws: AwsTestServer;
  let proxy: TcpProxy;
  let controller: TestController | undefined;

  beforeEach(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    const server = new URL(cluster().server);
    proxy = await startProxy({ host: server.hostname, port: Number(server.port) });
  });

  afterEach(async () => {
    await controller?.stop();
    controller = undefined;
    await proxy.close();
    await aws.close();
  });

  it('serves a namespace annotated just after a 16 s partition heals within one backoff cap', async () => {
    const running = await startTestController({ kubeConfig: throughProxy(proxy), user: 'admin', args: ['--backoff-max', `${backoffMaxMs}ms`] });
    controller = running;
    const first = uniqueName('heal');
    await createServedNamespace(running, first, { 'ecr-login/server': east });
    await eventually('the Secret before the partition', () => readSecret(first, 'ecr-login'));

    // The fault: every connection reset, and every new one, until it heals.
    const heal = proxy.partition();
    await sleep(partitionMs);
    heal();

    const second = uniqueName('heal');
    await createServedNamespace(running, second, { 'ecr-login/server': east });
    // One backoff cap for the watches to come back, and a little for the reconcile itself.
    await eventually('the Secret of a namespace annotated after the partition', () => readSecret(second, 'ecr-login'), {
      timeoutMs: backoffMaxMs + 2_000,
    });
  });

  it('starts serving within one backoff cap of the apiserver becoming reachable when it started during a partition', async () => {
    let healedAt: number | undefined;
    const starting = startTestController({
      kubeConfig: throughProxy(proxy),
      user: 'admin',
      args: ['--backoff-max', `${backoffMaxMs}ms`],
      // The controller's namespace exists; from here on, it cannot reach the apiserver for 16 s.
      prepare: () => {
        const heal = proxy.partition();
        setTimeout(() => {
          heal();
          healedAt = Date.now();
        }, partitionMs);
        return Promise.resolve();
      },
    });
    controller = await starting;
    const startedAt = Date.now();
    assert.ok(healedAt !== undefined, 'the controller cannot have started before the partition healed');
    assert.ok(startedAt - healedAt <= backoffMaxMs + 2_000, `started ${startedAt - healedAt} ms after the partition healed`);
    const namespace = uniqueName('late');
    await createServedNamespace(controller, namespace, { 'ecr-login/server': east });
    await eventually('its first Secret', () => readSecret(namespace, 'ecr-login'), { timeoutMs: backoffMaxMs + 2_000 });
  });
});
