// The controller's own identity from IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, resolved by the
// AWS SDK's default chain), and a tenant role chained on it. The token file holds a real
// ServiceAccount token from the test apiserver, which the AWS test server verifies.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, startTestController, type TestController } from '../support/controller.ts';
import { readSecret } from '../support/objects.ts';

const account = '111122223333';
const registry = `${account}.dkr.ecr.eu-west-1.amazonaws.com`;
const controllerRole = `arn:aws:iam::${account}:role/kube-ecrlogin-controller`;
const tenantRole = `arn:aws:iam::${account}:role/tenant-pull`;

describe('the controller on IRSA', () => {
  let aws: AwsTestServer;
  let controller: TestController;

  before(async () => {
    const plane = cluster();
    aws = await start();
    aws.trustIssuer({ issuer: plane.issuer, ca: plane.caPem });
    aws.setDefaultPolicy('deny');
    controller = await startTestController({
      prepare: async (namespace) => {
        // What EKS does for a pod whose ServiceAccount has eks.amazonaws.com/role-arn: a projected token
        // for audience sts.amazonaws.com, and two environment variables.
        aws.setRole({ roleArn: controllerRole, webIdentitySubjects: [`system:serviceaccount:${namespace}:controller`] });
        aws.setRole({ roleArn: tenantRole, trustedPrincipals: [`arn:aws:sts::${account}:assumed-role/kube-ecrlogin-controller/*`] });
        const tokenFile = join(plane.state.dir, `irsa-${namespace}.token`);
        writeFileSync(tokenFile, await plane.requestToken(namespace, 'controller', { audiences: ['sts.amazonaws.com'], expirationSeconds: 3600 }));
        process.env['AWS_ENDPOINT_URL'] = aws.endpoint;
        process.env['AWS_REGION'] = 'eu-west-1';
        process.env['AWS_ROLE_ARN'] = controllerRole;
        process.env['AWS_WEB_IDENTITY_TOKEN_FILE'] = tokenFile;
        process.env['AWS_ROLE_SESSION_NAME'] = 'kube-ecrlogin';
        process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
        delete process.env['AWS_ACCESS_KEY_ID'];
        delete process.env['AWS_SECRET_ACCESS_KEY'];
      },
    });
  });

  after(async () => {
    await controller.stop();
    await aws.close();
  });

  it('logs its caller identity once, never a credential', async () => {
    // Asked beside the cache sync, so it may come after the controller is ready.
    const identity = await eventually('the AWS identity log line', () => {
      const lines = controller.logs.filter((line) => line.includes('"AWS identity"'));
      assert.equal(lines.length, 1);
      return Promise.resolve(lines);
    });
    assert.match(identity[0] ?? '', /assumed-role\/kube-ecrlogin-controller\/kube-ecrlogin/);
    assert.doesNotMatch(controller.logs.join('\n'), /ASIA[A-Z0-9]{12,}/);
  });

  it('gets tokens as its IRSA role', async () => {
    const ns = uniqueName('irsa');
    await createServedNamespace(controller, ns, { 'ecr-login/server': registry });
    await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    assert.ok(
      aws.calls.some(
        (call) => call.api === 'GetAuthorizationToken' && call.caller === `arn:aws:sts::${account}:assumed-role/kube-ecrlogin-controller/kube-ecrlogin`,
      ),
    );
  });

  it('chains a tenant role on its IRSA role', async () => {
    const ns = uniqueName('irsa-chain');
    await createServedNamespace(controller, ns, { 'ecr-login/server': registry, 'ecr-login/role-arn': tenantRole });
    await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    const assume = aws.calls.find((call) => call.api === 'AssumeRole' && call.roleArn === tenantRole);
    assert.equal(assume?.caller, `arn:aws:sts::${account}:assumed-role/kube-ecrlogin-controller/kube-ecrlogin`);
    assert.equal(assume?.outcome, 'ok');
    assert.ok(
      aws.calls.some((call) => call.api === 'GetAuthorizationToken' && call.caller === `arn:aws:sts::${account}:assumed-role/tenant-pull/ecr-login.${ns}`),
    );
  });
});
