// Polls a check until it passes or a deadline passes: tests never sleep to wait for an outcome.

import { setTimeout as sleep } from 'node:timers/promises';

export interface EventuallyOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

/** Runs check until it resolves; rejects with the last failure after the timeout. */
export async function eventually<T>(what: string, check: () => Promise<T>, { timeoutMs = 30_000, intervalMs = 100 }: EventuallyOptions = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() >= deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${describe(error)}`, { cause: error });
      }
    }
    await sleep(intervalMs);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
