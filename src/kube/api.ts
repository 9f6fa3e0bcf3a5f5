// The Kubernetes writes (and the few live reads) the controller makes, behind a narrow interface.
// Every write names the kube-ecrlogin field manager and is counted in metrics.

import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubeConfig,
  type V1ConfigMap,
  type V1MutatingWebhookConfiguration,
  type V1Namespace,
  type V1OwnerReference,
  type V1Secret,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import type { Metrics, WriteResource, WriteVerb } from '../metrics.ts';
import { type JsonPatchOp, fieldManager } from './objects.ts';

export interface KubeApi {
  /** Creates a Secret; fails with 409 when one of that name exists (ours or not). */
  createSecret(secret: V1Secret): Promise<V1Secret>;
  /** Server-Side Apply of a Secret we own, guarded by the resourceVersion we read. */
  applySecret(secret: V1Secret, resourceVersion: string): Promise<V1Secret>;
  /** Deletes a Secret only if it is still the one we read (uid and resourceVersion). */
  deleteSecret(namespace: string, name: string, uid: string, resourceVersion: string): Promise<void>;
  /** A live read, for names our label-filtered cache cannot see. Undefined when absent. */
  readSecret(namespace: string, name: string): Promise<V1Secret | undefined>;
  /**
   * Sets a Secret's owner references to exactly these, guarded by the resourceVersion read. Server-Side
   * Apply cannot remove an owner reference set when the Secret was created (another operation owns
   * it), so an owner change is written this way first.
   */
  setSecretOwners(namespace: string, name: string, resourceVersion: string, owners: readonly V1OwnerReference[]): Promise<V1Secret>;
  patchServiceAccount(namespace: string, name: string, ops: readonly JsonPatchOp[]): Promise<V1ServiceAccount>;
  createEvent(event: CoreV1Event): Promise<void>;
  /** Server-Side Apply of a ConfigMap we own (the admission policy's parameters). */
  applyConfigMap(configMap: V1ConfigMap): Promise<void>;
  /** TokenRequest for a ServiceAccount. */
  requestToken(namespace: string, name: string, audience: string, expirationSeconds: number): Promise<string>;
}

export function kubeApi(config: KubeConfig, metrics?: Metrics): KubeApi {
  const core = config.makeApiClient(CoreV1Api);
  const counted = <T>(verb: WriteVerb, resource: WriteResource, write: () => Promise<T>): Promise<T> => countedWrite(metrics, verb, resource, write);
  return {
    createSecret: (secret) =>
      counted('create', 'secrets', () => core.createNamespacedSecret({ namespace: secret.metadata?.namespace ?? '', body: secret, fieldManager })),

    applySecret: (secret, resourceVersion) =>
      counted('apply', 'secrets', () =>
        core.patchNamespacedSecret(
          {
            name: secret.metadata?.name ?? '',
            namespace: secret.metadata?.namespace ?? '',
            body: { ...secret, metadata: { ...secret.metadata, resourceVersion } },
            fieldManager,
            force: true,
          },
          setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
        ),
      ),

    deleteSecret: (namespace, name, uid, resourceVersion) =>
      counted('delete', 'secrets', async () => {
        await core.deleteNamespacedSecret({ namespace, name, body: { preconditions: { uid, resourceVersion } } });
      }),

    async readSecret(namespace, name) {
      // A list by name rather than a get: the controller's `list` (its informer's) suffices.
      const list = await core.listNamespacedSecret({ namespace, fieldSelector: `metadata.name=${name}` });
      return list.items[0];
    },

    setSecretOwners: (namespace, name, resourceVersion, owners) =>
      counted('patch', 'secrets', () =>
        core.patchNamespacedSecret(
          {
            namespace,
            name,
            body: [
              { op: 'test', path: '/metadata/resourceVersion', value: resourceVersion },
              owners.length === 0 ? { op: 'remove', path: '/metadata/ownerReferences' } : { op: 'add', path: '/metadata/ownerReferences', value: owners },
            ],
            fieldManager,
          },
          setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
        ),
      ),

    patchServiceAccount: (namespace, name, ops) =>
      counted('patch', 'serviceaccounts', () =>
        core.patchNamespacedServiceAccount({ namespace, name, body: ops, fieldManager }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)),
      ),

    applyConfigMap: (configMap) =>
      counted('apply', 'configmaps', async () => {
        await core.patchNamespacedConfigMap(
          { name: configMap.metadata?.name ?? '', namespace: configMap.metadata?.namespace ?? '', body: configMap, fieldManager, force: true },
          setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
        );
      }),

    createEvent: (event) =>
      counted('create', 'events', async () => {
        await core.createNamespacedEvent({ namespace: event.metadata.namespace ?? 'default', body: event, fieldManager });
      }),

    requestToken: (namespace, name, audience, expirationSeconds) =>
      counted('create', 'serviceaccounts/token', async () => {
        const response = await core.createNamespacedServiceAccountToken({
          namespace,
          name,
          body: { spec: { audiences: [audience], expirationSeconds } },
        });
        const token = response.status?.token;
        if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
        return token;
      }),
  };
}

