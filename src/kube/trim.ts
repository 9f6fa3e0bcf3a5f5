// What the informer caches keep of each object. A cache holds one copy of every Namespace,
// ServiceAccount and managed Secret in the cluster, so it drops what the controller never reads:
// managedFields (often the largest part of an object) everywhere, and for Namespaces and Secrets
// everything but a little metadata (their informers ask for metadata only; see metadata.ts).

import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node';

/** Drops metadata.managedFields, in place (the object is fresh from the API server, not yet cached). */
export function withoutManagedFields<T extends KubernetesObject>(object: T): T {
  if (object.metadata?.managedFields !== undefined) delete object.metadata.managedFields;
  return object;
}

/**
 * A Namespace (PartialObjectMetadata) as the cache keeps it: its identity, creation and deletion
 * times, every label (a policy may select on any), and the annotations with `annotationPrefix`, the
 * only ones read. Not another tool's annotations (kubectl's last-applied-configuration repeats the
 * whole object), nor managedFields.
 */
export function namespaceForCache<T extends KubernetesObject>(annotationPrefix: string): (object: T) => T {
  return (object) => {
    const meta = object.metadata ?? {};
    const annotations = Object.fromEntries(Object.entries(meta.annotations ?? {}).filter(([key]) => key.startsWith(annotationPrefix)));
    const kept: V1ObjectMeta = {
      ...(meta.name !== undefined ? { name: meta.name } : {}),
      ...(meta.uid !== undefined ? { uid: meta.uid } : {}),
      ...(meta.resourceVersion !== undefined ? { resourceVersion: meta.resourceVersion } : {}),
      ...(meta.creationTimestamp !== undefined ? { creationTimestamp: meta.creationTimestamp } : {}),
      ...(meta.deletionTimestamp !== undefined ? { deletionTimestamp: meta.deletionTimestamp } : {}),
      ...(meta.labels !== undefined ? { labels: meta.labels } : {}),
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    };
    return { apiVersion: 'v1', kind: 'Namespace', metadata: kept } as T;
  };
}

/** What a metadata-only cache keeps of an object it does not own the rest of. */
export interface MetadataKeep {
  /** The labels worth keeping (the managed-by label the informer selects on, and any we set). */
  readonly labels: readonly string[];
  /** Annotations with this prefix are kept; every other is dropped. */
  readonly annotationPrefix: string;
  /** Longest annotation value kept whole; a longer one is cut to this length plus one character. */
  readonly maxValueLength: number;
  /** Our field manager: a data field managed by any other is reported in `writtenByOthers`. */
  readonly fieldManager: string;
  /** Annotation the cache sets (and never takes from the object) to name another writer of the data. */
  readonly writtenByOthers: string;
  /** Annotation the cache sets (never taken from the object), `true`, when our field manager wrote the data. */
  readonly writtenByUs: string;
}

/**
 * A metadata-only object (PartialObjectMetadata, or a full object we wrote) as the cache keeps it: its
 * identity, owner references, the one label, our annotations (each bounded), and whether anyone else
 * has written its data (from managedFields, which are then dropped). Nothing else: a Secret made by
 * someone else to look like ours costs the cache a few hundred bytes, however large it is.
 */
export function metadataForCache<T extends KubernetesObject>(keep: MetadataKeep, kind: { apiVersion: string; kind: string }): (object: T) => T {
  return (object) => {
    const meta = object.metadata ?? {};
    const annotations: Record<string, string> = {};
    for (const [key, value] of Object.entries(meta.annotations ?? {})) {
      if (!key.startsWith(keep.annotationPrefix) || key === keep.writtenByOthers || key === keep.writtenByUs) continue;
      annotations[key] = value.length > keep.maxValueLength ? value.slice(0, keep.maxValueLength + 1) : value;
    }
    const other = (meta.managedFields ?? []).find((entry) => entry.manager !== keep.fieldManager && ownsData(entry.fieldsV1));
    if (other !== undefined) annotations[keep.writtenByOthers] = other.manager ?? 'unknown';
    if ((meta.managedFields ?? []).some((entry) => entry.manager === keep.fieldManager && ownsData(entry.fieldsV1))) annotations[keep.writtenByUs] = 'true';
    const labels = Object.fromEntries(keep.labels.flatMap((key) => (meta.labels?.[key] !== undefined ? [[key, meta.labels[key]]] : [])));
    const kept: V1ObjectMeta = {
      ...(meta.name !== undefined ? { name: meta.name } : {}),
      ...(meta.namespace !== undefined ? { namespace: meta.namespace } : {}),
      ...(meta.uid !== undefined ? { uid: meta.uid } : {}),
      ...(meta.resourceVersion !== undefined ? { resourceVersion: meta.resourceVersion } : {}),
      ...(meta.deletionTimestamp !== undefined ? { deletionTimestamp: meta.deletionTimestamp } : {}),
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      ...(meta.ownerReferences !== undefined ? { ownerReferences: meta.ownerReferences } : {}),
    };
    return { apiVersion: kind.apiVersion, kind: kind.kind, metadata: kept } as T;
  };
}

/**
 * Whether a managedFields entry owns a data key (or `stringData`, which becomes data). Owning only
 * the map itself ("f:data": {".": {}}) is what is left to the creator once another manager has taken
 * every key over with a forced apply: that is not writing the data.
 */
function ownsData(fields: unknown): boolean {
  if (typeof fields !== 'object' || fields === null) return false;
  const data = (fields as Record<string, unknown>)['f:data'];
  const keys = typeof data === 'object' && data !== null ? Object.keys(data).filter((key) => key !== '.') : [];
  return keys.length > 0 || 'f:stringData' in fields;
}
