// An install that gave the controller no AWS identity is not silent: with the placeholder IRSA role
// (AWS_ROLE_ARN as EKS sets it from the irsa component), or with no credentials at all, a running
// controller logs "No AWS identity" with the reason, /readyz fails with it, and `kube-ecrlogin doctor`
// fails its AWS identity check with it (or, run elsewhere, warns of the placeholder on the controller's
// ServiceAccount). With an identity, none of this.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { run, type Running } from '../../src/app.ts';
import { placeholderRoleArn } from '../../src/aws/identity-problem.ts';
import { parseOptions } from '../../src/config/options.ts';
import { diagnose } from '../../src/doctor.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { freePorts } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { httpGet } from '../operations/support.ts';

const awsKeys = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
];

describe('a controller without an AWS identity', () => {
  let aws: AwsTestServer;
  let namespace: string;
  let work: string;
  const saved = { ...process.env };
  const core = (): k8s.CoreV1Api => cluster().adminConfig().makeApiClient(k8s.CoreV1Api);

  /** The environment as the SDK in the controller's Pod would see it, AWS pointed at the test server. */
  const environment = (extra: Record<string, string>): void => {
    for (const key of awsKeys) Reflect.deleteProperty(process.env, key);
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: aws.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(work, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-credentials'),
      ...extra,
    });
  };

  const start_ = async (): Promise<{ running: Running; logs: string[]; readyz: () => Promise<{ status: number; body: string }> }> => {
    const [port] = await freePorts(1);
    const options = parseOptions(
      [
        'run',
        '--namespace',
        namespace,
        '--namespace-selector',
        `kube-ecrlogin.test/run=${namespace}`,
        '--metrics-bind-address',
        '0',
        '--health-probe-bind-address',
        `127.0.0.1:${String(port)}`,
        '--aws-retries',
        '0',
        '--shutdown-timeout',
        '5s',
      ],
      { env: {}, hostname: 'no-identity' },
    );
    const logs: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString());
        done();
      },
    });
    const running = await run(options, {
      kubeConfig: cluster().adminConfig(),
      log: createLogger({ level: 'info', stream }),
      metrics: new Metrics({ defaultMetrics: false }),
    });
    return { running, logs, readyz: () => httpGet(`http://127.0.0.1:${String(port)}/readyz`) };
  };

  const doctorOptions = () =>
    parseOptions(['doctor', '--namespace', namespace, '--namespace-selector', `kube-ecrlogin.test/run=${namespace}`, '--aws-retries', '0'], {
      env: {},
      hostname: 'doctor',
    });
  const identityCheck = async () =>
    (await diagnose(doctorOptions(), { kubeConfig: cluster().adminConfig() })).checks.find((check) => check.name === 'aws identity');

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    work = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-no-identity-'));
    writeFileSync(join(work, 'token'), 'not-a-real-token');
    namespace = uniqueName('no-identity');
    await core().createNamespace({ body: { metadata: { name: namespace } } });
  });
  after(async () => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) Reflect.deleteProperty(process.env, key);
    Object.assign(process.env, saved);
    await core().deleteNamespace({ name: namespace });
    await aws.close();
    rmSync(work, { recursive: true, force: true });
  });

  for (const scenario of [
    {
      name: 'the placeholder IRSA role',
      env: (): Record<string, string> => ({ AWS_ROLE_ARN: placeholderRoleArn, AWS_WEB_IDENTITY_TOKEN_FILE: join(work, 'token') }),
      reason:
        /^no AWS identity: the ServiceAccount names the placeholder role arn:aws:iam::111122223333:role\/kube-ecrlogin \(AWS_ROLE_ARN\); set the role ARN on the ServiceAccount/,
    },
    {
      name: 'no credentials at all',
      env: (): Record<string, string> => ({}),
      reason: /^no AWS identity: the AWS SDK found no credentials .*; set the role ARN on the ServiceAccount/,
    },
  ]) {
    it(`${scenario.name}: says so in the log, /readyz and the doctor`, async () => {
      environment(scenario.env());
      const { running, logs, readyz } = await start_();
      try {
        await eventually('/readyz to fail with the reason', async () => {
          const answer = await readyz();
          assert.equal(answer.status, 503);
          assert.match(answer.body, scenario.reason);
        });
        const line = logs.map((l) => JSON.parse(l) as { level: string; message: string; problem?: string }).find((l) => l.message === 'No AWS identity');
        assert.equal(line?.level, 'error');
        assert.match(line.problem ?? '', scenario.reason);
      } finally {
        await running.stop();
      }
      const check = await identityCheck();
      assert.equal(check?.status, 'fail');
      assert.match(check.detail, scenario.reason);
    });
  }

  it('with an identity: ready, and the doctor names it', async () => {
    environment({ AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId, AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey });
    const { running, logs, readyz } = await start_();
    try {
      await eventually('ready', async () => {
        const answer = await readyz();
        assert.equal(answer.body, 'ok\n');
      });
      assert.ok(logs.some((l) => l.includes('"AWS identity"')));
      assert.ok(!logs.some((l) => l.includes('No AWS identity')));
    } finally {
      await running.stop();
    }
    const check = await identityCheck();
    assert.equal(check?.status, 'ok');
    assert.match(check.detail, new RegExp(controllerKeys.arn));
  });

  it("run elsewhere, the doctor warns of the placeholder on the controller's ServiceAccount", async () => {
    environment({ AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId, AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey });
    await core().createNamespacedServiceAccount({
      namespace,
      body: { metadata: { name: 'kube-ecrlogin', annotations: { 'eks.amazonaws.com/role-arn': placeholderRoleArn } } },
    });
    const check = await identityCheck();
    assert.equal(check?.status, 'warn');
    assert.match(
      check.detail,
      new RegExp(`^no AWS identity: ServiceAccount ${namespace}/kube-ecrlogin names the placeholder role .* \\(this doctor runs as ${controllerKeys.arn}\\)$`),
    );
  });
});
