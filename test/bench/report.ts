// The benchmark's output: a markdown table, JSON (one object per workload) and an SVG chart of
// annotate-to-ready latency and Kubernetes writes against N. Pure, apart from writeReports.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkloadResult } from './workload.ts';

export interface RunInfo {
  /** ISO time the run started. */
  readonly date: string;
  readonly command: string;
  readonly machine: { readonly cores: number; readonly memoryGiB: number; readonly cpu: string };
  /** 1-minute load average at the start and the end of the run. */
  readonly load: { readonly start: number; readonly end: number };
  /** How the controller ran: "node <the image's flags> dist/kube-ecrlogin.mjs" (the bundle, as the image runs it) or "node src/cli.ts". */
  readonly controller: string;
  /** The base Deployment's memory limit, against which the image's heap share was resolved. */
  readonly memoryLimitMiB: number;
  readonly workers: number;
  readonly streamCount: number;
  readonly streamRate: number;
  readonly resyncSeconds: number;
}

/** The p-quantile (0..1) by nearest rank; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** The targets of issue 19 (cold start, memory, CPU) and the earlier ones still in force. */
const targets = {
  coldStartFactor: 1.3,
  p99MsAt1000: 1000,
  peakRssMiBAt5000: 200,
  peakRssMiBAt10000: 256,
  cpuSecondsAt5000: 40,
  idleCpuSecondsPerMinuteAt5000: 0.5,
};

function num(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return value.toFixed(digits);
}

function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

/** The markdown report: what ran where, the table, the targets, and (unless left out) the machine's other load. */
export function renderMarkdown(info: RunInfo, results: readonly WorkloadResult[], options: { conditions?: boolean } = {}): string {
  const lines: string[] = [];
  lines.push(
    `${info.date.slice(0, 10)}, ${info.machine.cores} cores (${info.machine.cpu}), ${info.machine.memoryGiB} GiB; ` +
      `load average ${num(info.load.start, 2)} at the start, ${num(info.load.end, 2)} at the end; ` +
      `\`${info.command}\`; the controller as \`${info.controller}\` (the image's NODE_OPTIONS, its heap share resolved against the ` +
      `Deployment's ${info.memoryLimitMiB} MiB limit), ${info.workers} workers, resync ${info.resyncSeconds} s; ` +
      `stream of ${info.streamCount} namespaces at ${info.streamRate}/s.`,
  );
  lines.push('');
  lines.push(renderTable(results));
  const notes = results.flatMap((r) => r.notes.map((note) => `N = ${r.namespaces}, ${r.identities} identities: ${note}`));
  if (notes.length > 0) {
    lines.push('');
    for (const note of notes) lines.push(`- ${note}`);
  }
  lines.push('');
  lines.push('Targets:');
  for (const line of targetLines(results)) lines.push(`- ${line}`);
  if (options.conditions ?? true) {
    lines.push('');
    lines.push(renderConditions(results));
  }
  return lines.join('\n') + '\n';
}

/** How busy the machine was with other work during each phase (cores), and the token lifetime used. */
export function renderConditions(results: readonly WorkloadResult[]): string {
  const load = (value: unknown): string => (typeof value === 'number' ? Math.max(0, value).toFixed(1) : '–');
  const phase = (r: WorkloadResult, key: string): unknown => (r.detail[key] as { otherLoadCores?: unknown } | undefined)?.otherLoadCores;
  const rows = results.map((r) =>
    [
      String(r.namespaces),
      String(r.identities),
      load(phase(r, 'floor before')),
      load(r.detail['seedMethodOtherLoadCores']),
      load(r.detail['coldStartOtherLoadCores']),
      load(phase(r, 'floor after')),
      r.tokenLifetimeSeconds > 0 ? String(r.tokenLifetimeSeconds) : '–',
    ].join(' | '),
  );
  return [
    'Other work on the machine during each phase, in cores busy (not the control plane, the AWS test server, the benchmark or the measured process):',
    '',
    '| N | identities | floor before | seed method | cold start | floor after | token lifetime s |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((row) => `| ${row} |`),
  ].join('\n');
}

