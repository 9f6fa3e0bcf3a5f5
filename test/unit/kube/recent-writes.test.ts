// Our own writes merged into the cache until the informer has seen them, or something later.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Secret } from '@kubernetes/client-node';
import { RecentWrites } from '../../../src/kube/recent-writes.ts';
import { FakeClock } from '../../support/fake-clock.ts';

const secret = (resourceVersion: string, writer: string): V1Secret => ({ metadata: { name: 's', namespace: 'ns', resourceVersion, annotations: { writer } } });
const writers = (objects: readonly V1Secret[]): (string | undefined)[] => objects.map((o) => o.metadata?.annotations?.['writer']);

describe('RecentWrites', () => {
  it('shows our write until the cache has it, then the cache', () => {
    const recent = new RecentWrites<V1Secret>(new FakeClock(0));
    recent.wrote('ns', 's', secret('100', 'us'));
    assert.deepEqual(writers(recent.merge('ns', [secret('90', 'before')])), ['us']);
    assert.deepEqual(writers(recent.merge('ns', [secret('100', 'us, seen')])), ['us, seen']);
    assert.deepEqual(writers(recent.merge('ns', [secret('90', 'before')])), ['before'], 'the entry ended when the cache caught up');
  });

  it('gives way to a later write of someone else that the cache saw before any merge', () => {
    const recent = new RecentWrites<V1Secret>(new FakeClock(0));
    recent.wrote('ns', 's', secret('100', 'us'));
    // The informer went from our 100 straight on to a tenant's 101 before a reconcile asked.
    assert.deepEqual(writers(recent.merge('ns', [secret('101', 'tenant')])), ['tenant']);
  });

  it('compares only decimal resourceVersions by order; others must be equal', () => {
    const recent = new RecentWrites<V1Secret>(new FakeClock(0));
    recent.wrote('ns', 's', secret('b', 'us'));
    assert.deepEqual(writers(recent.merge('ns', [secret('c', 'other')])), ['us']);
    assert.deepEqual(writers(recent.merge('ns', [secret('b', 'us, seen')])), ['us, seen']);
  });

  it('ends an entry after its time limit, and a deletion once the cache has lost the object', () => {
    const clock = new FakeClock(0);
    const recent = new RecentWrites<V1Secret>(clock, 1_000);
    recent.wrote('ns', 's', secret('100', 'us'));
    clock.advance(1_001);
    assert.deepEqual(writers(recent.merge('ns', [secret('90', 'before')])), ['before']);
    recent.wrote('ns', 's', undefined);
    assert.deepEqual(recent.merge('ns', [secret('90', 'before')]), []);
    assert.deepEqual(recent.merge('ns', []), []);
    assert.deepEqual(writers(recent.merge('ns', [secret('120', 'again')])), ['again'], 'the deletion entry ended');
  });
});
