// Hand-built inputs for the pure planning code: Namespaces, ServiceAccounts, Secrets and Snapshots as
// the informer caches would hold them, and tokens as the broker hands them out.

import type { V1Namespace, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import type { IssuedToken } from '../../src/broker.ts';
import type { StaticTarget } from '../../src/config/options.ts';
import { defaultSettings, parseSettings, type Settings } from '../../src/config/settings.ts';
import type { Snapshot } from '../../src/controller/model.ts';

export const t0 = Date.UTC(2025, 0, 1);
export const hour = 3_600_000;

export const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
export const east2 = '444455556666.dkr.ecr.us-east-1.amazonaws.com';
export const west = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
export const roleA = 'arn:aws:iam::111122223333:role/team-a-puller';
export const roleB = 'arn:aws:iam::111122223333:role/team-b-puller';

export function namespace(name: string, annotations?: Record<string, string>, labels?: Record<string, string>): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, uid: `uid-ns-${name}`, ...(annotations ? { annotations } : {}), ...(labels ? { labels } : {}) },
  };
}

export interface ServiceAccountShape {
  readonly annotations?: Record<string, string>;
  readonly imagePullSecrets?: string[];
  readonly resourceVersion?: string;
  readonly deleting?: boolean;
}

export function serviceAccount(ns: string, name: string, shape: ServiceAccountShape = {}): V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      name,
      namespace: ns,
      uid: `uid-sa-${name}`,
      resourceVersion: shape.resourceVersion ?? '100',
      ...(shape.annotations ? { annotations: shape.annotations } : {}),
      ...(shape.deleting ? { deletionTimestamp: new Date(t0) } : {}),
    },
    ...(shape.imagePullSecrets ? { imagePullSecrets: shape.imagePullSecrets.map((n) => ({ name: n })) } : {}),
  };
}

export function settingsFrom(yaml: string): Settings {
  const result = parseSettings(yaml);
  if (!result.ok) throw new Error(result.error.join('\n'));
  return result.value;
}

export function snapshot(parts: {
  namespace: V1Namespace;
  serviceAccounts?: V1ServiceAccount[];
  secrets?: V1Secret[];
  settings?: Settings;
  now?: number;
  target?: StaticTarget;
}): Snapshot {
  return {
    namespace: parts.namespace,
    serviceAccounts: parts.serviceAccounts ?? [],
    secrets: parts.secrets ?? [],
    settings: parts.settings ?? defaultSettings,
    now: parts.now ?? t0,
    ...(parts.target ? { target: parts.target } : {}),
  };
}

/** A token issued at issuedAt (default t0) that expires 12 hours later unless expiresAt says otherwise (null: no expiry). */
export function token(password: string, issuedAt = t0, expiresAt: number | null = issuedAt + 12 * hour): IssuedToken {
  return { username: 'AWS', password, issuedAt, expiresAt: expiresAt ?? undefined };
}
