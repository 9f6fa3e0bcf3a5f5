// Every registry host form end to end: annotation host -> token broker -> SDK adapter -> the AWS test
// server (AWS_ENDPOINT_URL points the SDK at it). The server keeps partitions apart as AWS does (keys
// work only in their own partition's regions; STS assumes only its own partition's roles), so a
// request signed for the wrong region, or a role of the wrong partition, fails here as it would on AWS.
// The same against moto, a second implementation of the wire protocols, for the forms it serves (it
// has no ECR Public). Also: the controller's own web identity (IRSA) is exchanged once for every region.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EcrEndpoint } from '../../src/aws/api.ts';
import { sdkAwsApi } from '../../src/aws/sdk.ts';
import { TokenBroker, TokenError, type TokenIdentity } from '../../src/broker.ts';
import { systemClock } from '../../src/clock.ts';
import { defaultSettings } from '../../src/config/settings.ts';
import { parseRegistryHost, tokenEndpoint } from '../../src/registry.ts';
import { startMoto, type Moto } from '../aws/moto.ts';
import { serviceAccountClaims, startOidcIssuer, type OidcIssuer } from '../aws/oidc-issuer.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { registryForms, roleIn } from '../support/registry-forms.ts';

const account = '111122223333';
const partitions = [...new Set(registryForms.map((form) => form.partition))];

/** The controller's own IAM user in each partition, with keys of its own. */
const userIn = (partition: string): { accessKeyId: string; secretAccessKey: string; arn: string } => {
  const index = partitions.indexOf(partition);
  return {
    accessKeyId: `AKIAPARTITION${String(index).padStart(7, '0')}`,
    secretAccessKey: `secret-${partition}`,
    arn: `arn:${partition}:iam::${account}:user/kube-ecrlogin`,
  };
};

function useOwnKeys(partition: string): void {
  const user = userIn(partition);
  process.env['AWS_ACCESS_KEY_ID'] = user.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = user.secretAccessKey;
}

function endpointOf(host: string): EcrEndpoint {
  const parsed = parseRegistryHost(host);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
  return tokenEndpoint(parsed.value);
}

