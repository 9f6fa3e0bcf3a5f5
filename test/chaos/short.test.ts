// The short form of `make chaos`, run by `make test` on the shared control plane (which it never
// restarts): three representative faults with compressed time (40 s tokens refreshed at half their
// life), each keeping every Secret valid (coverage 100%), touching nothing that is not ours, and
// converging within one backoff cap after it clears.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repoRoot } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { results, runFaults, workAllowanceMs } from './engine.ts';
import { faults, type FaultDurations } from './faults.ts';
import { removeChaos, startChaos, type Chaos, type ChaosSettings } from './harness.ts';
import { table } from './report.ts';

const settings: ChaosSettings = {
  tokenLifetimeSeconds: 40,
  marginPercent: 50,
  jitterPercent: 10,
  minIntervalSeconds: 2,
  backoffBaseMs: 500,
  backoffMaxMs: 6_000,
  awsTimeoutMs: 2_000,
  awsRetries: 1,
  leaseDurationMs: 3_000,
  renewDeadlineMs: 2_000,
  retryPeriodMs: 500,
  namespaces: 6,
  replicas: 2,
};

const durations: FaultDurations = {
  aws: 8_000,
  throttle: 8_000,
  watchCuts: 8_000,
  watchCutEvery: 1_500,
  controllerDown: 4_000,
  etcdDown: 0,
  partition: 8_000,
};

describe('chaos, short form', () => {
  const prefix = uniqueName('chaos');
  let chaos: Chaos | undefined;

  before(async () => {
    chaos = await startChaos({ plane: cluster(), dir: join(repoRoot, '.cache', 'test', prefix), prefix, settings, shared: true });
  });

  after(async () => {
    await chaos?.stop();
    await removeChaos(cluster(), prefix);
  });

  it('watch cuts, AWS 5xx and a killed controller keep every Secret valid, touch nothing else, and converge within one backoff cap', async (t) => {
    if (chaos === undefined) throw new Error('no chaos setup');
    const first = await chaos.sampler.waitConverged(0, 60_000);
    assert.ok(first !== undefined, 'every Secret in place to begin with');
    const catalogue = faults(durations);
    const chosen = ['watch cuts', 'AWS 5xx', 'controller killed'].map((name) => {
      const fault = catalogue[name];
      assert.ok(fault !== undefined && fault.restartsControlPlane !== true, name);
      return fault;
    });
    const phases = await runFaults(chaos, chosen, { convergeTimeoutMs: 30_000, settleMs: 500 });
    const all = results(chaos, phases, Date.now());
    t.diagnostic(`\n${table(all)}`);
    assert.deepEqual(
      all.map((result) => result.fault),
      ['watch cuts', 'AWS 5xx', 'controller killed'],
    );
    for (const result of all) {
      assert.equal(result.coverage, 100, `${result.fault}: coverage\n${result.details.join('\n')}`);
      assert.equal(result.violations, 0, `${result.fault}: violations\n${result.details.join('\n')}`);
      assert.ok(
        result.recoverySeconds !== null && result.recoverySeconds * 1000 <= settings.backoffMaxMs + workAllowanceMs,
        `${result.fault}: recovered in ${String(result.recoverySeconds)} s`,
      );
      assert.ok(result.samples > 10, `${result.fault}: sampled`);
    }
  });
});
