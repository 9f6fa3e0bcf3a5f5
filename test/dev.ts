// `make dev-up` / `make dev-down`: a local control plane and the AWS test server in the background,
// for running the controller (or kubectl) by hand.
//
//   make dev-up && . .cache/dev/env && kubectl get namespaces && make dev-down
//
// dev-up writes .cache/dev/kubeconfig (admin) and .cache/dev/env (export lines: KUBECONFIG and the
// AWS endpoint and static test keys the AWS SDK reads).

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot, startControlPlane, stopControlPlaneIn } from './cluster/controlplane.ts';
import { controllerKeys } from './support/controller.ts';

const dir = join(repoRoot, '.cache', 'dev');
const clusterDir = join(dir, 'cluster');
const awsState = join(dir, 'aws.json');

async function up(): Promise<void> {
  await down();
  mkdirSync(dir, { recursive: true });
  const plane = await startControlPlane({ dir: clusterDir, detached: true, verbose: true });
  const kubeconfig = plane.writeKubeconfig(plane.adminConfig(), join(dir, 'kubeconfig'));

  // The AWS test server, detached, with the controller's static keys registered and the local
  // apiserver trusted as an OIDC issuer (for per-ServiceAccount web identity).
  const trustFile = join(dir, 'aws-trust.json');
  writeFileSync(trustFile, JSON.stringify({ users: [controllerKeys], issuers: [{ issuer: plane.issuer, caFile: plane.state.caFile }] }, null, 2));
  const logFile = join(dir, 'aws.log');
  const out = openSync(logFile, 'w');
  const child = spawn(process.execPath, [join(repoRoot, 'test', 'aws', 'main.ts'), '--trust-file', trustFile], {
    stdio: ['ignore', out, out],
    detached: true,
  });
  closeSync(out);
  child.unref();
  let endpoint: string | undefined;
  for (let i = 0; i < 100 && endpoint === undefined; i++) {
    const first = readFileSync(logFile, 'utf8').split('\n')[0] ?? '';
    if (first.startsWith('{')) endpoint = (JSON.parse(first) as { endpoint: string }).endpoint;
    else await sleep(100);
  }
  if (endpoint === undefined) throw new Error(`the AWS test server did not start; see ${logFile}`);
  writeFileSync(awsState, JSON.stringify({ pid: child.pid, endpoint }) + '\n');

  const env = [
    `export KUBECONFIG=${kubeconfig}`,
    `export AWS_ENDPOINT_URL=${endpoint}`,
    `export AWS_ACCESS_KEY_ID=${controllerKeys.accessKeyId}`,
    `export AWS_SECRET_ACCESS_KEY=${controllerKeys.secretAccessKey}`,
    'export AWS_REGION=us-east-1',
    'export AWS_EC2_METADATA_DISABLED=true',
    `export KUBE_ECRLOGIN_CLUSTER_DIR=${clusterDir}`,
  ];
  writeFileSync(join(dir, 'env'), env.join('\n') + '\n');
  process.stdout.write(
    `Control plane: ${plane.server}\nAWS test server: ${endpoint}\n\nUse it:  . .cache/dev/env && kubectl get namespaces\nStop it: make dev-down\n`,
  );
}

async function down(): Promise<void> {
  await stopControlPlaneIn(clusterDir);
  if (existsSync(awsState)) {
    const { pid } = JSON.parse(readFileSync(awsState, 'utf8')) as { pid: number };
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    rmSync(awsState);
  }
}

const command = process.argv[2];
if (command === 'up') await up();
else if (command === 'down') {
  await down();
  process.stdout.write('Stopped the dev control plane and AWS test server.\n');
} else {
  process.stderr.write('usage: dev.ts up|down\n');
  process.exitCode = 2;
}
