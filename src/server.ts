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
 * Watches the event loop: a timer due every intervalMs measures how late it fires. A blocked loop
 * answers no probe at all (the kubelet's timeout catches that); a loop that was held up for stallMs
 * or more in the last windowMs fails /healthz, so that the kubelet restarts a process that keeps stalling.
 */
export function eventLoopWatchdog(options: { intervalMs?: number; stallMs?: number; windowMs?: number } = {}): { probe: Probe; stop(): void } {
  const intervalMs = options.intervalMs ?? 1_000;
  const stallMs = options.stallMs ?? 10_000;
  const windowMs = options.windowMs ?? 60_000;
  let last = Date.now();
  /** The last stall seen: how long, and when it ended. */
  let stall: { ms: number; at: number } | undefined;
  const timer = setInterval(() => {
    const now = Date.now();
    const late = now - last - intervalMs;
    if (late >= stallMs) stall = { ms: late, at: now };
    last = now;
  }, intervalMs);
  timer.unref();
  return {
    probe: () => {
      const now = Date.now();
      const current = now - last - intervalMs;
      if (current >= stallMs) return `event loop stalled for ${current} ms`;
      if (stall !== undefined && now - stall.at < windowMs) return `event loop stalled for ${stall.ms} ms, ${now - stall.at} ms ago`;
      return undefined;
    },
    stop: () => clearInterval(timer),
  };
}
