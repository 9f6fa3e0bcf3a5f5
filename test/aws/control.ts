// The HTTP control plane under /_test/ (a path AWS never uses), for processes that run the
// server out of process (benchmarks, chaos runs):
//   GET    /_test/calls[?limit=N]  -> { counters, calls } (the last N calls; all when absent)
//   POST   /_test/reset            -> clears counters and calls; {"faults": true} clears faults too
//   GET    /_test/faults           -> active faults
//   POST   /_test/faults           -> a FaultSpec or an array of them -> { ids }
//   DELETE /_test/faults[?api=X]   -> clears faults (all, or one API's)
//   GET    /_test/trust            -> { default, roles, issuers }
//   POST   /_test/trust            -> applies a TestConfig (users, issuers, roles, default, lifetime)

import type { IncomingMessage, ServerResponse } from 'node:http';
import { applyTestConfig, parseTestConfig } from './config.ts';
import { apis, parseFaultSpec } from './faults.ts';
import type { Api } from './faults.ts';
import type { AwsTestServer } from './server.ts';

export const controlPrefix = '/_test/';

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function parseBody(body: Buffer): unknown {
  return body.length === 0 ? undefined : (JSON.parse(body.toString('utf8')) as unknown);
}

export function handleControl(server: AwsTestServer, req: IncomingMessage, body: Buffer, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://control');
  const route = `${req.method ?? 'GET'} ${url.pathname}`;
  try {
    switch (route) {
      case 'GET /_test/calls': {
        const raw = url.searchParams.get('limit');
        const limit = raw === null ? Infinity : Number(raw);
        if (!(limit >= 0)) throw new TypeError(`limit must be a number >= 0, got ${String(raw)}`);
        const calls = limit >= server.calls.length ? server.calls : server.calls.slice(server.calls.length - limit);
        sendJson(res, 200, { counters: server.counters(), calls });
        return;
      }
      case 'POST /_test/reset': {
        const opts = parseBody(body) as { faults?: unknown } | undefined;
        server.resetCounters();
        if (opts?.faults === true) server.faults.clear();
        sendJson(res, 204, undefined);
        return;
      }
      case 'GET /_test/faults':
        sendJson(res, 200, server.faults.list());
        return;
      case 'POST /_test/faults': {
        const parsed = parseBody(body);
        const specs = (Array.isArray(parsed) ? parsed : [parsed]).map(parseFaultSpec);
        sendJson(res, 200, { ids: specs.map((s) => server.faults.set(s)) });
        return;
      }
      case 'DELETE /_test/faults': {
        const api = url.searchParams.get('api');
        if (api !== null && !apis.includes(api as Api)) throw new TypeError(`unknown api: ${api}`);
        server.faults.clear(api === null ? {} : { api: api as Api });
        sendJson(res, 204, undefined);
        return;
      }
      case 'GET /_test/trust':
        sendJson(res, 200, {
          default: server.policies.default,
          roles: server.policies.roles(),
          issuers: server.issuers().map(({ issuer, audiences }) => ({ issuer, audiences })),
        });
        return;
      case 'POST /_test/trust':
        applyTestConfig(server, parseTestConfig(parseBody(body)));
        sendJson(res, 204, undefined);
        return;
      default:
        sendJson(res, 404, { error: `no control route ${route}` });
    }
  } catch (err) {
    sendJson(res, 400, { error: err instanceof Error ? err.message : String(err) });
  }
}
