// Global setup for `node --test`: one real control plane per run, shared by every test file.
// Test files attach to it with cluster() from test/support/cluster.ts and isolate themselves by
// unique namespace names.

import { join } from 'node:path';
import { repoRoot, startControlPlane, type ControlPlane } from './cluster/controlplane.ts';

let plane: ControlPlane | undefined;

export async function globalSetup(): Promise<void> {
  const dir = process.env['KUBE_ECRLOGIN_CLUSTER_DIR'] ?? join(repoRoot, '.cache', 'test', 'cluster');
  process.env['KUBE_ECRLOGIN_CLUSTER_DIR'] = dir;
  const started = Date.now();
  plane = await startControlPlane({ dir });
  process.stderr.write(`control plane ready at ${plane.server} in ${Date.now() - started} ms\n`);
}

export async function globalTeardown(): Promise<void> {
  await plane?.stop();
}
