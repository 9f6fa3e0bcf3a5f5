// `kube-ecrlogin doctor`'s ECR checks for what issue 18 added: one check per token endpoint and
// identity in use, so ECR Public (ecr-public:GetAuthorizationToken), FIPS and dual-stack endpoints are
// each probed and named, and a failure of one is told apart from the others. As a separate process,
// against the real control plane and the AWS test server; no controller runs.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Check, DoctorReport } from '../../src/doctor.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { runCommand } from '../support/command.ts';
import { controllerKeys } from '../support/controller.ts';
import { admin } from './support.ts';

describe('kube-ecrlogin doctor: ECR Public, FIPS and dual-stack endpoints', () => {
  let aws: AwsTestServer;
  let kubeconfig = '';
  const home = uniqueName('doc-reg-system');
  const label = { key: 'kube-ecrlogin.test/doctor-registries', value: uniqueName('reg') };

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    const { core } = admin();
    await core.createNamespace({ body: { metadata: { name: home } } });
    const annotated: Record<string, string>[] = [
      { 'ecr-login/server': 'public.ecr.aws, 111122223333.dkr.ecr.us-east-1.amazonaws.com' },
      { 'ecr-login/server': 'public.ecr.aws' },
      { 'ecr-login/server': '111122223333.dkr.ecr-fips.us-east-2.amazonaws.com, 111122223333.dkr-ecr.eu-west-1.on.aws' },
    ];
    for (const annotations of annotated) {
      await core.createNamespace({ body: { metadata: { name: uniqueName('doc-reg'), annotations, labels: { [label.key]: label.value } } } });
    }
    const plane = cluster();
    kubeconfig = plane.writeKubeconfig(plane.adminConfig(), join(plane.state.dir, 'ops', `${home}-admin.kubeconfig`));
  });
  after(() => aws.close());

  const doctor = async (): Promise<{ code: number | null; checks: readonly Check[] }> => {
    const result = await runCommand(['doctor', '--namespace', home, '--namespace-selector', `${label.key}=${label.value}`, '--aws-retries', '0', '--json'], {
      KUBECONFIG: kubeconfig,
      AWS_ENDPOINT_URL: aws.endpoint,
      AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    assert.ok(result.stdout.startsWith('{'), result.stderr);
    return { code: result.code, checks: (JSON.parse(result.stdout) as DoctorReport).checks.filter((check) => check.name.startsWith('ecr')) };
  };

  it('probes each token endpoint once, naming ECR Public by its API', async () => {
    aws.resetCounters();
    const { checks } = await doctor();
    assert.deepEqual(
      checks.map((check) => [check.name, check.status]),
      [
        ['ecr eu-west-1 dual-stack', 'ok'],
        ['ecr us-east-1', 'ok'],
        ['ecr us-east-2 fips', 'ok'],
        ['ecr-public', 'ok'],
      ],
    );
    assert.match(
      checks.find((check) => check.name === 'ecr-public')?.detail ?? '',
      /^ecr-public:GetAuthorizationToken as the controller's own identity for 2 Secrets, valid until /,
    );
    assert.equal(aws.count({ api: 'GetAuthorizationToken', service: 'ecr-public' }), 1);
    assert.equal(aws.count({ api: 'GetAuthorizationToken', service: 'ecr' }), 3);
  });

  it('fails the ECR Public check alone when ECR Public denies', async () => {
    aws.faults.set({ api: 'GetAuthorizationToken', service: 'ecr-public', kind: 'accessDenied' });
    try {
      const { code, checks } = await doctor();
      assert.equal(code, 1);
      assert.deepEqual(
        checks.filter((check) => check.status !== 'ok').map((check) => check.name),
        ['ecr-public'],
      );
      assert.match(checks.find((check) => check.name === 'ecr-public')?.detail ?? '', /ecr-public:GetAuthorizationToken failed: AccessDeniedException/);
    } finally {
      aws.faults.clear();
    }
  });
});
