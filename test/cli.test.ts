// The kube-ecrlogin command as users run it: a separate process, its exit codes and its output.
// `once` is the original kube-ecrlogin's CronJob mode, including its static target (AWS_ECR_SERVER
// -> Secret regcred in the job's own namespace, no annotation needed).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, type AwsTestServer } from './aws/server.ts';
import { buildImageApp } from './bench/image-runtime.ts';
import { repoRoot } from './cluster/controlplane.ts';
import { cluster, uniqueName } from './support/cluster.ts';
import { runCommand } from './support/command.ts';
import { controllerKeys } from './support/controller.ts';
import { core, decodeDockerConfig, namespaceEvents, readSecret } from './support/objects.ts';

const host = (region: string): string => `111122223333.dkr.ecr.${region}.amazonaws.com`;

describe('kube-ecrlogin (the command)', () => {
  it('prints its version', async () => {
    const result = await runCommand(['--version']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^kube-ecrlogin \d+\.\d+\.\d+\n$/);
  });

  it('prints help listing its commands', async () => {
    const result = await runCommand(['--help']);
    assert.equal(result.code, 0);
    for (const command of ['run', 'once', 'doctor', 'version']) assert.match(result.stdout, new RegExp(`\\n  ${command} `));
    assert.match(result.stdout, /\nRun 'kube-ecrlogin <command> --help' for the flags of one command\.\n/);
    // The environment variables it reads are named beside their flags.
    for (const env of ['KUBECONFIG', 'POD_NAMESPACE', 'LOG_LEVEL', 'AWS_ECR_SERVER']) assert.match(result.stdout, new RegExp(`\\[${env}\\]`));
  });

  it('prints the version with the version command too', async () => {
    const result = await runCommand(['version']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^kube-ecrlogin \d+\.\d+\.\d+\n$/);
  });

  it('prints the help of one command: run --help shows the flags run reads, doctor --help those of doctor', async () => {
    const run = await runCommand(['run', '--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: kube-ecrlogin run \[flags\]\n\nRuns the controller/);
    for (const flag of ['--leader-elect', '--workers', '--webhook', '--target-registries', '--log-level', '--status-interval'])
      assert.match(run.stdout, new RegExp(`\\n  ${flag} `));
    assert.doesNotMatch(run.stdout, /--json|Commands:/);
    const doctor = await runCommand(['doctor', '--help']);
    assert.equal(doctor.code, 0);
    assert.match(doctor.stdout, /^Usage: kube-ecrlogin doctor \[flags\]\n/);
    for (const flag of ['--json', '--leader-elect', '--config-map', '--status-config-map']) assert.match(doctor.stdout, new RegExp(`\\n  ${flag} `));
    assert.doesNotMatch(doctor.stdout, /--workers|--resync-period|--metrics-bind-address/);
    assert.match((await runCommand(['once', '-h'])).stdout, /^Usage: kube-ecrlogin once \[flags\]\n/);
  });

  for (const [args, message] of [
    [['--workers', 'many'], /--workers "many" is not a whole number/],
    [['--resync-period', 'soon'], /--resync-period "soon" is not a duration/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['launch'], /unknown command "launch"/],
    [['--target-registries', 'docker.io'], /not a private ECR registry host/],
    [['--log-level', 'loud'], /--log-level "loud" is not one of/],
  ] as const) {
    it(`rejects ${args.join(' ')} with exit code 2 and a clear message`, async () => {
      const result = await runCommand(args);
      assert.equal(result.code, 2);
      assert.match(result.stderr, message);
      // The error and where help is, not forty lines of help that bury it.
      const lines = result.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 2, result.stderr);
      assert.equal(lines[1], "Run 'kube-ecrlogin --help' for usage.");
      assert.equal(result.stdout, '');
    });
  }

  it("points a command's usage error at that command's help", async () => {
    const result = await runCommand(['doctor', '--workers', '0']);
    assert.equal(result.code, 2);
    assert.deepEqual(result.stderr.trimEnd().split('\n'), [
      'kube-ecrlogin: --workers "0" is not a whole number from 1 to 64',
      "Run 'kube-ecrlogin doctor --help' for usage.",
    ]);
  });

  it('refuses a status ConfigMap that is the policy ConfigMap', async () => {
    const result = await runCommand(['run', '--status-config-map', 'kube-ecrlogin-config']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--status-config-map "kube-ecrlogin-config" is the --config-map ConfigMap/);
  });

  it('with no kubeconfig and not in a cluster, exits 1 at once saying where it looked', async () => {
    const home = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-home-'));
    try {
      // No KUBECONFIG, an empty HOME, no KUBERNETES_SERVICE_HOST: client-node would talk to http://localhost:8080.
      for (const command of ['run', 'once'] as const) {
        const started = Date.now();
        const result = await runCommand([command, '--metrics-bind-address', '0', '--health-probe-bind-address', '0'], { HOME: home }, { timeoutMs: 20_000 });
        assert.equal(result.code, 1, `${command}: ${result.stderr}`);
        assert.ok(Date.now() - started < 15_000, `${command} took ${Date.now() - started} ms`);
        assert.equal(
          result.stderr,
          `kube-ecrlogin: no Kubernetes configuration: --kubeconfig and KUBECONFIG are not set, ${home}/.kube/config does not exist, and this is not a Pod (no ServiceAccount token at /var/run/secrets/kubernetes.io/serviceaccount/token). Pass --kubeconfig PATH, set KUBECONFIG, or run it in the cluster\n`,
        );
      }
      const doctor = await runCommand(['doctor'], { HOME: home }, { timeoutMs: 20_000 });
      assert.equal(doctor.code, 1);
      assert.match(doctor.stdout, /^kubernetes +FAIL +no kubeconfig: no Kubernetes configuration: --kubeconfig and KUBECONFIG are not set/m);
      const missing = await runCommand(['once'], { HOME: home, KUBECONFIG: join(home, 'nowhere') }, { timeoutMs: 20_000 });
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, new RegExp(`^kube-ecrlogin: cannot load the kubeconfig ${home}/nowhere \\(--kubeconfig or KUBECONFIG\\): ENOENT`));
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("on Node.js older than 24, exits 1 saying it needs Node.js 24 (the image's bundle and npm's bin, before any dependency loads)", (t) => {
    const old = ['/usr/local/bin/node', '/usr/bin/node'].find((node) => {
      if (!existsSync(node)) return false;
      const major = Number(execFileSync(node, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim());
      return major < 24;
    });
    if (old === undefined) {
      t.skip('no Node.js older than 24 at /usr/local/bin/node or /usr/bin/node');
      return;
    }
    const app = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-old-node-'));
    try {
      // What the image runs (the bundle) and what npm installs as the bin (tsc's dist/cli.js).
      const bundle = buildImageApp(app);
      const compiled = join(app, 'compiled');
      execFileSync(process.execPath, [
        join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        join(repoRoot, 'tsconfig.build.json'),
        '--outDir',
        compiled,
      ]);
      for (const [entry, args] of [bundle, join(compiled, 'cli.js')].flatMap((file) =>
        [['--version'], ['run'], ['doctor', '--json']].map((a) => [file, a] as const),
      )) {
        const result: SpawnSyncReturns<string> = spawnSync(old, [entry, ...args], {
          encoding: 'utf8',
          timeout: 30_000,
          env: { PATH: process.env['PATH'] ?? '' },
        });
        assert.equal(result.status, 1, `${entry} ${args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, /^kube-ecrlogin needs Node\.js 24 or later; this is Node\.js 2\d\.\d+\.\d+ \(/);
        assert.doesNotMatch(result.stderr, /TypeError|at file:/);
        assert.equal(result.stdout, '');
      }
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });

  it('make help prints no escape codes when its output is not a terminal', () => {
    // stdin not a socket (Node's default pipe is one, and bash then reads /etc/bash.bashrc, which fails under -u).
    const result = spawnSync('make', ['--no-print-directory', 'help'], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^Usage: make <target>\n/);
    assert.match(result.stdout, /\n {2}help {2,}Show this help\.\n/);
    assert.ok(!result.stdout.includes('\u001b'), JSON.stringify(result.stdout.slice(0, 200)));
  });
});

describe('kube-ecrlogin once', () => {
  let aws: AwsTestServer;
  let kubeconfig: string;
  let env: Record<string, string>;
  const label = `kube-ecrlogin.test/once=${uniqueName('run')}`;
  const [labelKey = '', labelValue = ''] = label.split('=');

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    const plane = cluster();
    kubeconfig = plane.writeKubeconfig(plane.adminConfig(), join(plane.state.dir, `once-${labelValue}.kubeconfig`));
    env = {
      KUBECONFIG: kubeconfig,
      AWS_ENDPOINT_URL: aws.endpoint,
      AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  });

  after(() => aws.close());

  const namespace = async (annotations: Record<string, string>): Promise<string> => {
    const name = uniqueName('once');
    await core().createNamespace({ body: { metadata: { name, annotations, labels: { [labelKey]: labelValue } } } });
    return name;
  };
  const onceArgs = (): string[] => ['once', '--namespace-selector', label, '--namespace', 'default', '--aws-retries', '0'];

  it('exits 0 after one pass when every annotated namespace got its Secret', async () => {
    const ns = await namespace({ 'ecr-login/server': host('us-east-2') });
    const result = await runCommand(onceArgs(), env);
    assert.equal(result.code, 0, result.stderr);
    const secret = await readSecret(ns, 'ecr-login');
    assert.deepEqual(Object.keys(decodeDockerConfig(secret)), [host('us-east-2')]);
  });

  it('exits non-zero, naming the namespace, when one fails', async () => {
    const good = await namespace({ 'ecr-login/server': host('us-east-2') });
    const bad = await namespace({ 'ecr-login/server': host('eu-south-1') });
    const id = aws.faults.set({ api: 'GetAuthorizationToken', region: 'eu-south-1', kind: 'accessDenied' });
    const result = await runCommand(onceArgs(), env);
    aws.faults.clear({ id });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`${bad}: .*AccessDenied`));
    assert.doesNotMatch(result.stderr, new RegExp(`${good}:`));
    await readSecret(good, 'ecr-login');
    assert.ok((await namespaceEvents(bad)).some((event) => event.reason === 'RefreshFailed'));
  });

  it('serves the original static target: AWS_ECR_SERVER -> Secret regcred in its own namespace, no annotation', async () => {
    const ns = await namespace({});
    const withTarget = { ...env, AWS_ECR_SERVER: host('eu-west-3'), POD_NAMESPACE: ns };
    const first = await runCommand(['once', '--namespace-selector', label, '--aws-retries', '0'], withTarget);
    assert.equal(first.code, 0, first.stderr);
    const secret = await readSecret(ns, 'regcred');
    assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
    const auths = decodeDockerConfig(secret);
    assert.deepEqual(Object.keys(auths), [host('eu-west-3')]);
    assert.equal(auths[host('eu-west-3')]?.username, 'AWS');
    assert.equal(aws.count({ api: 'GetAuthorizationToken', region: 'eu-west-3' }), 1, 'the region comes from the host');
    const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'default' });
    assert.equal(sa.imagePullSecrets, undefined, 'like the original, no ServiceAccount is patched');

    // The next scheduled run finds the token still fresh: no AWS call, no write, no window without a Secret.
    const calls = aws.count({ api: 'GetAuthorizationToken', region: 'eu-west-3' });
    const second = await runCommand(['once', '--namespace-selector', label, '--aws-retries', '0'], withTarget);
    assert.equal(second.code, 0, second.stderr);
    const again = await readSecret(ns, 'regcred');
    assert.equal(again.metadata?.resourceVersion, secret.metadata?.resourceVersion);
    assert.equal(aws.count({ api: 'GetAuthorizationToken', region: 'eu-west-3' }), calls);
    assert.deepEqual(
      cluster()
        .writes({ namespace: ns, resource: 'secrets' })
        .map((w) => w.verb),
      ['create'],
      'created once, never deleted',
    );
  });

  it('refreshes the static target in place once it is due, never deleting it', async () => {
    const ns = await namespace({});
    // The job's own namespace holds its ConfigMap: refresh at half the lifetime, at most every second.
    await core().createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': 'refresh:\n  margin: 50%\n  jitter: 0%\n  minInterval: 1s\n' } },
    });
    const withTarget = { ...env, AWS_ECR_SERVER: host('ap-south-2'), POD_NAMESPACE: ns };
    aws.setTokenLifetime(4);
    const first = await runCommand(['once', '--namespace-selector', label], withTarget);
    aws.setTokenLifetime(12 * 3600);
    assert.equal(first.code, 0, first.stderr);
    const before = await readSecret(ns, 'regcred');
    // Half of a 4 s lifetime later the token is due; the next run refreshes it.
    const due = Date.parse(before.metadata?.annotations?.['ecr-login/issued-at'] ?? '') + 2_000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now() + 200)));
    const second = await runCommand(['once', '--namespace-selector', label], withTarget);
    assert.equal(second.code, 0, second.stderr);
    const afterRun = await readSecret(ns, 'regcred');
    assert.equal(afterRun.metadata?.uid, before.metadata?.uid);
    assert.ok(afterRun.data?.['.dockerconfigjson'] !== before.data?.['.dockerconfigjson'], 'a new token');
    assert.ok(
      !cluster()
        .writes({ namespace: ns, resource: 'secrets' })
        .some((w) => w.verb === 'delete'),
    );
  });

  it('refuses to start with an invalid ConfigMap, naming the error', async () => {
    const ns = uniqueName('badconfig');
    await core().createNamespace({ body: { metadata: { name: ns } } });
    await core().createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': 'refresh:\n  margin: always\n' } },
    });
    const result = await runCommand(['once', '--namespace', ns, '--namespace-selector', label], env);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /refusing to start: .*refresh\.margin: "always"/s);
  });
});