/** Runs one write, counted in kube_ecrlogin_kubernetes_writes_total by verb, resource and whether it succeeded. */
export async function countedWrite<T>(metrics: Metrics | undefined, verb: WriteVerb, resource: WriteResource, write: () => Promise<T>): Promise<T> {
  try {
    const result = await write();
    metrics?.recordWrite(verb, resource, true);
    return result;
  } catch (error) {
    metrics?.recordWrite(verb, resource, false);
    throw error;
  }
}

/** The HTTP status of a Kubernetes API error, if it is one. */
export function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** How a failed request counts: denied (401, 403), invalid (400, 404, 422), anything else transient. */
export function classifyKubeError(error: unknown): 'denied' | 'invalid' | 'transient' {
  const status = statusOf(error);
  if (status === 401 || status === 403) return 'denied';
  if (status === 400 || status === 404 || status === 422) return 'invalid';
  return 'transient';
}

/** A short, safe description of a Kubernetes API error: status and the Status message. */
export function describeKubeError(error: unknown): string {
  if (error instanceof ApiException) {
    let message = '';
    if (typeof error.body === 'string') {
      try {
        message = (JSON.parse(error.body) as { message?: string }).message ?? '';
      } catch {
        message = error.body.slice(0, 200);
      }
    }
    return `HTTP ${error.code}${message ? `: ${message}` : ''}`;
  }
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}

/**
 * What the admission webhook's certificate keeper reads and writes: its TLS Secret and its
 * MutatingWebhookConfiguration's caBundle. Every replica serves the webhook, so these writes do not
 * pass the leader's write gate; optimistic concurrency (resourceVersion) settles who wins.
 */
export interface WebhookApi {
  readSecret(namespace: string, name: string): Promise<V1Secret | undefined>;
  /** Fails with 409 when another replica created it first. */
  createSecret(secret: V1Secret): Promise<V1Secret>;
  /** An update guarded by metadata.resourceVersion: 409 when another replica changed it since. */
  replaceSecret(secret: V1Secret): Promise<V1Secret>;
  readWebhookConfiguration(name: string): Promise<V1MutatingWebhookConfiguration | undefined>;
  patchWebhookConfiguration(name: string, ops: readonly JsonPatchOp[]): Promise<V1MutatingWebhookConfiguration>;
}

export function webhookApi(config: KubeConfig, metrics?: Metrics): WebhookApi {
  const core = config.makeApiClient(CoreV1Api);
  const admission = config.makeApiClient(AdmissionregistrationV1Api);
  const counted = <T>(verb: WriteVerb, resource: WriteResource, write: () => Promise<T>): Promise<T> => countedWrite(metrics, verb, resource, write);
  const absentOn404 = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    }
  };
  return {
    readSecret: (namespace, name) => absentOn404(() => core.readNamespacedSecret({ namespace, name })),
    createSecret: (secret) =>
      counted('create', 'secrets', () => core.createNamespacedSecret({ namespace: secret.metadata?.namespace ?? '', body: secret, fieldManager })),
    replaceSecret: (secret) =>
      counted('update', 'secrets', () =>
        core.replaceNamespacedSecret({ namespace: secret.metadata?.namespace ?? '', name: secret.metadata?.name ?? '', body: secret, fieldManager }),
      ),
    readWebhookConfiguration: (name) => absentOn404(() => admission.readMutatingWebhookConfiguration({ name })),
    patchWebhookConfiguration: (name, ops) =>
      counted('patch', 'mutatingwebhookconfigurations', () =>
        admission.patchMutatingWebhookConfiguration({ name, body: ops, fieldManager }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)),
      ),
  };
}

/**
 * Live reads for the admission webhook, when its caches do not hold an object yet. Lists with a field
 * selector on the name, so that the controller's `list` permission suffices (no `get`), and a
 * namespace label selector (sharding) applies as it does to the informer.
 */
export interface LiveReads {
  namespace(name: string, labelSelector?: string): Promise<V1Namespace | undefined>;
  serviceAccount(namespace: string, name: string): Promise<V1ServiceAccount | undefined>;
}

export function liveReads(config: KubeConfig): LiveReads {
  const core = config.makeApiClient(CoreV1Api);
  return {
    async namespace(name, labelSelector) {
      const list = await core.listNamespace({ fieldSelector: `metadata.name=${name}`, ...(labelSelector !== undefined ? { labelSelector } : {}) });
      return list.items[0];
    },
    async serviceAccount(namespace, name) {
      const list = await core.listNamespacedServiceAccount({ namespace, fieldSelector: `metadata.name=${name}` });
      return list.items[0];
    },
  };
}
