// The floor: the least any tool could do for a cold start. A minimal script with the same client
// (@kubernetes/client-node, sharing connections as the controller does) that only writes what the
// controller writes for each namespace: one Secret of the same shape and size, and one JSON Patch
// adding it to the `default` ServiceAccount's imagePullSecrets, with as many requests in flight as
// the controller has workers. No reads, no AWS, no Events, no checks.
//
//   node test/bench/floor.ts job.json   (written by test/bench/workload.ts)

import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { shareConnections } from '../../src/kube/connections.ts';

export interface FloorJob {
  readonly kubeconfig: string;
  readonly concurrency: number;
  readonly namespaces: readonly string[];
  readonly serviceAccount: string;
  /** The Secret to write in every namespace (metadata.namespace is set per namespace). */
  readonly secret: k8s.V1Secret;
}

async function main(file: string): Promise<void> {
  const job = JSON.parse(readFileSync(file, 'utf8')) as FloorJob;
  const config = new k8s.KubeConfig();
  config.loadFromFile(job.kubeconfig);
  // The client as the controller configures it: one connection pool, not one connection per request.
  shareConnections(config);
  const core = config.makeApiClient(k8s.CoreV1Api);
  const name = job.secret.metadata?.name ?? '';
  const queue = [...job.namespaces];
  let errors = 0;
  const worker = async (): Promise<void> => {
    for (let namespace = queue.shift(); namespace !== undefined; namespace = queue.shift()) {
      try {
        await core.createNamespacedSecret({
          namespace,
          body: { ...job.secret, metadata: { ...job.secret.metadata, namespace } },
          fieldManager: 'bench-floor',
        });
        await core.patchNamespacedServiceAccount(
          { namespace, name: job.serviceAccount, body: [{ op: 'add', path: '/imagePullSecrets', value: [{ name }] }], fieldManager: 'bench-floor' },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
        );
      } catch (error) {
        errors++;
        process.stderr.write(`floor: ${namespace}: ${error instanceof k8s.ApiException ? `HTTP ${error.code}` : String(error)}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, () => worker()));
  process.stdout.write(`${JSON.stringify({ errors })}\n`);
  process.exitCode = errors === 0 ? 0 : 1;
}

await main(process.argv[2] ?? '');
