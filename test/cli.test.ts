// The kube-ecrlogin command as users run it: a separate process, its exit codes and its output.
// `once` is the original kube-ecrlogin's CronJob mode, including its static target (AWS_ECR_SERVER
// -> Secret regcred in the job's own namespace, no annotation needed).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { start, type AwsTestServer } from './aws/server.ts';
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
    for (const command of ['run', 'once', 'doctor']) assert.match(result.stdout, new RegExp(`\\n  ${command} `));
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
    });
  }
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
      cluster().writes({ namespace: ns, resource: 'secrets' }).map((w) => w.verb),
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
    assert.ok(!cluster().writes({ namespace: ns, resource: 'secrets' }).some((w) => w.verb === 'delete'));
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
