// The chaos report: a Markdown table (stdout and report.md) and JSON (report.json).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FaultResult } from './engine.ts';

export interface ReportMeta {
  readonly date: string;
  readonly command: string;
  readonly machine: string;
  readonly totalSeconds: number;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly passed: boolean;
}

export function table(results: readonly FaultResult[]): string {
  const rows = results.map((r) => [
    r.fault,
    r.durationSeconds.toFixed(1),
    `${r.coverage.toFixed(r.coverage === 100 ? 0 : 3)}%`,
    String(r.violations),
    r.recoverySeconds === null ? 'n/a' : r.recoverySeconds.toFixed(1),
    r.minHeadroomSeconds.toFixed(1),
  ]);
  const header = ['fault', 'duration (s)', 'coverage', 'violations', 'recovery (s)', 'least token life left (s)'];
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

export function markdown(meta: ReportMeta, results: readonly FaultResult[]): string {
  const details = results.flatMap((r) => [...(r.note !== undefined ? [`- ${r.fault}: ${r.note}`] : []), ...r.details.map((d) => `- ${r.fault}: ${d}`)]);
  return [
    `# kube-ecrlogin chaos report`,
    '',
    `\`${meta.command}\` on ${meta.date}, ${meta.machine}; ${meta.totalSeconds.toFixed(0)} s in all. ${meta.passed ? 'Every fault: coverage 100%, no violation.' : 'FAILED: see below.'}`,
    '',
    table(results),
    '',
    ...(details.length > 0 ? ['Notes and findings:', '', ...details, ''] : []),
  ].join('\n');
}

export function writeReport(dir: string, meta: ReportMeta, results: readonly FaultResult[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'report.md'), markdown(meta, results));
  writeFileSync(join(dir, 'report.json'), JSON.stringify({ ...meta, faults: results }, null, 2) + '\n');
}
