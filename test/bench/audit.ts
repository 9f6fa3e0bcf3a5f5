// Reads the apiserver's audit log as it grows, for the benchmark: every successful write, with who
// made it and the server's own timestamps. Reading from an offset keeps each poll proportional to
// what is new, so that watching for 5,000 namespaces to complete costs the machine nothing much.

import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import type { AuditEvent } from '../cluster/controlplane.ts';

/** One write request, as the benchmark uses it. */
export interface Write {
  readonly user: string;
  readonly verb: string;
  readonly resource: string;
  readonly namespace: string;
  readonly name: string;
  readonly code: number;
  /** When the apiserver received the request, epoch ms. */
  readonly received: number;
  /** When the apiserver finished it (ResponseComplete), epoch ms. */
  readonly completed: number;
}

export class AuditTail {
  readonly #file: string;
  #offset = 0;
  #partial = '';
  /** Every write read so far, in log order. */
  readonly writes: Write[] = [];

  constructor(file: string) {
    this.#file = file;
  }

  /** Reads what was appended since the last call; returns the new writes. */
  poll(): Write[] {
    if (!existsSync(this.#file)) return [];
    const size = statSync(this.#file).size;
    if (size <= this.#offset) return [];
    const fd = openSync(this.#file, 'r');
    const chunks: string[] = [];
    try {
      const buffer = Buffer.alloc(Math.min(size - this.#offset, 8 << 20));
      while (this.#offset < size) {
        const read = readSync(fd, buffer, 0, Math.min(buffer.length, size - this.#offset), this.#offset);
        if (read === 0) break;
        this.#offset += read;
        chunks.push(buffer.toString('utf8', 0, read));
      }
    } finally {
      closeSync(fd);
    }
    // Multi-byte characters never straddle chunks here: audit lines are ASCII JSON.
    const text = this.#partial + chunks.join('');
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    const fresh: Write[] = [];
    for (const line of lines) {
      const write = parseWrite(line);
      if (write !== undefined) fresh.push(write);
    }
    for (const write of fresh) this.writes.push(write);
    return fresh;
  }
}

const writeVerbs = new Set(['create', 'update', 'patch', 'delete', 'deletecollection', 'apply']);

export function parseWrite(line: string): Write | undefined {
  if (line === '') return undefined;
  let event: AuditEvent;
  try {
    event = JSON.parse(line) as AuditEvent;
  } catch {
    return undefined;
  }
  if (!writeVerbs.has(event.verb)) return undefined;
  return {
    user: event.impersonatedUser?.username ?? event.user.username,
    verb: event.verb,
    resource: event.objectRef?.subresource ? `${event.objectRef.resource ?? ''}/${event.objectRef.subresource}` : (event.objectRef?.resource ?? ''),
    namespace: event.objectRef?.namespace ?? '',
    name: event.objectRef?.name ?? '',
    code: event.responseStatus?.code ?? 0,
    received: Date.parse(event.requestReceivedTimestamp),
    completed: Date.parse(event.stageTimestamp),
  };
}

export function succeeded(write: Write): boolean {
  return write.code >= 200 && write.code < 300;
}
