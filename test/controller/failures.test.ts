// When AWS fails or input is bad: the last good Secret stays as it is, nothing we do not own is
// touched, and Events say what happened.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import type { FaultSpec } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, withAwsAndController } from '../support/controller.ts';
import { core, namespaceEvents, pullSecretNames, readSecret } from '../support/objects.ts';

const fastRefresh = 'refresh:\n  margin: 50%\n  jitter: 0%\n  minInterval: 1s\n';
const host = (region: string): string => `111122223333.dkr.ecr.${region}.amazonaws.com`;

async function reasonsFor(namespace: string): Promise<string[]> {
  return (await namespaceEvents(namespace)).map((event) => `${event.type ?? ''}/${event.reason ?? ''}`);
}

describe('failures', () => {
  const env = withAwsAndController({ config: fastRefresh });

  for (const fault of [
    { name: 'throttling', kind: 'throttle', reason: /ThrottlingException/ },
    { name: '5xx', kind: 'unavailable', reason: /ServiceUnavailableException|HTTP 503/ },
    { name: 'AccessDenied', kind: 'accessDenied', reason: /AccessDenied/ },
  ] as const) {
    it(`keeps the last good Secret when AWS answers ${fault.name}, and says so in an Event`, async () => {
      const region = { throttling: 'sa-east-1', '5xx': 'af-south-1', AccessDenied: 'me-south-1' }[fault.name];
      env.aws.setTokenLifetime(6);
      const ns = uniqueName(`fault-${fault.kind.toLowerCase()}`);
      await createServedNamespace(env.controller, ns, { 'ecr-login/server': host(region) });
      const good = await eventually('the first Secret', () => readSecret(ns, 'ecr-login'));
      env.aws.setTokenLifetime(12 * 3600);
      const spec: FaultSpec = { api: 'GetAuthorizationToken', region, kind: fault.kind };
      const id = env.aws.faults.set(spec);
      // The refresh (at half of 6 s) fails: a Warning Event, and the Secret is left exactly as it was.
      const failed = await eventually(
        'a RefreshFailed Event',
        async () => {
          const events = await namespaceEvents(ns);
          const event = events.find((e) => e.reason === 'RefreshFailed');
          assert.ok(event);
          return event;
        },
        { timeoutMs: 20_000 },
      );
      assert.equal(failed.type, 'Warning');
      assert.match(failed.message ?? '', fault.reason);
      assert.match(failed.message ?? '', /current Secret, if any, is kept/);
      const during = await readSecret(ns, 'ecr-login');
      assert.equal(during.metadata?.resourceVersion, good.metadata?.resourceVersion, 'the last good Secret is untouched');
      // One Event for a failure that repeats on every retry.
      await eventually(
        'more failed attempts',
        () => {
          assert.ok(env.aws.count({ api: 'GetAuthorizationToken', region }) >= 3);
          return Promise.resolve();
        },
        { timeoutMs: 20_000 },
      );
      assert.equal((await reasonsFor(ns)).filter((r) => r === 'Warning/RefreshFailed').length, 1);

      env.aws.faults.clear({ id });
      const recovered = await eventually(
        'recovery',
        async () => {
          const secret = await readSecret(ns, 'ecr-login');
          assert.notEqual(secret.data?.['.dockerconfigjson'], good.data?.['.dockerconfigjson']);
          return secret;
        },
        { timeoutMs: 30_000 },
      );
      assert.equal(recovered.metadata?.uid, good.metadata?.uid);
      await eventually('a RefreshRecovered Event', async () => {
        assert.ok((await reasonsFor(ns)).includes('Normal/RefreshRecovered'));
      });
    });
  }

  it('asks AWS once per minimum interval for a denied identity, however many namespaces share it', async () => {
    // Only the broker's memory of the denial gives this: each namespace retries on its own backoff
    // (200 ms, 400 ms, ...), and being created one after another, they share no call in flight.
    const region = 'il-central-1';
    const minIntervalMs = 1_000; // fastRefresh
    const queue = env.controller.running.parts.controller.queue;
    const id = env.aws.faults.set({ api: 'GetAuthorizationToken', region, kind: 'accessDenied' });
    try {
      const namespaces: string[] = [];
      for (let i = 0; i < 6; i++) {
        const ns = uniqueName('denied');
        namespaces.push(ns);
        await createServedNamespace(env.controller, ns, { 'ecr-login/server': host(region) });
        await eventually(`a RefreshFailed Event in ${ns}`, async () => {
          assert.ok((await reasonsFor(ns)).includes('Warning/RefreshFailed'));
        });
      }
      // Five failures each: 3 s of retries (200 + 400 + 800 + 1600 ms), several intervals long.
      await eventually('every namespace to have failed five times', () => {
        for (const ns of namespaces) assert.ok(queue.failures(ns) >= 5, `${ns} failed ${queue.failures(ns)} times`);
        return Promise.resolve();
      });
      const at = env.aws.calls.filter((call) => call.api === 'GetAuthorizationToken' && call.region === region).map((call) => call.at);
      const attempts = namespaces.reduce((sum, ns) => sum + queue.failures(ns), 0);
      const gaps = at.slice(1).map((time, i) => time - (at[i] ?? 0));
      assert.ok(at.length >= 2, `${at.length} AWS calls: the denial is asked again once the interval is over`);
      assert.ok(
        gaps.every((gap) => gap >= minIntervalMs),
        `${at.length} AWS calls for ${attempts} failed reconciles, ${gaps.join(', ')} ms apart`,
      );
    } finally {
      env.aws.faults.clear({ id });
    }
  });

  it('leaves a same-named Secret it does not own untouched, with a SecretConflict Event', async () => {
    const ns = uniqueName('unowned');
    const api = core();
    await createServedNamespace(env.controller, ns);
    const theirs = await api.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'ecr-login' }, type: 'Opaque', stringData: { token: 'someone-elses' } },
    });
    await api.patchNamespace(
      { name: ns, body: { metadata: { annotations: { 'ecr-login/server': host('us-west-1') } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const event = await eventually('a SecretConflict Event', async () => {
      const found = (await namespaceEvents(ns)).find((e) => e.reason === 'SecretConflict');
      assert.ok(found);
      return found;
    });
    assert.equal(event.type, 'Warning');
    const after = await readSecret(ns, 'ecr-login');
    assert.equal(after.metadata?.resourceVersion, theirs.metadata?.resourceVersion);
    const sa = await api.readNamespacedServiceAccount({ namespace: ns, name: 'default' });
    assert.deepEqual(pullSecretNames(sa), [], 'no entry for a Secret that is not ours');
    assert.deepEqual(cluster().writes({ user: env.controller.user, namespace: ns, resource: 'secrets' }), [], 'not one write to Secrets in that namespace');
    assert.equal(
      cluster().auditEvents({ user: env.controller.user, namespace: ns, resource: 'secrets', verbs: ['create'], succeeded: false }).length,
      1,
      'one create, refused because the name is taken',
    );
    // Another pass (the namespace changes): the name is read, not created again, and not reported twice.
    const passes = env.controller.running.parts.controller.lastResults.get(ns)?.count ?? 0;
    await api.patchNamespace(
      { name: ns, body: { metadata: { labels: { touched: 'yes' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually('another reconcile', () => {
      assert.ok((env.controller.running.parts.controller.lastResults.get(ns)?.count ?? 0) > passes);
      return Promise.resolve();
    });
    assert.equal(
      cluster().auditEvents({ user: env.controller.user, namespace: ns, resource: 'secrets', verbs: ['create'], succeeded: false }).length,
      1,
      'no second create',
    );
    assert.equal((await namespaceEvents(ns)).filter((e) => e.reason === 'SecretConflict').length, 1);
  });

  for (const [name, value] of [
    ['the suffix attack', '123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example'],
    ['a public registry', 'docker.io'],
    ['an 11-digit account', '12345678901.dkr.ecr.us-east-1.amazonaws.com'],
    ['an empty list', ' , '],
    ['a duplicated host', `${host('us-east-1')},${host('us-east-1')}`],
    ['a non-ASCII host', '111122223333.dkr.ecr.us-east-1.amazonaws.cöm'],
    ['a 64 KiB value', 'x'.repeat(64 * 1024)],
  ] as const) {
    it(`rejects ${name} with an InvalidAnnotation Event and no AWS call`, async () => {
      const ns = uniqueName('invalid');
      // No other test here uses us-east-1, the region of most of these values.
      const callsBefore = env.aws.count({ region: 'us-east-1' });
      await createServedNamespace(env.controller, ns, { 'ecr-login/server': value });
      const event = await eventually('an InvalidAnnotation Event', async () => {
        const found = (await namespaceEvents(ns)).find((e) => e.reason === 'InvalidAnnotation');
        assert.ok(found);
        return found;
      });
      assert.equal(event.type, 'Warning');
      assert.match(event.message ?? '', /ecr-login\/server/);
      assert.ok((event.message ?? '').length < 1100, 'the message stays readable');
      assert.deepEqual(cluster().writes({ user: env.controller.user, namespace: ns, resource: 'secrets' }), []);
      assert.equal(env.aws.count({ region: 'us-east-1' }), callsBefore, 'no AWS call');
    });
  }
});
