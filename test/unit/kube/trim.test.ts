// What the informer caches keep: no managedFields, and of Namespaces and Secrets their metadata only (bounded).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import { metadataForCache, namespaceForCache, withoutManagedFields } from '../../../src/kube/trim.ts';

const managedFields = [{ manager: 'kube-ecrlogin', operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { 'f:.dockerconfigjson': {} } } }];

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

  it('keeps of a Namespace its identity, times, every label and our annotations only', () => {
    const created = new Date('2026-11-30T12:00:00Z');
    const ns: V1Namespace = {
      apiVersion: 'meta.k8s.io/v1',
      kind: 'PartialObjectMetadata',
      metadata: {
        name: 'team-a',
        uid: 'u',
        resourceVersion: '7',
        creationTimestamp: created,
        deletionTimestamp: created,
        labels: { team: 'a', 'kubernetes.io/metadata.name': 'team-a' },
        annotations: { 'ecr-login/server': 'host', 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(10_000) },
        finalizers: ['f'],
        managedFields,
      },
    };
    assert.deepEqual(namespaceForCache<V1Namespace>('ecr-login/')(ns), {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'team-a',
        uid: 'u',
        resourceVersion: '7',
        creationTimestamp: created,
        deletionTimestamp: created,
        labels: { team: 'a', 'kubernetes.io/metadata.name': 'team-a' },
        annotations: { 'ecr-login/server': 'host' },
      },
    });
    assert.deepEqual(namespaceForCache<V1Namespace>('ecr-login/')({ metadata: { name: 'b', annotations: { other: 'x' } } }).metadata, { name: 'b' });
  });

  const keep = metadataForCache<V1Secret>(
    {
      labels: ['app.kubernetes.io/managed-by'],
      annotationPrefix: 'ecr-login/',
      maxValueLength: 10,
      fieldManager: 'kube-ecrlogin',
      writtenByOthers: 'internal/written-by',
      writtenByUs: 'internal/ours',
    },
    { apiVersion: 'v1', kind: 'Secret' },
  );

  it('keeps of a Secret its identity, owners, the one label and our annotations: never its data', () => {
    const secret: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/dockerconfigjson',
      metadata: {
        name: 's',
        namespace: 'n',
        uid: 'u',
        resourceVersion: '9',
        labels: { 'app.kubernetes.io/managed-by': 'kube-ecrlogin', team: 'a' },
        annotations: { 'ecr-login/owner': 'Namespace/n', 'example.com/big': 'x'.repeat(100_000), 'internal/written-by': 'forged', 'internal/ours': 'forged' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'ServiceAccount', name: 'sa', uid: 'u2' }],
        managedFields,
      },
      data: { '.dockerconfigjson': payload(900_000) },
    };
    assert.deepEqual(keep(secret), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 's',
        namespace: 'n',
        uid: 'u',
        resourceVersion: '9',
        labels: { 'app.kubernetes.io/managed-by': 'kube-ecrlogin' },
        annotations: { 'ecr-login/owner': 'Namespace/n', 'internal/ours': 'true' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'ServiceAccount', name: 'sa', uid: 'u2' }],
      },
    });
  });

  it('cuts an over-long annotation of ours to one character beyond the longest valid value', () => {
    const kept = keep({ metadata: { name: 's', annotations: { 'ecr-login/server': 'y'.repeat(5_000) } } });
    assert.equal(kept.metadata?.annotations?.['ecr-login/server']?.length, 11);
  });

  it('names another field manager that wrote the data, and says when we did', () => {
    const edited = [
      ...managedFields,
      { manager: 'kubectl-edit', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { 'f:.dockerconfigjson': {} } } },
    ];
    assert.equal(keep({ metadata: { name: 's', managedFields: edited } }).metadata?.annotations?.['internal/written-by'], 'kubectl-edit');
    const annotated = [...managedFields, { manager: 'kubectl-annotate', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': {} } }];
    assert.deepEqual(
      keep({ metadata: { name: 's', managedFields: annotated } }).metadata?.annotations,
      { 'internal/ours': 'true' },
      'an annotation someone added is not the data',
    );
    assert.equal(keep({ metadata: { name: 's' } }).metadata?.annotations, undefined, 'no managedFields: neither ours nor theirs');
    const takenOver = [
      ...managedFields,
      { manager: 'kubectl-create', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { '.': {} }, 'f:type': {} } },
    ];
    assert.deepEqual(
      keep({ metadata: { name: 's', managedFields: takenOver } }).metadata?.annotations,
      { 'internal/ours': 'true' },
      'the creator left with the bare map after our forced apply',
    );
  });
});
