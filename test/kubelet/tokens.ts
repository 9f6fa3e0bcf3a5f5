// Which ECR tokens exist: a pass-through in front of the AWS test server that notes every token
// GetAuthorizationToken hands out (password, region, expiry), so that the registry can check a
// password the way ECR does, against the tokens AWS actually issued.
//
// The controller's AWS SDK talks to this endpoint; each request goes on to the AWS test server byte for
// byte, Host header included, so its SigV4 signatures still verify there.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseRegistryHost } from '../../src/registry.ts';

/** One token as GetAuthorizationToken issued it. */
export interface IssuedToken {
  readonly password: string;
  /** The caller's account and the region the token is for (from proxyEndpoint). */
  readonly account: string;
  readonly region: string;
  /** Epoch ms. */
  readonly expiresAt: number;
}

/** Every token issued so far, by password. */
export class TokenBook {
  readonly #tokens = new Map<string, IssuedToken>();

  add(token: IssuedToken): void {
    this.#tokens.set(token.password, token);
  }

  find(password: string): IssuedToken | undefined {
    return this.#tokens.get(password);
  }

  /** The newest token for a region, if any. */
  latest(region: string): IssuedToken | undefined {
    return [...this.#tokens.values()].filter((token) => token.region === region).at(-1);
  }

  get size(): number {
    return this.#tokens.size;
  }
}

/** Reads the tokens out of a GetAuthorizationToken response body. */
export function tokensOf(body: string): IssuedToken[] {
  const parsed = JSON.parse(body) as { authorizationData?: { authorizationToken?: string; expiresAt?: number; proxyEndpoint?: string }[] };
  const tokens: IssuedToken[] = [];
  for (const data of parsed.authorizationData ?? []) {
    const decoded = Buffer.from(data.authorizationToken ?? '', 'base64').toString('utf8');
    const host = parseRegistryHost(data.proxyEndpoint ?? '');
    if (!decoded.startsWith('AWS:') || !host.ok || data.expiresAt === undefined) continue;
    tokens.push({ password: decoded.slice('AWS:'.length), account: host.value.account, region: host.value.region, expiresAt: data.expiresAt * 1000 });
  }
  return tokens;
}

export interface TokenTap {
  /** http://127.0.0.1:PORT: what AWS_ENDPOINT_URL names. */
  readonly endpoint: string;
  readonly book: TokenBook;
  close(): Promise<void>;
}

/** Starts the pass-through to `upstream` (the AWS test server's endpoint). */
export async function startTokenTap(upstream: string, book = new TokenBook()): Promise<TokenTap> {
  const target = new URL(upstream);
  const server = http.createServer((req, res) => {
    const forward = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          const operation = req.headers['x-amz-target'];
          if (answer.statusCode === 200 && typeof operation === 'string' && operation.endsWith('.GetAuthorizationToken')) {
            for (const token of tokensOf(body.toString('utf8'))) book.add(token);
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers).end(body);
        });
        answer.on('error', () => res.destroy());
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    book,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
