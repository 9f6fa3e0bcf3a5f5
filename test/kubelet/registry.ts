// An ECR-shaped private registry: the OCI distribution endpoints a pull uses (GET /v2/, manifests and
// blobs by GET and HEAD), over TLS, for several ECR hosts at once (chosen by the Host header, so that
// every host can sit on 127.0.0.1:443). Authentication is ECR's: HTTP Basic with user `AWS` and a
// password that must be a token GetAuthorizationToken issued (the TokenBook) for the host's region and
// not yet expired on the registry's clock. As ECR: no credentials get a 401 with a Basic challenge;
// an expired token gets 403 "Your authorization token has expired" (a Docker client of 2016 printed
// that body as "error parsing HTTP 403 response body", awslabs/amazon-ecr-credential-helper#7).
//
// Every request is logged (host, path, user, outcome, status): tests read who pulled what.

import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseRegistryHost } from '../../src/registry.ts';
import { mediaTypes, type Image } from './oci.ts';
import type { TokenBook } from './tokens.ts';

export type Outcome = 'ok' | 'anonymous' | 'unknown-token' | 'wrong-region' | 'expired' | 'not-found';

export interface RegistryRequest {
  /** Epoch ms on the registry's clock. */
  readonly at: number;
  readonly host: string;
  readonly method: string;
  readonly path: string;
  /** The Basic user presented, if any. */
  readonly user: string | undefined;
  readonly outcome: Outcome;
  readonly status: number;
  /** For manifest and blob requests. */
  readonly repository?: string;
  readonly kind?: 'manifest' | 'blob';
}

export interface RegistryOptions {
  readonly cert: string;
  readonly key: string;
  readonly tokens: TokenBook;
  /** 443 (the default) lets `auths` keys without a port match image references without one. */
  readonly port?: number;
  /** The registry's clock, epoch ms (default Date.now). */
  readonly now?: () => number;
}

export interface Registry {
  readonly port: number;
  /** Serves `image` as <host>/<repository>:<tag> (host must be an ECR host). */
  push(host: string, repository: string, tag: string, image: Image): void;
  /** Requests so far, oldest first. */
  readonly requests: readonly RegistryRequest[];
  close(): Promise<void>;
}

/** Where the registry keeps images: host, then repository, then tag or digest. */
interface Repository {
  readonly tags: Map<string, Image>;
  readonly blobs: Map<string, Buffer>;
}
type Store = Map<string, Map<string, Repository>>;

const expiredMessage = 'Your authorization token has expired. Reauthenticate and try again.';

export async function startRegistry(options: RegistryOptions): Promise<Registry> {
  const now = options.now ?? Date.now;
  const store: Store = new Map();
  const requests: RegistryRequest[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'https://registry').pathname;
    const record = (entry: Omit<RegistryRequest, 'at' | 'host' | 'method' | 'path'>): void => {
      requests.push({ at: now(), host, method, path, ...entry });
    };
    const parsed = parseRegistryHost(host);
    const repositories = store.get(host);
    if (!parsed.ok || repositories === undefined) {
      record({ user: undefined, outcome: 'not-found', status: 404 });
      sendError(res, method, 404, 'NAME_UNKNOWN', `no registry ${host}`);
      return;
    }
    const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
    const repository = match?.[1] ?? '';
    const kind = match?.[2] === 'manifests' ? 'manifest' : 'blob';
    const about = match === null ? {} : ({ repository, kind } as const);
    const auth = authenticate(req.headers.authorization, parsed.value.region, options.tokens, now());
    if (auth.outcome !== 'ok') {
      record({ user: auth.user, outcome: auth.outcome, status: auth.outcome === 'expired' ? 403 : 401, ...about });
      if (auth.outcome === 'expired') {
        sendError(res, method, 403, 'DENIED', expiredMessage);
      } else {
        res.setHeader('www-authenticate', `Basic realm="https://${host}/",service="ecr.amazonaws.com"`);
        sendError(res, method, 401, 'DENIED', 'Not Authorized');
      }
      return;
    }
    if (path === '/v2/' || path === '/v2') {
      record({ user: auth.user, outcome: 'ok', status: 200 });
      send(res, method, 200, 'application/json', Buffer.from('{}'));
      return;
    }
    const entry = repositories.get(repository);
    const reference = decodeURIComponent(match?.[3] ?? '');
    const image =
      kind === 'manifest' ? (entry?.tags.get(reference) ?? [...(entry?.tags.values() ?? [])].find((i) => i.manifestDigest === reference)) : undefined;
    const body = kind === 'manifest' ? image?.manifest : entry?.blobs.get(reference);
    if (match === null || body === undefined) {
      record({ user: auth.user, outcome: 'not-found', status: 404, ...about });
      sendError(res, method, 404, kind === 'manifest' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN', `${repository}:${reference} not found`);
      return;
    }
    record({ user: auth.user, outcome: 'ok', status: 200, ...about });
    if (image !== undefined) res.setHeader('docker-content-digest', image.manifestDigest);
    else res.setHeader('docker-content-digest', reference);
    send(res, method, 200, kind === 'manifest' ? mediaTypes.manifest : 'application/octet-stream', body);
  };

  const server = https.createServer({ cert: options.cert, key: options.key }, (req, res) => {
    req.resume();
    req.on('end', () => handle(req, res));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 443, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    port: (server.address() as AddressInfo).port,
    push(host, repository, tag, image) {
      const parsed = parseRegistryHost(host);
      if (!parsed.ok) throw new Error(parsed.error);
      const repositories = store.get(parsed.value.host) ?? new Map<string, Repository>();
      store.set(parsed.value.host, repositories);
      const entry: Repository = repositories.get(repository) ?? { tags: new Map(), blobs: new Map() };
      repositories.set(repository, entry);
      entry.tags.set(tag, image);
      for (const [digest, blob] of image.blobs) entry.blobs.set(digest, blob);
    },
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Who a request is, by ECR's rules: Basic auth as AWS with an issued, unexpired token for this region. */
export function authenticate(header: string | undefined, region: string, tokens: TokenBook, now: number): { outcome: Outcome; user: string | undefined } {
  const basic = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (basic === null) return { outcome: 'anonymous', user: undefined };
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon < 0 ? decoded : decoded.slice(0, colon);
  const token = user === 'AWS' ? tokens.find(decoded.slice(colon + 1)) : undefined;
  if (token === undefined) return { outcome: 'unknown-token', user };
  if (token.region !== region) return { outcome: 'wrong-region', user };
  if (token.expiresAt <= now) return { outcome: 'expired', user };
  return { outcome: 'ok', user };
}

function sendError(res: ServerResponse, method: string, status: number, code: string, message: string): void {
  send(res, method, status, 'application/json', Buffer.from(JSON.stringify({ errors: [{ code, message }] })));
}

function send(res: ServerResponse, method: string, status: number, contentType: string, body: Buffer): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': body.length, 'docker-distribution-api-version': 'registry/2.0' });
  res.end(method === 'HEAD' ? undefined : body);
}
