// Runs the kube-ecrlogin command as users do: a separate process of src/cli.ts, with only the
// environment given (plus PATH and HOME), collecting its exit code and output.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../cluster/controlplane.ts';

export const cliPath = join(repoRoot, 'src', 'cli.ts');

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** timeoutMs: kill it (SIGKILL) if it has not exited by then; its code is then null. */
export function runCommand(args: readonly string[], env: Record<string, string> = {}, options: { timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs, killSignal: 'SIGKILL' as const } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
