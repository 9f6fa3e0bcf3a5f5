// After the connection to kube-apiserver heals, the controller sees changes again within one backoff
// cap (--backoff-max): its watches do not stay down for the informers' own, longer backoff.

import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { readSecret } from '../support/objects.ts';
import { startProxy, type TcpProxy } from './proxy.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';

describe('recovery from an unreachable apiserver', () => {
  let aws: AwsTestServer;
  let proxy: TcpProxy;
  let controller: TestController;
  const backoffMaxMs = 2_000;

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    useAwsEndpoint(aws.endpoint);
    const plane = cluster();
    const server = new URL(plane.server);
    proxy = await startProxy({ host: server.hostname, port: Number(server.port) });
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'via-proxy', server: proxy.url, caData: Buffer.from(plane.caPem).toString('base64') }],
      users: [{ name: 'admin', token: plane.tokenOf('admin') }],
      contexts: [{ name: 'via-proxy', cluster: 'via-proxy', user: 'admin' }],
      currentContext: 'via-proxy',
    });
    controller = await startTestController({ kubeConfig, user: 'admin', args: ['--backoff-max', `${backoffMaxMs}ms`] });
  });

  after(async () => {
    await controller.stop();
    await proxy.close();
    await aws.close();
  });

  it('serves a namespace annotated just after a 16 s partition heals within one backoff cap', async () => {
    const first = uniqueName('heal');
    await createServedNamespace(controller, first, { 'ecr-login/server': east });
    await eventually('the Secret before the partition', () => readSecret(first, 'ecr-login'));

    // The fault: every connection reset, and every new one, for 16 s. Informers that back off by
    // doubling would next try 31 s after it began, 15 s after it healed.
    const heal = proxy.partition();
    await sleep(16_000);
    heal();

    const second = uniqueName('heal');
    await createServedNamespace(controller, second, { 'ecr-login/server': east });
    // One backoff cap for the watches to come back, and a little for the reconcile itself.
    await eventually('the Secret of a namespace annotated after the partition', () => readSecret(second, 'ecr-login'), {
      timeoutMs: backoffMaxMs + 2_000,
    });
  });
});
