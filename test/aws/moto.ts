// moto in server mode for tests. ensureMotoInstalled() runs install-moto.sh, which keeps a
// virtualenv in .cache/moto-venv in step with test/aws/requirements.txt (a no-op when the
// stamp matches). startMoto() runs `moto_server` on a free 127.0.0.1 port and resolves once
// it answers; close() stops it. moto does not verify web identity tokens and its ECR token
// is always expired (expiresAt 2015-01-01).

import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const installScript = fileURLToPath(new URL('./install-moto.sh', import.meta.url));

let installed: Promise<string> | undefined;

/** Installs moto if needed; resolves to the moto_server path. Once per process. */
export function ensureMotoInstalled(): Promise<string> {
  installed ??= promisify(execFile)(installScript, [], { maxBuffer: 16 << 20 }).then(
    ({ stdout }) => stdout.trim().split('\n').at(-1) ?? '',
    (err: unknown) => {
      installed = undefined;
      throw err;
    },
  );
  return installed;
}

export interface Moto {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** POST /moto-api/reset: forget every resource and credential. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export async function resetMoto(endpoint: string): Promise<void> {
  const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`moto reset: HTTP ${res.status}`);
}

export async function startMoto(options: { timeoutMs?: number } = {}): Promise<Moto> {
  const motoServer = await ensureMotoInstalled();
  const timeoutMs = options.timeoutMs ?? 60_000;
  const child = spawn(motoServer, ['-H', '127.0.0.1', '-p', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Keep the test machine's AWS settings away from moto.
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', NO_PROXY: '*' },
  });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

  // Werkzeug logs every request; read both pipes for good so moto never blocks on a full pipe.
  const recent: string[] = [];
  const port = new Promise<number>((resolve) => {
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        recent.push(line);
        if (recent.length > 50) recent.shift();
        const m = /Running on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
        if (m !== null) resolve(Number(m[1]));
      });
    }
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    process.off('exit', killOnExit);
  };

  let timer: NodeJS.Timeout | undefined;
  try {
    const found = await Promise.race([
      port,
      exited.then((code) => Promise.reject(new Error(`moto_server exited with ${String(code)}`))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`moto_server did not start within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
    const endpoint = `http://127.0.0.1:${found}`;
    await untilAnswers(`${endpoint}/moto-api/data.json`, Date.now() + timeoutMs);
    return { endpoint, reset: () => resetMoto(endpoint), close: stop };
  } catch (err) {
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${recent.join('\n')}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

async function untilAnswers(url: string, deadline: number): Promise<void> {
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer in time`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
