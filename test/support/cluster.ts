// Access to the run's shared control plane (started by test/setup.ts, or by `make dev-up`).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { attachControlPlane, repoRoot, type ControlPlane } from '../cluster/controlplane.ts';

let attached: ControlPlane | undefined;

/** The shared control plane. Run tests with `make test`, or after `make dev-up`. */
export function cluster(): ControlPlane {
  if (attached) return attached;
  const candidates = [process.env['KUBE_ECRLOGIN_CLUSTER_DIR'], join(repoRoot, '.cache', 'test', 'cluster'), join(repoRoot, '.cache', 'dev', 'cluster')].filter(
    (dir): dir is string => dir !== undefined,
  );
  const dir = candidates.find((candidate) => existsSync(join(candidate, 'state.json')));
  if (dir === undefined) {
    throw new Error('no running control plane: run the tests with `make test`, or start one with `make dev-up`');
  }
  attached = attachControlPlane(dir);
  return attached;
}

/** A namespace name unique to this run, e.g. uniqueName('annotate') -> 'annotate-3f9c2a'. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}
