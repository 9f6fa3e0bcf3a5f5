// A Service in front of webhook replicas, as kube-proxy makes one: each new TCP connection goes to the
// next backend whose readiness says yes. TLS passes through untouched.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Manifest } from '../kustomize/support.ts';

export interface Backend {
  readonly port: number;
  /** Whether this backend is in the Service's endpoints (its readiness). */
  readonly ready: () => boolean;
}

export interface Balancer {
  readonly port: number;
  /** Connections handed to each backend so far, by port. */
  readonly connections: ReadonlyMap<number, number>;
  close(): Promise<void>;
}

export async function startBalancer(backends: () => readonly Backend[]): Promise<Balancer> {
  const connections = new Map<number, number>();
  const sockets = new Set<Socket>();
  let next = 0;
  const server: Server = createServer((client) => {
    sockets.add(client);
    const ready = backends().filter((backend) => backend.ready());
    const backend = ready[next++ % Math.max(1, ready.length)];
    if (backend === undefined) {
      client.destroy();
      return;
    }
    connections.set(backend.port, (connections.get(backend.port) ?? 0) + 1);
    const upstream = connect(backend.port, '127.0.0.1');
    sockets.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The test's webhook configuration: reached at the balancer on loopback (the API server cannot reach
 * a Service here), for the test's namespaces only; the ClusterRole follows its test-unique name.
 */
export function throughBalancer(object: Manifest, configuration: string, port: number, labelKey: string, value: string): Manifest {
  const copy = structuredClone(object);
  if (copy.kind === 'MutatingWebhookConfiguration') {
    const webhooks = copy['webhooks'] as { clientConfig: Record<string, unknown>; namespaceSelector: unknown }[];
    for (const webhook of webhooks) {
      webhook.clientConfig = { url: `https://127.0.0.1:${port}/mutate-pods` };
      webhook.namespaceSelector = { matchLabels: { [labelKey]: value } };
    }
  }
  if (copy.kind === 'ClusterRole' && copy.metadata.name.startsWith('kube-ecrlogin-webhook')) {
    const rules = copy['rules'] as { resourceNames?: string[] }[];
    for (const rule of rules) if (rule.resourceNames !== undefined) rule.resourceNames = [configuration];
  }
  return copy;
}

/**
 * The flags of a webhook replica behind the balancer: serving on `port` of loopback, keeping
 * `configuration`'s caBundle, and a short Lease so that a stopped leader is replaced within seconds.
 */
export function webhookReplicaArgs(port: number, configuration: string): string[] {
  return [
    '--webhook',
    '--webhook-bind-address',
    `127.0.0.1:${port}`,
    '--webhook-cert-hosts',
    '127.0.0.1',
    '--webhook-configuration',
    configuration,
    '--webhook-shutdown-delay',
    '1s',
    '--leader-elect',
    '--lease-duration',
    '4s',
    '--renew-deadline',
    '3s',
    '--retry-period',
    '1s',
  ];
}
