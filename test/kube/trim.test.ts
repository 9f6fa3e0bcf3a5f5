// What the informer caches keep: no managedFields, and one shared copy of equal Secret payloads.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import { Interner, secretForCache, withoutManagedFields } from '../../src/kube/trim.ts';

const managedFields = [{ manager: 'kube-ecrlogin', operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': {} } }];

/** A payload built at run time, so that two of them are equal but distinct strings. */
const payload = (n: number): string => Buffer.from(JSON.stringify({ auths: { host: { password: 'x'.repeat(n) } } })).toString('base64');

describe('trimming cached objects', () => {
  it('drops managedFields and keeps everything else', () => {
    const ns: V1Namespace = { metadata: { name: 'team-a', labels: { a: 'b' }, resourceVersion: '7', managedFields } };
    const trimmed = withoutManagedFields(ns);
    assert.equal(trimmed.metadata?.managedFields, undefined);
    assert.deepEqual(trimmed.metadata, { name: 'team-a', labels: { a: 'b' }, resourceVersion: '7' });
  });

  it('leaves an object without managedFields as it is', () => {
    const ns: V1Namespace = { metadata: { name: 'team-a' } };
    assert.equal(withoutManagedFields(ns), ns);
    assert.deepEqual(ns, { metadata: { name: 'team-a' } });
  });

  it('keeps one entry for equal Secret payloads, and the payloads themselves unchanged', () => {
    const interner = new Interner();
    const keep = secretForCache(interner);
    const cached = [1, 2, 3].map((i) =>
      keep({ metadata: { name: `s${i}`, managedFields }, data: { '.dockerconfigjson': payload(1000) } } satisfies V1Secret),
    );
    for (const secret of cached) {
      assert.equal(secret.metadata?.managedFields, undefined);
      assert.equal(secret.data?.['.dockerconfigjson'], payload(1000));
    }
    assert.equal(interner.size, 1, 'three equal payloads, one remembered value');
  });

  it('remembers at most its limit of values, dropping the oldest', () => {
    const interner = new Interner(3);
    for (let i = 0; i < 10; i++) interner.intern(`value-${i}`);
    assert.equal(interner.size, 3);
  });
});