describe('every registry host form, end to end through the AWS test server', () => {
  const saved = { ...process.env };
  let aws: AwsTestServer;
  let idp: OidcIssuer;
  let dir: string;

  before(async () => {
    aws = await start();
    idp = await startOidcIssuer();
    aws.trustIssuer({ issuer: idp.issuer });
    for (const partition of partitions) aws.addUser(userIn(partition));
    dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-partitions-'));
    for (const key of Object.keys(process.env)) if (key.startsWith('AWS_')) Reflect.deleteProperty(process.env, key);
    process.env['AWS_CONFIG_FILE'] = join(dir, 'config');
    process.env['AWS_SHARED_CREDENTIALS_FILE'] = join(dir, 'credentials');
    process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
    process.env['AWS_ENDPOINT_URL'] = aws.endpoint;
  });
  after(async () => {
    for (const key of Object.keys(process.env)) Reflect.deleteProperty(process.env, key);
    Object.assign(process.env, saved);
    rmSync(dir, { recursive: true, force: true });
    await idp.close();
    await aws.close();
  });

  /** A broker over a fresh adapter, whose own identity is the user of a partition. */
  function brokerIn(partition: string): TokenBroker {
    useOwnKeys(partition);
    return new TokenBroker({
      aws: sdkAwsApi({ requestTimeoutMs: 5_000 }),
      clock: systemClock,
      settings: () => defaultSettings,
      retries: 0,
      serviceAccountTokens: {
        mint: (namespace, serviceAccount) =>
          Promise.resolve(idp.sign(serviceAccountClaims(idp.issuer, `system:serviceaccount:${namespace}:${serviceAccount}`, Date.now()))),
      },
    });
  }

  for (const form of registryForms) {
    it(`gets a token for the ${form.name} host ${form.host} as the controller, an assumed role and a web identity of ${form.partition}`, async () => {
      const endpoint = endpointOf(form.host);
      const broker = brokerIn(form.partition);
      const role = roleIn(form.partition);
      const identities: TokenIdentity[] = [
        { mode: 'controller' },
        { mode: 'assume-role', roleArn: role, sessionName: 'ecr-login.team-a' },
        {
          mode: 'service-account',
          roleArn: roleIn(form.partition, 'tenant'),
          namespace: 'team-a',
          serviceAccount: 'puller',
          sessionName: 'ecr-login.team-a.puller',
        },
      ];
      aws.resetCounters();
      for (const identity of identities) {
        const token = await broker.token(identity, endpoint);
        assert.equal(token.username, 'AWS');
      }
      // AssumeRoleWithWebIdentity is unsigned: only its endpoint says where it goes (see endpoints.test.ts).
      const region = (call: { api: string; region: string }): string => (call.api === 'AssumeRoleWithWebIdentity' ? 'unsigned' : call.region);
      assert.deepEqual(
        aws.calls.map((call) => [call.api, call.service, region(call), call.caller ?? '', call.roleArn ?? '', call.outcome]),
        [
          ['GetAuthorizationToken', form.service, form.region, userIn(form.partition).arn, '', 'ok'],
          ['AssumeRole', 'sts', form.region, userIn(form.partition).arn, role, 'ok'],
          ['GetAuthorizationToken', form.service, form.region, `arn:${form.partition}:sts::${account}:assumed-role/pull/ecr-login.team-a`, '', 'ok'],
          ['AssumeRoleWithWebIdentity', 'sts', 'unsigned', '', roleIn(form.partition, 'tenant'), 'ok'],
          ['GetAuthorizationToken', form.service, form.region, `arn:${form.partition}:sts::${account}:assumed-role/tenant/ecr-login.team-a.puller`, '', 'ok'],
        ],
      );
    });
  }

  it("refuses the controller's keys of one partition in another's region, as AWS does", async () => {
    const broker = brokerIn('aws');
    const failed = await broker.token({ mode: 'controller' }, endpointOf('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn')).catch((error: unknown) => error);
    assert.ok(failed instanceof TokenError);
    assert.equal(failed.kind, 'denied');
    assert.match(failed.message, /UnrecognizedClientException/);
  });

  it("refuses a role of another partition at that partition's STS, as AWS does", async () => {
    const broker = brokerIn('aws-cn');
    const china = endpointOf('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn');
    const failed = await broker.token({ mode: 'assume-role', roleArn: roleIn('aws'), sessionName: 'x1' }, china).catch((error: unknown) => error);
    assert.ok(failed instanceof TokenError);
    assert.equal(failed.api, 'AssumeRole');
    assert.equal(failed.kind, 'denied');
  });
});

