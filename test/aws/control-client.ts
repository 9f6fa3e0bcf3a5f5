// Out-of-process use of the AWS test server: spawn test/aws/main.ts as a child process
// and drive its /_test/ control plane over HTTP (counters, faults, trust table).

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { TestConfig } from './config.ts';
import type { ActiveFault, Api, FaultSpec } from './faults.ts';
import type { Call, Counters } from './recorder.ts';

export interface ControlClient {
  calls(limit?: number): Promise<{ counters: Counters; calls: Call[] }>;
  reset(options?: { faults?: boolean }): Promise<void>;
  setFaults(...specs: FaultSpec[]): Promise<string[]>;
  listFaults(): Promise<ActiveFault[]>;
  clearFaults(api?: Api): Promise<void>;
  trust(config: TestConfig): Promise<void>;
}

export function controlClient(endpoint: string): ControlClient {
  async function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const init: RequestInit = { method };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(`${endpoint}/_test/${path}`, init);
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} /_test/${path}: ${res.status} ${text}`);
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  }
  return {
    calls: async (limit) => (await call('GET', limit === undefined ? 'calls' : `calls?limit=${limit}`)) as { counters: Counters; calls: Call[] },
    reset: async (options = {}) => {
      await call('POST', 'reset', options);
    },
    setFaults: async (...specs) => ((await call('POST', 'faults', specs)) as { ids: string[] }).ids,
    listFaults: async () => (await call('GET', 'faults')) as ActiveFault[],
    clearFaults: async (api) => {
      await call('DELETE', api === undefined ? 'faults' : `faults?api=${api}`);
    },
    trust: async (config) => {
      await call('POST', 'trust', config);
    },
  };
}

export interface SpawnedServer {
  endpoint: string;
  pid: number;
  control: ControlClient;
  /** SIGTERM, then wait for the exit. */
  close(): Promise<void>;
}

/** Starts main.ts in a child Node process (this process's node binary) with the given CLI flags. */
export async function spawnAwsTestServer(args: string[] = []): Promise<SpawnedServer> {
  const main = fileURLToPath(new URL('./main.ts', import.meta.url));
  const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => {
      reject(new Error(`aws test server exited with ${String(code)} before printing its endpoint`));
    });
  });
  lines.on('line', () => undefined);
  const { endpoint, pid } = JSON.parse(first) as { endpoint: string; pid: number };
  return {
    endpoint,
    pid,
    control: controlClient(endpoint),
    close: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
