// A TCP proxy between the controller and kube-apiserver, to cut its connections (watches, requests,
// Lease renewals) on demand. TLS passes through untouched: the controller still verifies the
// apiserver's certificate, whose 127.0.0.1 address does not depend on the port.

import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

export interface TcpProxy {
  /** https://127.0.0.1:PORT, for the controller's kubeconfig. */
  readonly url: string;
  readonly port: number;
  /** Connections open now. */
  readonly open: number;
  /** Connections cut so far. */
  readonly cut: number;
  /** Resets every open connection (RST to both sides); new connections are accepted as before. */
  cutAll(): number;
  /** Cuts every open connection every intervalMs until the returned function is called. */
  cutEvery(intervalMs: number): () => void;
  /** A partition: cuts every connection and resets new ones until the returned function is called. */
  partition(): () => void;
  close(): Promise<void>;
}

export async function startProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let cut = 0;
  let partitioned = false;
  const server: Server = createServer((client) => {
    if (partitioned) {
      cut++;
      reset(client);
      return;
    }
    const upstream = connect(target.port, target.host);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  const cutAll = (): number => {
    const n = pairs.size;
    for (const pair of [...pairs]) {
      pairs.delete(pair);
      for (const socket of pair) reset(socket);
    }
    cut += n;
    return n;
  };
  return {
    url: `https://127.0.0.1:${address.port}`,
    port: address.port,
    get open() {
      return pairs.size;
    },
    get cut() {
      return cut;
    },
    cutAll,
    cutEvery(intervalMs) {
      const timer = setInterval(cutAll, intervalMs);
      return () => clearInterval(timer);
    },
    partition() {
      partitioned = true;
      cutAll();
      return () => {
        partitioned = false;
      };
    },
    close: async () => {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function reset(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
