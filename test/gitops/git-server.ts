// A Git repository served over smart HTTP on 127.0.0.1, for GitOps engines to pull from: `git
// http-backend` (Git's own CGI program) behind a small Node HTTP server. Read-only: only upload-pack
// (clone and fetch) is served. The test edits a work tree and pushes to the bare repository on disk.

import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const gitExecPath = (): string => execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim();

/** Git with a fixed identity and no user or system configuration. */
function git(cwd: string, args: readonly string[]): string {
  return execFileSync(
    'git',
    ['-c', 'user.name=kube-ecrlogin tests', '-c', 'user.email=tests@kube-ecrlogin.invalid', '-c', 'init.defaultBranch=main', ...args],
    {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  ).trim();
}

export interface GitServer {
  /** The clone URL of the repository, e.g. http://127.0.0.1:PORT/repo.git */
  readonly url: string;
  /** Requests served, by service (git-upload-pack) and path: enough to see that an engine fetched. */
  readonly requests: readonly string[];
  /** Writes files (path relative to the repository root -> content; null deletes) in the work tree. */
  write(files: Readonly<Record<string, string | null>>): void;
  /** Copies a directory from this machine into the work tree. */
  copy(from: string, to: string): void;
  /** Commits everything in the work tree and pushes it to main; returns the commit's hash. */
  commit(message: string): string;
  close(): Promise<void>;
}

/** Creates a bare repository with a work tree beside it and serves it on a free loopback port. */
export async function startGitServer(): Promise<GitServer> {
  const root = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-git-'));
  const bare = join(root, 'served', 'repo.git');
  const work = join(root, 'work');
  mkdirSync(bare, { recursive: true });
  git(bare, ['init', '--bare', '--quiet']);
  git(root, ['init', '--quiet', work]);
  git(work, ['remote', 'add', 'origin', bare]);
  const backend = join(gitExecPath(), 'git-http-backend');
  const requests: string[] = [];

  const server: Server = createServer((req, res) => {
    serve(backend, join(root, 'served'), req, res, requests);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the Git server has no port');

  return {
    url: `http://127.0.0.1:${address.port}/repo.git`,
    requests,
    write(files) {
      for (const [path, content] of Object.entries(files)) {
        const file = join(work, path);
        if (content === null) {
          rmSync(file, { force: true });
        } else {
          mkdirSync(dirname(file), { recursive: true });
          writeFileSync(file, content);
        }
      }
    },
    copy(from, to) {
      cpSync(from, join(work, to), { recursive: true, dereference: true });
    },
    commit(message) {
      git(work, ['add', '--all']);
      git(work, ['commit', '--quiet', '--allow-empty', '-m', message]);
      git(work, ['push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/main']);
      return git(work, ['rev-parse', 'HEAD']);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Runs one request through git http-backend (CGI/1.1): request body to its stdin, its stdout parsed as a CGI response. */
function serve(backend: string, projectRoot: string, req: IncomingMessage, res: ServerResponse, requests: string[]): void {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  // Read-only: clone and fetch; receive-pack (push) is refused.
  if (url.pathname.endsWith('/git-receive-pack') || url.searchParams.get('service') === 'git-receive-pack') {
    res.writeHead(403).end('read-only\n');
    return;
  }
  requests.push(`${req.method ?? 'GET'} ${url.pathname}`);
  const header = (name: string): string => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(', ') : (value ?? '');
  };
  const child = spawn(backend, [], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      CONTENT_TYPE: header('content-type'),
      ...(req.headers['content-length'] !== undefined ? { CONTENT_LENGTH: header('content-length') } : {}),
      HTTP_CONTENT_ENCODING: header('content-encoding'),
      GIT_PROTOCOL: header('git-protocol'),
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  req.pipe(child.stdin);
  child.stdin.on('error', () => undefined); // the backend may answer (an error) before reading the body
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? { at: crlf, length: 4 } : lf >= 0 ? { at: lf, length: 2 } : undefined;
    if (end === undefined) return;
    headersDone = true;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end.at).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    res.write(head.subarray(end.at + end.length));
  });
  child.on('close', (code) => {
    if (!headersDone) {
      res.writeHead(500).end(`git http-backend exited ${code ?? 'on a signal'}: ${stderr}`);
      return;
    }
    res.end();
  });
}
