// The controller as separate processes (`node src/cli.ts run`), supervised as a kubelet would: a
// replica that exits is started again (same pod name, so the same leader-election identity) after a
// short backoff, unless a fault holds it down. Logs go to a file; JSON log lines can be watched.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../cluster/controlplane.ts';

export interface LogLine {
  readonly level?: string;
  readonly message?: string;
  readonly [key: string]: unknown;
}

export interface ReplicaOptions {
  /** The pod name (POD_NAME): its leader-election identity, kept across restarts. */
  readonly name: string;
  /** Arguments after `run`. */
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly logFile: string;
}

export class Replica {
  readonly name: string;
  readonly #o: ReplicaOptions;
  readonly #log: WriteStream;
  #child: ChildProcess | undefined;
  #held = false;
  #stopped = false;
  #restartDelayMs = 1_000;
  #startedAt = 0;
  #listeners = new Set<(line: LogLine) => void>();
  /** Starts, including restarts after an exit. */
  starts = 0;
  /** Exits we did not ask for (crashes, lost leadership). */
  unexpectedExits = 0;

  constructor(options: ReplicaOptions) {
    this.#o = options;
    this.name = options.name;
    mkdirSync(dirname(options.logFile), { recursive: true });
    this.#log = createWriteStream(options.logFile, { flags: 'a' });
  }

  get pid(): number | undefined {
    return this.#child?.exitCode === null && this.#child.signalCode === null ? this.#child.pid : undefined;
  }

  /** Resident set size of the running process, bytes (from /proc/<pid>/status). */
  rss(): number | undefined {
    const pid = this.pid;
    if (pid === undefined) return undefined;
    try {
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
    } catch {
      return undefined;
    }
  }

  /** Calls fn for every JSON log line until the returned function is called. */
  onLog(fn: (line: LogLine) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  start(): void {
    if (this.pid !== undefined) return;
    this.#stopped = false;
    this.#held = false;
    const child = spawn(process.execPath, [join(repoRoot, 'src', 'cli.ts'), 'run', ...this.#o.args], {
      cwd: repoRoot,
      // Only what a Pod would have: nothing of this process's environment (a test runner's, AWS settings).
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...this.#o.env, POD_NAME: this.name },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    this.starts++;
    this.#startedAt = Date.now();
    this.#write(`--- ${new Date().toISOString()} start #${this.starts} pid ${child.pid ?? '?'}\n`);
    child.stdout?.on('data', (chunk: Buffer) => this.#write(chunk));
    if (child.stderr !== null) {
      createInterface({ input: child.stderr }).on('line', (text) => {
        this.#write(`${text}\n`);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          return;
        }
        for (const listener of this.#listeners) listener(line);
      });
    }
    child.once('exit', (code, signal) => {
      this.#write(`--- ${new Date().toISOString()} exit code ${String(code)} signal ${String(signal)}\n`);
      if (this.#child !== child || this.#held || this.#stopped) return;
      // Like a kubelet: start it again, backing off while it keeps exiting soon after starting.
      this.unexpectedExits++;
      this.#restartDelayMs = Date.now() - this.#startedAt > 20_000 ? 1_000 : Math.min(this.#restartDelayMs * 2, 8_000);
      setTimeout(() => {
        if (!this.#held && !this.#stopped && this.#child === child) this.start();
      }, this.#restartDelayMs).unref();
    });
  }

  /** Kills the process (SIGKILL by default) and keeps it down until start(). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.#held = true;
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }

  /** SIGTERM, waits for a graceful exit (SIGKILL after timeoutMs); not restarted. */
  async stop(timeoutMs = 15_000): Promise<void> {
    this.#stopped = true;
    const child = this.#child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    }
    // Its last lines may arrive after 'exit': the log ends once its output has closed.
    for (const output of [child?.stdout, child?.stderr]) if (output?.closed === false) await once(output, 'close');
    await new Promise<void>((resolve) => this.#log.end(resolve));
  }

  /** Appends to the replica's log; output that arrives after stop() ended it is dropped, not an error. */
  #write(text: string | Buffer): void {
    if (!this.#log.writableEnded) this.#log.write(text);
  }
}
