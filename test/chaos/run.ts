// `make chaos`: every fault against a private control plane (it restarts etcd and kube-apiserver, so
// never the shared test one), with the controller as two leader-elected processes, the AWS test
// server as its own process, and compressed time: 60 s tokens refreshed at half their life.
// Prints the table; writes .cache/chaos/report.md and report.json; exits 1 unless every fault kept
// coverage at 100% with no violation.
//
//   node test/chaos/run.ts [--only name,name] [--soak-seconds N]

import { rmSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot, startControlPlane } from '../cluster/controlplane.ts';
import { clean, results, runFaults, type Phase } from './engine.ts';
import { faults, fullDurations } from './faults.ts';
import { fullSettings, startChaos } from './harness.ts';
import { markdown, table, writeReport } from './report.ts';
import { soak } from './soak.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    'soak-seconds': { type: 'string', default: '90' },
  },
});

const dir = join(repoRoot, '.cache', 'chaos');
const started = Date.now();
const log = (message: string): void => {
  process.stderr.write(`[chaos ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
};

async function main(): Promise<boolean> {
  const catalogue = faults(fullDurations);
  const chosen =
    values.only === undefined
      ? Object.values(catalogue)
      : values.only.split(',').map((name) => {
          const fault = catalogue[name.trim()];
          if (fault === undefined) throw new Error(`unknown fault ${JSON.stringify(name)}; faults: ${Object.keys(catalogue).join(', ')}`);
          return fault;
        });
  rmSync(join(dir, 'logs'), { recursive: true, force: true });
  log('starting a private control plane in .cache/chaos/cluster');
  const plane = await startControlPlane({ dir: join(dir, 'cluster') });
  let chaos;
  try {
    chaos = await startChaos({ plane, dir, prefix: 'chaos', settings: fullSettings, log });
    const first = await chaos.sampler.waitConverged(0, 90_000);
    if (first === undefined) throw new Error('the controller never served every namespace');
    log(`every Secret in place after ${((first - started) / 1000).toFixed(0)} s; a baseline refresh cycle`);
    const baselineFrom = first;
    await sleep((fullSettings.tokenLifetimeSeconds * 1000 * fullSettings.marginPercent) / 100 + 2_000);
    const baseline: Phase = { fault: 'baseline', description: 'no fault: one refresh cycle', from: baselineFrom, to: Date.now() };
    const phases = await runFaults(chaos, chosen);
    const soakSeconds = Number(values['soak-seconds']);
    const soaked = soakSeconds > 0 ? await soak(chaos, soakSeconds * 1000) : undefined;
    if (soaked !== undefined) {
      log(
        `soak: ${soaked.churned} namespaces churned; leader RSS ${soaked.trend.earlyMiB.toFixed(0)} -> ${soaked.trend.lateMiB.toFixed(0)} MiB (peak ${soaked.trend.peakMiB.toFixed(0)})`,
      );
    }
    const end = Date.now();
    const all = results(chaos, [baseline, ...phases, ...(soaked !== undefined ? [soaked] : [])], end);
    const passed = clean(all);
    const counters = await chaos.aws.control.calls(0);
    const meta = {
      date: new Date().toISOString(),
      command: values.only === undefined ? 'make chaos' : `node test/chaos/run.ts --only ${values.only}`,
      machine: `${hostname()}, ${cpus().length} CPUs (nproc), ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.versions.node}`,
      totalSeconds: (Date.now() - started) / 1000,
      settings: { ...fullSettings, faultDurationsMs: fullDurations, awsCalls: counters.counters },
      passed,
    };
    writeReport(dir, meta, all);
    process.stdout.write(`${table(all)}\n`);
    if (!passed) process.stderr.write(`\n${markdown(meta, all)}\n`);
    log(`report in .cache/chaos/report.md and report.json; ${passed ? 'passed' : 'FAILED'}`);
    return passed;
  } finally {
    await chaos?.stop();
    await plane.stop();
  }
}

main().then(
  (passed) => {
    process.exitCode = passed ? 0 : 1;
  },
  (error: unknown) => {
    process.stderr.write(`chaos run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
