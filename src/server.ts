// HTTP endpoints for operations: /metrics (Prometheus) and /healthz, /readyz (probes).

import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { HostPort } from './config/options.ts';
import type { Metrics } from './metrics.ts';

export interface Probe {
  /** Undefined when healthy, else why not. */
  (): string | undefined;
}

export interface Endpoints {
  readonly metrics?: Metrics;
  readonly healthz?: Probe;
  readonly readyz?: Probe;
}

/** Serves the given endpoints on address; resolves once listening. */
export async function serve(address: HostPort, endpoints: Endpoints): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const probe = path === '/healthz' ? endpoints.healthz : path === '/readyz' ? endpoints.readyz : undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (probe !== undefined) {
      const problem = probe();
      res.writeHead(problem === undefined ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(problem === undefined ? 'ok\n' : `${problem}\n`);
      return;
    }
    if (path === '/metrics' && endpoints.metrics !== undefined) {
      const registry = endpoints.metrics.registry;
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (error: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.listen(address.port, address.host);
  await once(server, 'listening');
  return server;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Watches the event loop: a timer that should fire every intervalMs; if it has not fired for
 * stallMs, the loop is stalled and /healthz fails, so that the kubelet restarts us.
 */
export function eventLoopWatchdog(intervalMs = 1_000, stallMs = 30_000): { probe: Probe; stop(): void } {
  let last = Date.now();
  const timer = setInterval(() => {
    last = Date.now();
  }, intervalMs);
  timer.unref();
  return {
    probe: () => {
      const lag = Date.now() - last;
      return lag > stallMs ? `event loop stalled for ${lag} ms` : undefined;
    },
    stop: () => clearInterval(timer),
  };
}