export function renderTable(results: readonly WorkloadResult[]): string {
  const header = [
    'N',
    'identities',
    'cold start s',
    'floor s',
    '× floor',
    'seed method s',
    'p50 ms',
    'p95 ms',
    'p99 ms',
    'AWS calls / cycle',
    'writes / cycle',
    'steady writes',
    'peak RSS MiB',
    'CPU s',
    'idle CPU s/min',
  ];
  const rows = results.map((r) => [
    String(r.namespaces),
    r.identityMode === 'controller'
      ? String(r.identities)
      : `${r.identities} roles (${r.identityMode === 'assume-role' ? 'session per namespace' : 'shared session'})`,
    num(r.coldStartSeconds),
    num(r.floorSeconds),
    num(ratio(r.coldStartSeconds, r.floorSeconds), 2),
    num(r.seedMethodSeconds),
    num(r.p50Ms, 0),
    num(r.p95Ms, 0),
    num(r.p99Ms, 0),
    r.awsCallsPerCycle === null ? '–' : `${r.awsCallsPerCycle} (min ${r.awsCallsMinimum})`,
    r.writesPerCycle === null ? '–' : String(r.writesPerCycle),
    r.steadyStateWrites === null ? '–' : String(r.steadyStateWrites),
    num(r.peakRssMiB, 0),
    num(r.cpuSeconds),
    num(r.idleCpuSecondsPerMinute, 2),
  ]);
  const align = header.map((_, i) => (i < 2 ? '---' : '---:'));
  return [header, align, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/** One line per target: met, missed, or not measured in this run. */
export function targetLines(results: readonly WorkloadResult[]): string[] {
  const mark = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  const out: string[] = [];
  const measured = results.filter((r) => r.awsCallsPerCycle !== null);
  if (measured.length > 0) {
    const ok = measured.every((r) => r.awsCallsPerCycle === r.awsCallsMinimum);
    out.push(`AWS calls per cycle equal to the number of distinct identities (the minimum): ${mark(ok)}`);
  }
  const steady = results.filter((r) => r.steadyStateWrites !== null);
  if (steady.length > 0) out.push(`zero writes in steady state: ${mark(steady.every((r) => r.steadyStateWrites === 0))}`);
  const cold = results.filter((r) => r.coldStartSeconds !== null && r.floorSeconds !== null);
  if (cold.length > 0) {
    const worst = Math.max(...cold.map((r) => ratio(r.coldStartSeconds, r.floorSeconds) ?? Number.POSITIVE_INFINITY));
    out.push(`cold start within ${targets.coldStartFactor} × the floor: ${mark(worst <= targets.coldStartFactor)} (worst ${worst.toFixed(2)} ×)`);
  }
  const at1000 = results.filter((r) => r.namespaces === 1000 && r.p99Ms !== null);
  out.push(
    at1000.length === 0
      ? 'p99 annotate-to-ready under 1 s at N = 1,000: not measured in this run'
      : `p99 annotate-to-ready under 1 s at N = 1,000: ${mark(at1000.every((r) => (r.p99Ms ?? Infinity) < targets.p99MsAt1000))} (${at1000.map((r) => `${num(r.p99Ms, 0)} ms`).join(', ')})`,
  );
  /** One target over the workloads of one N: met when every measured value is within `limit`. */
  const atMost = (text: string, n: number, value: (r: WorkloadResult) => number | null, limit: number, unit: string, digits: number, sizes: string): void => {
    const measuredAt = results.filter((r) => r.namespaces === n && value(r) !== null);
    out.push(
      measuredAt.length === 0
        ? `${text}: not measured in this run (BENCH_SIZES="${sizes}")`
        : `${text}: ${mark(measuredAt.every((r) => (value(r) ?? Infinity) <= limit))} (${measuredAt.map((r) => `${num(value(r), digits)}${unit}`).join(', ')})`,
    );
  };
  atMost(`peak RSS at most ${targets.peakRssMiBAt5000} MiB at N = 5,000`, 5000, (r) => r.peakRssMiB, targets.peakRssMiBAt5000, ' MiB', 0, '100 1000 5000');
  atMost(`peak RSS at most ${targets.peakRssMiBAt10000} MiB at N = 10,000`, 10000, (r) => r.peakRssMiB, targets.peakRssMiBAt10000, ' MiB', 0, '10000');
  atMost(
    `CPU of the whole workload at most ${targets.cpuSecondsAt5000} s at N = 5,000`,
    5000,
    (r) => r.cpuSeconds,
    targets.cpuSecondsAt5000,
    ' s',
    1,
    '100 1000 5000',
  );
  atMost(
    `idle CPU at most ${targets.idleCpuSecondsPerMinuteAt5000} s a minute at N = 5,000`,
    5000,
    (r) => r.idleCpuSecondsPerMinute,
    targets.idleCpuSecondsPerMinuteAt5000,
    ' s/min',
    2,
    '100 1000 5000',
  );
  return out;
}

// The chart: two panels sharing a logarithmic N axis.

interface Series {
  readonly label: string;
  readonly color: string;
  readonly dashed: boolean;
  readonly points: readonly (readonly [number, number])[];
}

const palette = { p50: '#1b9e77', p95: '#d95f02', p99: '#7570b3', writes: '#e7298a', steady: '#66a61e', minimum: '#999999' };

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function panel(x0: number, title: string, yLabel: string, ns: readonly number[], series: readonly Series[]): string {
  const width = 400;
  const height = 260;
  const left = x0 + 60;
  const right = x0 + width - 15;
  const top = 40;
  const bottom = top + height - 70;
  const minN = Math.min(...ns);
  const maxN = Math.max(...ns);
  const logSpan = Math.log10(maxN) - Math.log10(minN) || 1;
  const xOf = (n: number): number => (ns.length === 1 ? (left + right) / 2 : left + ((Math.log10(n) - Math.log10(minN)) / logSpan) * (right - left));
  const yMax = niceMax(Math.max(1, ...series.flatMap((s) => s.points.map(([, y]) => y))));
  const yOf = (y: number): number => bottom - (y / yMax) * (bottom - top);
  const parts: string[] = [];
  parts.push(`<text x="${x0 + width / 2}" y="22" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`);
  parts.push(`<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#333"/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#333"/>`);
  for (let i = 0; i <= 4; i++) {
    const value = (yMax * i) / 4;
    const y = yOf(value);
    parts.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${Number.isInteger(value) ? value : value.toFixed(1)}</text>`);
  }
  for (const n of ns) parts.push(`<text x="${xOf(n).toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${n}</text>`);
  parts.push(`<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle">annotated namespaces (N, log scale)</text>`);
  parts.push(
    `<text x="${x0 + 14}" y="${(top + bottom) / 2}" text-anchor="middle" transform="rotate(-90 ${x0 + 14} ${(top + bottom) / 2})">${escapeXml(yLabel)}</text>`,
  );
  for (const s of series) {
    const points = [...s.points].sort((a, b) => a[0] - b[0]);
    if (points.length === 0) continue;
    const path = points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${xOf(x).toFixed(1)},${yOf(y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    for (const [x, y] of points) parts.push(`<circle cx="${xOf(x).toFixed(1)}" cy="${yOf(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
  }
  // Legend below the axis label.
  series.forEach((s, i) => {
    const lx = left + (i % 3) * 110 - 40;
    const ly = bottom + 52 + Math.floor(i / 3) * 16;
    parts.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 18}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    parts.push(`<text x="${lx + 22}" y="${ly}">${escapeXml(s.label)}</text>`);
  });
  return parts.join('\n');
}

/** The SVG chart: annotate-to-ready latency and writes per refresh cycle against N. */
export function renderChart(info: RunInfo, results: readonly WorkloadResult[]): string {
  const ns = [...new Set(results.map((r) => r.namespaces))].sort((a, b) => a - b);
  const identityCounts = [...new Set(results.map((r) => r.identities))].sort((a, b) => a - b);
  const pick = (identities: number, value: (r: WorkloadResult) => number | null): [number, number][] =>
    results
      .filter((r) => r.identities === identities)
      .flatMap((r): [number, number][] => {
        const v = value(r);
        return v === null || Number.isNaN(v) ? [] : [[r.namespaces, v]];
      });
  const latency: Series[] = [];
  const writes: Series[] = [];
  identityCounts.forEach((k, i) => {
    const dashed = i > 0;
    const suffix = identityCounts.length > 1 ? `, k = ${k}` : '';
    latency.push({ label: `p50${suffix}`, color: palette.p50, dashed, points: pick(k, (r) => r.p50Ms) });
    latency.push({ label: `p95${suffix}`, color: palette.p95, dashed, points: pick(k, (r) => r.p95Ms) });
    latency.push({ label: `p99${suffix}`, color: palette.p99, dashed, points: pick(k, (r) => r.p99Ms) });
    writes.push({ label: `per cycle${suffix}`, color: palette.writes, dashed, points: pick(k, (r) => r.writesPerCycle) });
    writes.push({ label: `steady${suffix}`, color: palette.steady, dashed, points: pick(k, (r) => r.steadyStateWrites) });
  });
  writes.push({ label: 'N (one per Secret)', color: palette.minimum, dashed: true, points: ns.map((n) => [n, n] as const) });
  const width = 820;
  const height = 330;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    panel(0, 'Annotate-to-ready latency', 'milliseconds', ns, latency),
    panel(410, 'Kubernetes writes by the controller', 'writes', ns, writes),
    `<text x="${width / 2}" y="${height - 6}" text-anchor="middle" fill="#666">${escapeXml(`kube-ecrlogin make bench, ${info.date.slice(0, 10)}, ${info.machine.cores} cores, load ${num(info.load.start, 1)}${identityCounts.length > 1 ? `; k = distinct identities, dashed: k > ${identityCounts[0] ?? 1}` : ''}`)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

/** Writes report.md, report.json and chart.svg into dir; returns the markdown. */
export function writeReports(dir: string, info: RunInfo, results: readonly WorkloadResult[]): string {
  mkdirSync(dir, { recursive: true });
  const markdown = renderMarkdown(info, results);
  writeFileSync(join(dir, 'report.md'), markdown);
  const json = results.map((r) => ({ ...r, date: info.date, machine: info.machine, command: info.command }));
  writeFileSync(join(dir, 'report.json'), JSON.stringify(json, null, 2) + '\n');
  writeFileSync(join(dir, 'chart.svg'), renderChart(info, results));
  return markdown;
}
