// Reading Kubernetes objects in tests.

import * as k8s from '@kubernetes/client-node';
import { cluster } from './cluster.ts';

export interface AuthEntry {
  readonly username: string;
  readonly password: string;
  readonly auth: string;
}

export function core(): k8s.CoreV1Api {
  return cluster().adminConfig().makeApiClient(k8s.CoreV1Api);
}

export function readSecret(namespace: string, name: string): Promise<k8s.V1Secret> {
  return core().readNamespacedSecret({ namespace, name });
}

/** Resolves when the Secret is absent (404); throws while it exists. */
export async function secretAbsent(namespace: string, name: string): Promise<void> {
  try {
    await readSecret(namespace, name);
  } catch (error) {
    if (error instanceof k8s.ApiException && error.code === 404) return;
    throw error;
  }
  throw new Error(`Secret ${namespace}/${name} still exists`);
}

export function decodeDockerConfig(secret: k8s.V1Secret): Record<string, AuthEntry> {
  const encoded = secret.data?.['.dockerconfigjson'];
  if (encoded === undefined) throw new Error('no .dockerconfigjson');
  return (JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as { auths: Record<string, AuthEntry> }).auths;
}

export function pullSecretNames(sa: k8s.V1ServiceAccount): string[] {
  return (sa.imagePullSecrets ?? []).map((ref) => ref.name ?? '');
}

/** Events about an object, newest last. */
export async function eventsFor(namespace: string, kind: string, name: string): Promise<k8s.CoreV1Event[]> {
  const list = await core().listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
  });
  return list.items.sort((a, b) => String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)));
}

/**
 * Events about a Namespace, where its tenant reads them: on its `default` ServiceAccount, in the
 * namespace itself, each message starting with "Namespace <name>: ".
 */
export async function namespaceEvents(name: string): Promise<k8s.CoreV1Event[]> {
  const prefix = `Namespace ${name}: `;
  return (await eventsFor(name, 'ServiceAccount', 'default'))
    .filter((event) => event.message?.startsWith(prefix) === true)
    .map((event) => ({ ...event, message: (event.message ?? '').slice(prefix.length) }));
}
