// The controller's resident memory as the image runs it, for the Deployment's memory request:
// `node test/bench/memory.ts [N]` (default N = 300).
//
// On a private control plane (.cache/bench-memory/, wiped first) and the AWS test server, the bundle of
// `npm run bundle` runs with the Dockerfile's NODE_OPTIONS (heap share resolved against the base
// Deployment's memory limit), as `kube-ecrlogin run` with 4 workers, twice:
//   1. at start: nothing annotated; RSS once /readyz answers (config loaded, caches synced) and 10 s later;
//   2. a cold start of N annotated namespaces: RSS once every Secret and imagePullSecrets entry is in
//      place, and 10 s later; VmHWM (the peak) over the whole run.
// Figures in MiB (VmRSS, VmHWM from /proc), on stdout.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { start as startAws } from '../aws/server.ts';
import { freePorts, repoRoot, startControlPlane } from '../cluster/controlplane.ts';
import { controllerKeys } from '../support/controller.ts';
import { buildImageApp, imageEnv, imageRuntime } from './image-runtime.ts';
import { processCost, type ProcessCost } from './proc.ts';

const namespaces = Number(process.argv[2] ?? '300');
const dir = join(repoRoot, '.cache', 'bench-memory');
const label = { key: 'kube-ecrlogin.bench/memory', value: 'served' };
const host = '111122223333.dkr.ecr.us-east-1.amazonaws.com';

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function ready(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

const mib = (cost: ProcessCost): string => `RSS ${cost.rssMiB.toFixed(0)} MiB, peak ${cost.peakRssMiB.toFixed(0)} MiB`;

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const plane = await startControlPlane({ dir: join(dir, 'cluster') });
  const aws = await startAws();
  aws.addUser(controllerKeys);
  const children: ChildProcess[] = [];
  try {
    const admin = plane.adminConfig();
    const core = admin.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'kube-ecrlogin' } } });
    const kubeconfig = plane.writeKubeconfig(admin, join(dir, 'admin.kubeconfig'));
    const app = join(dir, 'app');
    const bundle = buildImageApp(app);
    const runtime = imageRuntime();
    process.stdout.write(`node ${runtime.nodeArgs.join(' ')} ${bundle} run (Node ${process.versions.node}, limit ${runtime.memoryLimitMiB} MiB)\n`);

    const controller = async (phase: string): Promise<{ child: ChildProcess; port: number; spawnedAt: number }> => {
      const [port = 0] = await freePorts(1);
      const log = openSync(join(dir, `controller-${phase}.log`), 'w');
      const child = spawn(
        process.execPath,
        [
          ...runtime.nodeArgs,
          bundle,
          'run',
          '--namespace',
          'kube-ecrlogin',
          '--namespace-selector',
          `${label.key}=${label.value}`,
          '--workers',
          '4',
          '--metrics-bind-address',
          '0',
          '--health-probe-bind-address',
          `127.0.0.1:${port}`,
        ],
        {
          env: {
            ...imageEnv(bundle),
            PATH: process.env['PATH'] ?? '',
            HOME: dir,
            KUBECONFIG: kubeconfig,
            AWS_ENDPOINT_URL: aws.endpoint,
            AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
            AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
            AWS_REGION: 'us-east-1',
            AWS_EC2_METADATA_DISABLED: 'true',
          },
          stdio: ['ignore', log, log],
        },
      );
      closeSync(log);
      children.push(child);
      return { child, port, spawnedAt: Date.now() };
    };
    const stop = async (child: ChildProcess): Promise<void> => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    };

    // 1. At start, nothing to serve.
    const idle = await controller('start');
    await until('ready', () => ready(idle.port));
    const atReady = processCost(idle.child.pid ?? 0);
    await sleep(10_000);
    const idleLater = processCost(idle.child.pid ?? 0);
    process.stdout.write(
      `at start (ready after ${((Date.now() - idle.spawnedAt - 10_000) / 1000).toFixed(1)} s): ${mib(atReady)}; 10 s later: ${mib(idleLater)}\n`,
    );
    await stop(idle.child);

    // 2. A cold start of N annotated namespaces.
    for (let i = 0; i < namespaces; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, namespaces - i) }, (_, j) =>
          core.createNamespace({
            body: { metadata: { name: `mem-${i + j}`, labels: { [label.key]: label.value }, annotations: { 'ecr-login/server': host } } },
          }),
        ),
      );
    }
    await until('every default ServiceAccount', async () => {
      const accounts = await core.listServiceAccountForAllNamespaces({ fieldSelector: 'metadata.name=default' });
      return accounts.items.filter((sa) => sa.metadata?.namespace?.startsWith('mem-') === true).length === namespaces;
    });
    const cold = await controller('cold');
    await until(`${namespaces} Secrets and imagePullSecrets entries`, async () => {
      const secrets = await core.listSecretForAllNamespaces({ labelSelector: 'app.kubernetes.io/managed-by=kube-ecrlogin' });
      if (secrets.items.filter((s) => s.metadata?.namespace?.startsWith('mem-') === true).length < namespaces) return false;
      const accounts = await core.listServiceAccountForAllNamespaces({ fieldSelector: 'metadata.name=default' });
      return accounts.items.filter((sa) => sa.metadata?.namespace?.startsWith('mem-') === true && (sa.imagePullSecrets ?? []).length > 0).length === namespaces;
    });
    const served = processCost(cold.child.pid ?? 0);
    const seconds = ((Date.now() - cold.spawnedAt) / 1000).toFixed(1);
    await sleep(10_000);
    const later = processCost(cold.child.pid ?? 0);
    process.stdout.write(`cold start of ${namespaces} namespaces (served in ${seconds} s): ${mib(served)}; 10 s later: ${mib(later)}\n`);
    await stop(cold.child);
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await aws.close();
    await plane.stop();
  }
}

await main();
