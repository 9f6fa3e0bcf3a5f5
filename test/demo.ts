// `make demo`: the main job end to end on a local control plane.
//
// Starts etcd, kube-apiserver and kube-controller-manager, and the AWS test server (ECR tokens that
// live 40 seconds, so that a refresh shows within the demo); runs the kube-ecrlogin command as its own
// process; annotates a Namespace and a ServiceAccount; waits for their Secrets and imagePullSecrets
// entries and prints them (passwords redacted); shows one refresh in place; removes the annotations
// and shows the cleanup; stops everything. Exits 0 when every step worked.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { start } from './aws/server.ts';
import { repoRoot, startControlPlane, type ControlPlane } from './cluster/controlplane.ts';
import { controllerKeys } from './support/controller.ts';
import { eventually } from './support/eventually.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const west = '444455556666.dkr.ecr.eu-west-1.amazonaws.com';
const say = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const step = (text: string): void => {
  say(`\n\u001b[1m==> ${text}\u001b[0m`);
};

function redactedSecret(secret: k8s.V1Secret): unknown {
  const config = JSON.parse(Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString()) as {
    auths: Record<string, { username: string; password: string; auth: string }>;
  };
  const auths = Object.fromEntries(
    Object.entries(config.auths).map(([host, entry]) => [
      host,
      { username: entry.username, password: `<${entry.password.length} characters>`, auth: '<redacted>' },
    ]),
  );
  return {
    name: secret.metadata?.name,
    namespace: secret.metadata?.namespace,
    type: secret.type,
    labels: secret.metadata?.labels,
    annotations: secret.metadata?.annotations,
    '.dockerconfigjson': { auths },
  };
}

