// The soak: steady refresh cycles with namespace churn (an annotated namespace created every few
// seconds and deleted a little later, so that per-namespace state comes and goes), while the
// leader's resident memory is sampled. Memory must level off: the last part of the soak may not sit
// much higher than its early part.

import { setTimeout as sleep } from 'node:timers/promises';
import { east, type Chaos } from './harness.ts';
import type { Phase } from './engine.ts';

export interface MemoryTrend {
  readonly samples: number;
  /** Median RSS over the first and the last fifth of the samples, MiB. */
  readonly earlyMiB: number;
  readonly lateMiB: number;
  readonly peakMiB: number;
}

const MiB = 1024 * 1024;

/** The trend of a series of RSS readings (bytes, in time order). */
export function memoryTrend(bytes: readonly number[]): MemoryTrend {
  const fifth = Math.max(1, Math.floor(bytes.length / 5));
  const median = (values: readonly number[]): number => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? 0;
  };
  return {
    samples: bytes.length,
    earlyMiB: median(bytes.slice(0, fifth)) / MiB,
    lateMiB: median(bytes.slice(-fifth)) / MiB,
    peakMiB: Math.max(0, ...bytes) / MiB,
  };
}

/** Growth that counts as unbounded: more than a quarter, and more than 32 MiB, over the soak. */
export function grewWithoutBound(trend: MemoryTrend): boolean {
  return trend.lateMiB - trend.earlyMiB > Math.max(32, trend.earlyMiB * 0.25);
}

export async function soak(
  chaos: Chaos,
  durationMs: number,
  churnEveryMs = 2_000,
  churnLifetimeMs = 10_000,
): Promise<Phase & { trend: MemoryTrend; churned: number }> {
  const leader = await chaos.leader();
  if (leader === undefined) throw new Error('no leader for the soak');
  const pid = leader.pid;
  const from = Date.now();
  const labels = { [chaos.label.key]: chaos.label.value };
  const live: { name: string; at: number }[] = [];
  let churned = 0;
  while (Date.now() - from < durationMs) {
    const name = `${chaos.prefix}-churn-${churned++}`;
    await chaos.core
      .createNamespace({
        body: {
          metadata: { name, labels, annotations: { 'ecr-login/server': east, 'ecr-login/role-arn': `arn:aws:iam::111122223333:role/churn-${churned % 7}` } },
        },
      })
      .catch(() => undefined);
    live.push({ name, at: Date.now() });
    while (live[0] !== undefined && Date.now() - live[0].at > churnLifetimeMs) {
      const old = live.shift();
      if (old !== undefined) await chaos.core.deleteNamespace({ name: old.name }).catch(() => undefined);
    }
    await sleep(churnEveryMs);
  }
  for (const old of live) await chaos.core.deleteNamespace({ name: old.name }).catch(() => undefined);
  const to = Date.now();
  const bytes = chaos.sampler.samples
    .filter((s) => s.at >= from && s.at < to)
    .map((s) => s.rss[leader.name])
    .filter((b): b is number => b !== undefined);
  const trend = memoryTrend(bytes);
  const restarted = leader.pid !== pid || pid === undefined;
  if (restarted) chaos.sampler.report({ at: to - 1, kind: 'memory', detail: `the leader ${leader.name} was not running throughout the soak` });
  else if (grewWithoutBound(trend)) {
    chaos.sampler.report({
      at: to - 1,
      kind: 'memory',
      detail: `RSS of ${leader.name} grew from ${trend.earlyMiB.toFixed(0)} MiB to ${trend.lateMiB.toFixed(0)} MiB over the soak`,
    });
  }
  return {
    fault: 'soak',
    description: `${durationMs / 1000} s of refresh cycles with an annotated namespace created every ${churnEveryMs / 1000} s and deleted ${churnLifetimeMs / 1000} s later; leader RSS sampled`,
    from,
    to,
    note: `leader RSS ${trend.earlyMiB.toFixed(0)} -> ${trend.lateMiB.toFixed(0)} MiB (peak ${trend.peakMiB.toFixed(0)} MiB) over ${churned} churned namespaces`,
    trend,
    churned,
  };
}
