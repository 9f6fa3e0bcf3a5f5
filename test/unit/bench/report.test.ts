// The benchmark's report writer, on made-up results (the benchmark itself runs with `make bench`).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { percentile, renderChart, renderTable, targetLines, type RunInfo } from '../../bench/report.ts';
import type { WorkloadResult } from '../../bench/workload.ts';

const info: RunInfo = {
  date: '2026-11-27T06:00:00.000Z',
  command: 'make bench',
  machine: { cores: 2, memoryGiB: 23.5, cpu: 'Test CPU' },
  load: { start: 0.5, end: 0.7 },
  controller: 'node dist/kube-ecrlogin.mjs',
  memoryLimitMiB: 384,
  workers: 4,
  streamCount: 200,
  streamRate: 20,
  resyncSeconds: 30,
};

function result(namespaces: number, identities: number, overrides: Partial<WorkloadResult> = {}): WorkloadResult {
  return {
    namespaces,
    identities,
    identityMode: 'controller',
    workers: 4,
    coldStartSeconds: namespaces / 100,
    floorSeconds: namespaces / 150,
    seedMethodSeconds: namespaces / 90,
    p50Ms: 20,
    p95Ms: 40,
    p99Ms: 80,
    streamSamples: 200,
    awsCallsPerCycle: identities,
    awsCallsMinimum: identities,
    writesPerCycle: namespaces,
    cycleSeconds: 10,
    steadyStateWrites: 0,
    steadyStateSeconds: 60,
    peakRssMiB: 150,
    cpuSeconds: 5,
    idleCpuSecondsPerMinute: 0.2,
    detail: {},
    notes: [],
    tokenLifetimeSeconds: 240,
    loadAverage: { start: 0.5, end: 0.7 },
    ...overrides,
  };
}

describe('the benchmark report', () => {
  it('percentiles are by nearest rank, so p99 of 200 samples is the second largest', () => {
    const values = Array.from({ length: 200 }, (_, i) => i + 1);
    assert.equal(percentile(values, 0.5), 100);
    assert.equal(percentile(values, 0.99), 198);
    // The smallest value with at least 41% of the values at or below it: 4.1 values, so the fifth.
    assert.equal(percentile([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], 0.41), 5);
    assert.equal(percentile([7], 0.99), 7);
    assert.ok(Number.isNaN(percentile([], 0.5)));
  });

  it('the table has one row per workload, with the ratio to the floor and the AWS minimum', () => {
    const table = renderTable([result(100, 1), result(1000, 10, { awsCallsPerCycle: 12 })]).split('\n');
    assert.equal(table.length, 4);
    assert.match(table[2] ?? '', /^\| 100 \| 1 \| 1\.0 \| 0\.7 \| 1\.50 \| 1\.1 \| 20 \| 40 \| 80 \| 1 \(min 1\) \| 100 \| 0 \| 150 \| 5\.0 \| 0\.20 \|$/);
    assert.match(table[3] ?? '', /\| 12 \(min 10\) \|/);
  });

  it('a missed target says MISSED, and one not measured says so', () => {
    const lines = targetLines([result(1000, 1, { awsCallsPerCycle: 1000, p99Ms: 1500 })]);
    assert.ok(lines.includes('AWS calls per cycle equal to the number of distinct identities (the minimum): MISSED'), lines.join('\n'));
    assert.ok(
      lines.some((line) => line.startsWith('p99 annotate-to-ready under 1 s at N = 1,000: MISSED (1500 ms)')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((line) => line.startsWith('peak RSS at most 200 MiB at N = 5,000: not measured')),
      lines.join('\n'),
    );
  });

  it("checks issue 19's targets: cold start 1.3 × the floor, memory at 5,000 and 10,000, CPU and idle CPU at 5,000", () => {
    const lines = targetLines([
      result(5000, 1, { coldStartSeconds: 14, floorSeconds: 10, peakRssMiB: 200, cpuSeconds: 41, idleCpuSecondsPerMinute: 0.5 }),
      result(10000, 1, { coldStartSeconds: 13, floorSeconds: 10, peakRssMiB: 257 }),
    ]);
    for (const expected of [
      'cold start within 1.3 × the floor: MISSED (worst 1.40 ×)',
      'peak RSS at most 200 MiB at N = 5,000: met (200 MiB)',
      'peak RSS at most 256 MiB at N = 10,000: MISSED (257 MiB)',
      'CPU of the whole workload at most 40 s at N = 5,000: MISSED (41.0 s)',
      'idle CPU at most 0.5 s a minute at N = 5,000: met (0.50 s/min)',
    ]) {
      assert.ok(lines.includes(expected), `${expected}\n${lines.join('\n')}`);
    }
  });

  it('the chart is one SVG with a point per workload and series', () => {
    const svg = renderChart(info, [result(100, 1), result(1000, 1), result(5000, 1)]);
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    // Three latency series, two write series and the N reference line, three points each.
    assert.equal(svg.match(/<circle /g)?.length, 6 * 3);
    assert.doesNotMatch(svg, /NaN/);
  });
});
