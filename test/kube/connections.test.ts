import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { shareConnections } from '../../src/kube/connections.ts';
import { Informer } from '../../src/kube/informer.ts';
import { createLogger } from '../../src/log.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';

/** Counts the TCP connections this process opens while `work` runs. */
async function connectionsDuring(work: () => Promise<void>): Promise<number> {
  let sockets = 0;
  const count = (): void => {
    sockets++;
  };
  const channel = diagnostics.channel('net.client.socket');
  channel.subscribe(count);
  try {
    await work();
  } finally {
    channel.unsubscribe(count);
  }
  return sockets;
}

/** A fresh KubeConfig for the shared control plane's admin, as loadKubeConfig would build it. */
function freshConfig(): k8s.KubeConfig {
  const config = new k8s.KubeConfig();
  config.loadFromString(cluster().adminConfig().exportConfig());
  return config;
}

async function reads(config: k8s.KubeConfig, count: number): Promise<void> {
  const core = config.makeApiClient(k8s.CoreV1Api);
  // Four in flight, as the controller's default workers.
  const queue = Array.from({ length: count }, (_, i) => i);
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) await core.readNamespace({ name: 'default' });
    }),
  );
}

describe('shared connections to the apiserver', () => {
  it('forty API requests from clients of one KubeConfig open one connection, not forty', async () => {
    const config = shareConnections(freshConfig());
    const opened = await connectionsDuring(() => reads(config, 40));
    assert.ok(opened <= 2, `opened ${opened} connections`);
  });

  it('client-node alone opens a connection per request (what shareConnections is for)', async () => {
    // If a client-node upgrade fixes this, shareConnections can go.
    const opened = await connectionsDuring(() => reads(freshConfig(), 10));
    assert.equal(opened, 10);
  });

  it('a watch and API requests share the pool, and the watch still delivers events', async () => {
    const config = shareConnections(freshConfig());
    const name = uniqueName('connections');
    const informer = new Informer<k8s.V1Namespace>({
      name: 'namespaces',
      config,
      path: '/api/v1/namespaces',
      list: (page) => config.makeApiClient(k8s.CoreV1Api).listNamespace({ ...page, labelSelector: `connections-test=${name}` }),
      labelSelector: `connections-test=${name}`,
      log: createLogger({ level: 'error' }),
    });
    const opened = await connectionsDuring(async () => {
      await informer.start();
      try {
        const core = config.makeApiClient(k8s.CoreV1Api);
        await core.createNamespace({ body: { metadata: { name, labels: { 'connections-test': name } } } });
        await eventually('the watch delivers the namespace', () =>
          informer.get(name) === undefined ? Promise.reject(new Error('not yet')) : Promise.resolve(),
        );
        await reads(config, 20);
        await core.deleteNamespace({ name });
      } finally {
        await informer.stop();
      }
    });
    assert.ok(opened <= 2, `opened ${opened} connections`);
  });

  it('wrapping twice changes nothing', () => {
    const config = freshConfig();
    const once = shareConnections(config);
    const wrapped = Object.getOwnPropertyDescriptor(once, 'applySecurityAuthentication')?.value as unknown;
    assert.equal(typeof wrapped, 'function');
    assert.equal(shareConnections(once), config);
    assert.equal(Object.getOwnPropertyDescriptor(config, 'applySecurityAuthentication')?.value, wrapped);
  });
});
