// A reconcile has a deadline: one stuck on an AWS call that never answers (within the request
// timeout) stops, frees its worker for the other namespaces, and is retried.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, withAwsAndController } from '../support/controller.ts';
import { readSecret, secretAbsent } from '../support/objects.ts';

const host = (region: string): string => `111122223333.dkr.ecr.${region}.amazonaws.com`;

describe('the reconcile deadline', () => {
  // One worker, AWS requests allowed a minute, and a reconcile 2 s.
  const env = withAwsAndController({ args: ['--workers', '1', '--aws-timeout', '60s'], reconcileTimeoutMs: 2_000 });

  it('stops a reconcile waiting on AWS, serves the next namespace with the freed worker, and retries', async () => {
    const slowRegion = 'eu-north-1';
    const fault = env.aws.faults.set({ api: 'GetAuthorizationToken', region: slowRegion, kind: 'latency', ms: 15_000 });
    const slow = uniqueName('deadline-slow');
    await createServedNamespace(env.controller, slow, { 'ecr-login/server': host(slowRegion) });
    // Without a deadline, the only worker would wait the full 15 s here.
    await eventually(
      'the slow reconcile stopped at its deadline',
      () => {
        const result = env.controller.running.parts.controller.lastResults.get(slow);
        assert.match(result?.error?.message ?? '', /reconcile stopped after 2 s, its deadline/);
        return Promise.resolve();
      },
      { timeoutMs: 10_000 },
    );
    assert.ok(env.controller.logs.some((line) => line.includes('Reconcile stopped at its deadline') && line.includes(slow)));

    // The worker is free between the slow namespace's retries: another namespace is served meanwhile.
    const next = uniqueName('deadline-next');
    await createServedNamespace(env.controller, next, { 'ecr-login/server': host('eu-west-3') });
    await eventually('the next namespace served', () => readSecret(next, 'ecr-login'), { timeoutMs: 10_000 });
    await secretAbsent(slow, 'ecr-login'); // while the slow token request still hangs
    assert.equal(env.aws.count({ api: 'GetAuthorizationToken', region: slowRegion }), 0, 'no slow answer yet (calls count once answered)');

    // Once AWS answers, the retry serves it.
    env.aws.faults.clear({ id: fault });
    await eventually('the slow namespace served', () => readSecret(slow, 'ecr-login'), { timeoutMs: 40_000 });
  });
});