async function main(): Promise<void> {
  step('Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)');
  const plane: ControlPlane = await startControlPlane({ dir: join(repoRoot, '.cache', 'demo', 'cluster') });
  say(`kube-apiserver ${plane.server}`);
  const aws = await start({ tokenLifetimeSeconds: 40 });
  aws.addUser(controllerKeys);
  say(`AWS test server ${aws.endpoint} (ECR tokens live 40 s in this demo; 12 h on AWS)`);
  let controller: ChildProcess | undefined;
  try {
    const admin = plane.adminConfig();
    const core = admin.makeApiClient(k8s.CoreV1Api);
    const kubeconfig = plane.writeKubeconfig(admin, join(repoRoot, '.cache', 'demo', 'kubeconfig'));

    step('Configuring kube-ecrlogin: refresh at half the token lifetime, at most every 5 s');
    await core.createNamespace({ body: { metadata: { name: 'kube-ecrlogin' } } });
    await core.createNamespacedConfigMap({
      namespace: 'kube-ecrlogin',
      body: {
        metadata: { name: 'kube-ecrlogin-config' },
        data: { 'config.yaml': 'refresh:\n  margin: 50%\n  jitter: 0%\n  minInterval: 5s\n' },
      },
    });

    step('Running `kube-ecrlogin run` (static AWS keys from the environment, as the original)');
    controller = spawn(
      process.execPath,
      [
        join(repoRoot, 'src', 'cli.ts'),
        'run',
        '--namespace',
        'kube-ecrlogin',
        '--metrics-bind-address',
        '127.0.0.1:0',
        '--health-probe-bind-address',
        '127.0.0.1:0',
      ],
      {
        env: {
          ...process.env,
          KUBECONFIG: kubeconfig,
          AWS_ENDPOINT_URL: aws.endpoint,
          AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
          AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
          AWS_REGION: 'us-east-1',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        stdio: ['ignore', 'inherit', 'pipe'],
      },
    );
    controller.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() === '') continue;
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          const { level, message, timestamp: _t, logger: _l, ...fields } = entry;
          say(`  [controller] ${String(level)}: ${String(message)} ${JSON.stringify(fields)}`);
        } catch {
          say(`  [controller] ${line}`);
        }
      }
    });

    step(`Annotating Namespace demo with ecr-login/server: ${east}, ${west}`);
    await core.createNamespace({ body: { metadata: { name: 'demo', annotations: { 'ecr-login/server': `${east},${west}` } } } });
    const first = await eventually('Secret demo/ecr-login', () => core.readNamespacedSecret({ namespace: 'demo', name: 'ecr-login' }), { timeoutMs: 60_000 });
    say(JSON.stringify(redactedSecret(first), null, 2));
    const defaultSa = await eventually('the imagePullSecrets entry', async () => {
      const sa = await core.readNamespacedServiceAccount({ namespace: 'demo', name: 'default' });
      if (!(sa.imagePullSecrets ?? []).some((ref) => ref.name === 'ecr-login')) throw new Error('not yet');
      return sa;
    });
    say(`ServiceAccount demo/default imagePullSecrets: ${JSON.stringify(defaultSa.imagePullSecrets)}`);

    step('Annotating ServiceAccount demo/builder (it already pulls from Docker Hub)');
    await core.createNamespacedServiceAccount({
      namespace: 'demo',
      body: { metadata: { name: 'builder', annotations: { 'ecr-login/server': west } }, imagePullSecrets: [{ name: 'dockerhub' }] },
    });
    const builder = await eventually('builder entry', async () => {
      const sa = await core.readNamespacedServiceAccount({ namespace: 'demo', name: 'builder' });
      if (!(sa.imagePullSecrets ?? []).some((ref) => ref.name === 'ecr-login-builder')) throw new Error('not yet');
      return sa;
    });
    say(`ServiceAccount demo/builder imagePullSecrets: ${JSON.stringify(builder.imagePullSecrets)} (dockerhub kept)`);

    step('Waiting for a refresh: the Secret is updated in place before its token expires');
    const refreshed = await eventually(
      'a refresh',
      async () => {
        const secret = await core.readNamespacedSecret({ namespace: 'demo', name: 'ecr-login' });
        if (secret.data?.['.dockerconfigjson'] === first.data?.['.dockerconfigjson']) throw new Error('not yet');
        return secret;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    say(`Same Secret (uid ${refreshed.metadata?.uid === first.metadata?.uid ? 'unchanged' : 'CHANGED'}), new token:`);
    say(`  expires-at ${first.metadata?.annotations?.['ecr-login/expires-at'] ?? '?'} -> ${refreshed.metadata?.annotations?.['ecr-login/expires-at'] ?? '?'}`);
    if (refreshed.metadata?.uid !== first.metadata?.uid) throw new Error('the Secret was recreated instead of updated in place');
    say(`AWS calls so far: ${JSON.stringify(aws.counters().byApi)}`);

    step('Removing the annotations: kube-ecrlogin removes only what it added');
    await core.patchNamespace(
      { name: 'demo', body: [{ op: 'remove', path: '/metadata/annotations/ecr-login~1server' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await core.patchNamespacedServiceAccount(
      { namespace: 'demo', name: 'builder', body: [{ op: 'remove', path: '/metadata/annotations/ecr-login~1server' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await eventually('cleanup', async () => {
      const secrets = await core.listNamespacedSecret({ namespace: 'demo' });
      const names = secrets.items.map((s) => s.metadata?.name);
      if (names.includes('ecr-login') || names.includes('ecr-login-builder')) throw new Error(`still there: ${names.join(',')}`);
      const sa = await core.readNamespacedServiceAccount({ namespace: 'demo', name: 'builder' });
      const refs = (sa.imagePullSecrets ?? []).map((ref) => ref.name);
      if (refs.join(',') !== 'dockerhub') throw new Error(`builder has ${refs.join(',')}`);
      say(`Secrets left in demo: ${names.length === 0 ? 'none' : names.join(', ')}; builder imagePullSecrets: ${JSON.stringify(sa.imagePullSecrets)}`);
    });
    step('Demo complete');
  } finally {
    if (controller !== undefined && controller.exitCode === null) {
      const exited = new Promise((resolve) => controller?.once('exit', resolve));
      controller.kill('SIGTERM');
      await exited;
    }
    await aws.close();
    await plane.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
