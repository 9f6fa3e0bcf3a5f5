// The original kube-ecrlogin's method, applied to every namespace: per namespace, one ECR token
// fetch, then delete the Secret `regcred` and create it again, one step after the other, as its
// CronJob did (`aws ecr get-login-password`, `kubectl delete secret`, `kubectl create secret
// docker-registry`). It patched no ServiceAccount. Namespaces are worked on with as many in flight
// as the controller has workers, and one ECR client per region is reused: both favour the original,
// which ran one namespace per CronJob and started the AWS CLI each time.
//
//   node test/bench/seed-method.ts job.json   (written by test/bench/workload.ts)

import { readFileSync } from 'node:fs';
import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import * as k8s from '@kubernetes/client-node';
import { shareConnections } from '../../src/kube/connections.ts';

export interface SeedJob {
  readonly kubeconfig: string;
  readonly concurrency: number;
  /** Namespace and the registry host its Secret is for. */
  readonly targets: readonly { readonly namespace: string; readonly host: string; readonly region: string }[];
  readonly secretName: string;
}

async function main(file: string): Promise<void> {
  const job = JSON.parse(readFileSync(file, 'utf8')) as SeedJob;
  const config = new k8s.KubeConfig();
  config.loadFromFile(job.kubeconfig);
  // The client as the controller configures it: one connection pool, not one connection per request.
  shareConnections(config);
  const core = config.makeApiClient(k8s.CoreV1Api);
  const clients = new Map<string, ECRClient>();
  const ecr = (region: string): ECRClient => {
    let client = clients.get(region);
    if (client === undefined) {
      client = new ECRClient({ region, maxAttempts: 1 });
      clients.set(region, client);
    }
    return client;
  };
  const queue = [...job.targets];
  let errors = 0;
  const worker = async (): Promise<void> => {
    for (let target = queue.shift(); target !== undefined; target = queue.shift()) {
      const { namespace, host, region } = target;
      try {
        const output = await ecr(region).send(new GetAuthorizationTokenCommand({}));
        const decoded = Buffer.from(output.authorizationData?.[0]?.authorizationToken ?? '', 'base64').toString('utf8');
        const password = decoded.slice(decoded.indexOf(':') + 1);
        try {
          await core.deleteNamespacedSecret({ namespace, name: job.secretName });
        } catch (error) {
          if (!(error instanceof k8s.ApiException && error.code === 404)) throw error;
        }
        const dockerconfig = JSON.stringify({
          auths: { [host]: { username: 'AWS', password, auth: Buffer.from(`AWS:${password}`).toString('base64') } },
        });
        await core.createNamespacedSecret({
          namespace,
          body: {
            metadata: { name: job.secretName },
            type: 'kubernetes.io/dockerconfigjson',
            data: { '.dockerconfigjson': Buffer.from(dockerconfig).toString('base64') },
          },
        });
      } catch (error) {
        errors++;
        process.stderr.write(`seed method: ${namespace}: ${error instanceof k8s.ApiException ? `HTTP ${error.code}` : String(error)}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, () => worker()));
  for (const client of clients.values()) client.destroy();
  process.stdout.write(`${JSON.stringify({ errors })}\n`);
  process.exitCode = errors === 0 ? 0 : 1;
}

await main(process.argv[2] ?? '');