describe("the controller's own web identity (IRSA)", () => {
  const saved = { ...process.env };
  const controllerRole = `arn:aws:iam::${account}:role/kube-ecrlogin-controller`;
  let aws: AwsTestServer;
  let idp: OidcIssuer;
  let dir: string;

  before(async () => {
    aws = await start();
    idp = await startOidcIssuer();
    aws.trustIssuer({ issuer: idp.issuer });
    dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-irsa-'));
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, idp.sign(serviceAccountClaims(idp.issuer, 'system:serviceaccount:kube-ecrlogin:controller', Date.now())));
    for (const key of Object.keys(process.env)) if (key.startsWith('AWS_')) Reflect.deleteProperty(process.env, key);
    // What EKS sets for a pod whose ServiceAccount has eks.amazonaws.com/role-arn.
    Object.assign(process.env, {
      AWS_CONFIG_FILE: join(dir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ENDPOINT_URL: aws.endpoint,
      AWS_REGION: 'eu-west-1',
      AWS_ROLE_ARN: controllerRole,
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ROLE_SESSION_NAME: 'kube-ecrlogin',
    });
  });
  after(async () => {
    for (const key of Object.keys(process.env)) Reflect.deleteProperty(process.env, key);
    Object.assign(process.env, saved);
    rmSync(dir, { recursive: true, force: true });
    await idp.close();
    await aws.close();
  });

  it('is exchanged once, and shared by every region and ECR Public', async () => {
    const api = sdkAwsApi({ requestTimeoutMs: 5_000 });
    const regions = ['us-east-1', 'eu-west-1', 'eu-central-1', 'ap-southeast-2', 'sa-east-1'];
    await Promise.all(regions.map((region) => api.getAuthorizationToken({ service: 'ecr', region, fips: false, dualStack: false })));
    await api.getAuthorizationToken({ service: 'ecr-public', region: 'us-east-1', fips: false, dualStack: false });
    for (const region of regions) await api.getAuthorizationToken({ service: 'ecr', region, fips: false, dualStack: false });
    const exchanges = aws.calls.filter((call) => call.api === 'AssumeRoleWithWebIdentity');
    // Where it goes (the home region's STS) is in endpoints.test.ts: the call is unsigned.
    assert.deepEqual(
      exchanges.map((call) => [call.roleArn, call.subject, call.outcome]),
      [[controllerRole, 'system:serviceaccount:kube-ecrlogin:controller', 'ok']],
    );
    const tokens = aws.calls.filter((call) => call.api === 'GetAuthorizationToken');
    assert.equal(tokens.length, 11);
    assert.deepEqual([...new Set(tokens.map((call) => call.caller))], [`arn:aws:sts::${account}:assumed-role/kube-ecrlogin-controller/kube-ecrlogin`]);
  });
});

describe('every private registry host form, end to end against moto', () => {
  const saved = { ...process.env };
  let moto: Moto;
  let dir: string;

  before(async () => {
    moto = await startMoto();
    dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-moto-'));
    for (const key of Object.keys(process.env)) if (key.startsWith('AWS_')) Reflect.deleteProperty(process.env, key);
    Object.assign(process.env, {
      AWS_CONFIG_FILE: join(dir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ENDPOINT_URL: moto.endpoint,
      // moto takes any key, and attributes it to its default account.
      AWS_ACCESS_KEY_ID: 'AKIAMOTOEXAMPLE00001',
      AWS_SECRET_ACCESS_KEY: 'moto-secret',
    });
  });
  after(async () => {
    for (const key of Object.keys(process.env)) Reflect.deleteProperty(process.env, key);
    Object.assign(process.env, saved);
    rmSync(dir, { recursive: true, force: true });
    await moto.close();
  });

  const broker = (): TokenBroker =>
    new TokenBroker({
      aws: sdkAwsApi({ requestTimeoutMs: 10_000 }),
      clock: systemClock,
      settings: () => defaultSettings,
      retries: 0,
      serviceAccountTokens: { mint: () => Promise.reject(new Error('not used')) },
    });

  for (const form of registryForms.filter((candidate) => candidate.service === 'ecr')) {
    it(`gets a token for the ${form.name} host ${form.host} as the controller and as an assumed role of ${form.partition}`, async () => {
      const endpoint = endpointOf(form.host);
      const tokens = broker();
      for (const identity of [{ mode: 'controller' }, { mode: 'assume-role', roleArn: roleIn(form.partition), sessionName: 'ecr-login.moto' }] as const) {
        const token = await tokens.token(identity, endpoint);
        assert.equal(token.username, 'AWS');
        assert.ok(token.password.length > 0);
      }
    });
  }

  it('does not serve ECR Public (moto 5.2.5): ECR Public is tested against our AWS test server only', async () => {
    const failed = await broker()
      .token({ mode: 'controller' }, endpointOf('public.ecr.aws'))
      .catch((error: unknown) => error);
    assert.ok(failed instanceof TokenError, 'when moto serves ECR Public, run the forms above against it too');
    assert.equal(failed.api, 'ecr-public:GetAuthorizationToken');
  });
});
