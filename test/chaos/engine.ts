// Runs faults one after another against one Chaos setup and turns the sampler's record into one
// result per fault: the fault's duration, the coverage and the invariant violations over its window
// (from when it began waiting for its moment until the next one does), and the recovery time (from
// the fault clearing until every Secret is valid and not overdue, our imagePullSecrets entries are in
// place, and a namespace annotated at that moment has its Secret).

import { setTimeout as sleep } from 'node:timers/promises';
import type { Fault, FaultRun } from './faults.ts';
import type { Chaos } from './harness.ts';
import type { Coverage, Violation } from './invariants.ts';

export interface FaultResult {
  readonly fault: string;
  readonly description: string;
  readonly durationSeconds: number;
  /** Percent of sampled (Secret, time) pairs with a valid token. */
  readonly coverage: number;
  readonly violations: number;
  /** From the fault clearing to convergence; null for phases without a fault, or when it never converged. */
  readonly recoverySeconds: number | null;
  readonly samples: number;
  readonly staleSamples: number;
  /** The least time any Secret's token had left during the window, seconds. */
  readonly minHeadroomSeconds: number;
  readonly note?: string;
  /** When the fault began and cleared (ISO), for reading the logs. */
  readonly startedAt?: string;
  readonly clearedAt?: string;
  readonly details: readonly string[];
}

/** A stretch of the run a result is computed over. */
export interface Phase {
  readonly fault: string;
  readonly description: string;
  readonly from: number;
  readonly to: number;
  readonly run?: FaultRun;
  readonly convergedAt?: number;
  readonly note?: string;
}

/**
 * Convergence is due within one backoff cap of a fault clearing: by then every retry (a reconcile, a
 * watch, a start-up read of the ConfigMap) has run again. What that retry then does (a list, a
 * reconcile, a write) and the sampler's 300 ms resolution are allowed on top.
 */
export const workAllowanceMs = 2_000;

export interface RunFaultsOptions {
  /** Longest wait for convergence after a fault, ms. */
  readonly convergeTimeoutMs?: number;
  /** Quiet time after convergence before the next fault, ms. */
  readonly settleMs?: number;
}

/** Runs each fault, waits for convergence, and returns its phase (its `to` is set by the next phase). */
export async function runFaults(chaos: Chaos, faults: readonly Fault[], options: RunFaultsOptions = {}): Promise<Phase[]> {
  const phases: Phase[] = [];
  const cap = chaos.settings.backoffMaxMs;
  for (const fault of faults) {
    const from = Date.now();
    chaos.log(`fault: ${fault.name}: ${fault.description}`);
    const run = await fault.inject(chaos);
    const removeProbe = await chaos.probe(slug(fault.name));
    const convergedAt = await chaos.sampler.waitConverged(run.clear, options.convergeTimeoutMs ?? 90_000);
    await removeProbe();
    if (convergedAt === undefined) {
      chaos.sampler.report({
        at: run.clear,
        kind: 'recovery',
        detail: `${fault.name}: did not converge within ${(options.convergeTimeoutMs ?? 90_000) / 1000} s`,
      });
    } else if (convergedAt - run.clear > cap + workAllowanceMs) {
      chaos.sampler.report({
        at: run.clear,
        kind: 'recovery',
        detail: `${fault.name}: converged ${((convergedAt - run.clear) / 1000).toFixed(1)} s after the fault cleared, more than one backoff cap (${cap / 1000} s) and ${workAllowanceMs / 1000} s to do the work`,
      });
    }
    chaos.log(
      `  lasted ${((run.clear - run.start) / 1000).toFixed(1)} s; converged ${convergedAt === undefined ? 'never' : `${((convergedAt - run.clear) / 1000).toFixed(1)} s`} after${run.note !== undefined ? `; ${run.note}` : ''}`,
    );
    phases.push({ fault: fault.name, description: fault.description, from, to: Number.NaN, run, ...(convergedAt !== undefined ? { convergedAt } : {}) });
    await sleep(options.settleMs ?? 2_000);
  }
  return phases;
}

/** Closes each phase where the next begins (the last at `end`) and computes its result. */
export function results(chaos: Chaos, phases: readonly Phase[], end: number): FaultResult[] {
  return phases.map((phase, i) => {
    const to = Number.isNaN(phase.to) ? (phases[i + 1]?.from ?? end) : phase.to;
    return resultOf(phase.fault, phase.description, chaos.sampler.coverage(phase.from, to), chaos.sampler.violationsBetween(phase.from, to), phase, to);
  });
}

function resultOf(fault: string, description: string, coverage: Coverage, violations: readonly Violation[], phase: Phase, to: number): FaultResult {
  const run = phase.run;
  const note = phase.note ?? run?.note;
  const recovery = run !== undefined && phase.convergedAt !== undefined ? round((phase.convergedAt - run.clear) / 1000, 1) : null;
  return {
    fault,
    description,
    durationSeconds: round(((run?.clear ?? to) - (run?.start ?? phase.from)) / 1000, 1),
    coverage: round(coverage.ratio * 100, 3),
    violations: violations.length,
    recoverySeconds: recovery,
    samples: coverage.samples,
    staleSamples: coverage.staleSamples,
    minHeadroomSeconds: round(Number.isFinite(coverage.minHeadroomMs) ? coverage.minHeadroomMs / 1000 : 0, 1),
    ...(note !== undefined ? { note } : {}),
    ...(run !== undefined ? { startedAt: new Date(run.start).toISOString(), clearedAt: new Date(run.clear).toISOString() } : {}),
    details: [...violations.map((v) => `${v.kind}: ${v.detail}`), ...coverage.failures],
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/** Whether every result is clean: full coverage and no violation. */
export function clean(all: readonly FaultResult[]): boolean {
  return all.every((r) => r.coverage === 100 && r.violations === 0);
}
