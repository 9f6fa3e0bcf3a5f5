// Where the SDK adapter's requests go, by the AWS SDK's own endpoint resolution and with no endpoint
// override: for every registry host form, the token request (ECR or ECR Public) and the STS requests
// that go with it reach that partition's endpoint, FIPS hosts the FIPS endpoints, dual-stack hosts the
// dual-stack ones, each signed for the right region and service. A request handler records each
// request and fails it, so nothing leaves the machine. Also: the clients the adapter keeps for the
// controller's own identity are bounded.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stsEndpointFor } from '../../../src/aws/api.ts';
import { sdkAwsApi, type SdkOptions } from '../../../src/aws/sdk.ts';
import { parseRegistryHost, tokenEndpoint } from '../../../src/registry.ts';
import { registryForms, roleIn } from '../../support/registry-forms.ts';

interface Seen {
  readonly url: string;
  /** `<region>/<service>` of the SigV4 credential scope. */
  readonly scope: string;
  readonly target: string;
}

/** An HTTP handler that records each request and fails it. */
function capture(): { readonly handler: NonNullable<SdkOptions['requestHandler']>; readonly seen: Seen[] } {
  const seen: Seen[] = [];
  const handler = {
    handle(request: { protocol: string; hostname: string; port?: number; path: string; headers: Record<string, string> }) {
      const scope = /Credential=[^/]+\/\d{8}\/([^/]+\/[^/]+)\//.exec(request.headers['authorization'] ?? '')?.[1] ?? 'unsigned';
      seen.push({
        url: `${request.protocol}//${request.hostname}${request.port !== undefined ? `:${request.port}` : ''}${request.path}`,
        scope,
        target: request.headers['x-amz-target'] ?? '',
      });
      return Promise.reject(new Error('captured'));
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
  };
  return { handler, seen };
}

const captured = async (call: Promise<unknown>): Promise<void> => {
  await assert.rejects(call, /captured/);
};

describe('the SDK adapter, by the SDK endpoint resolution', () => {
  const saved = { ...process.env };
  let dir: string;
  before(() => {
    // Test files run in processes of their own; still, nothing here may inherit an endpoint override
    // or a variant setting, from the harness or from this machine's AWS configuration.
    for (const key of Object.keys(process.env)) {
      if (key.startsWith('AWS_')) Reflect.deleteProperty(process.env, key);
    }
    dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-endpoints-'));
    process.env['AWS_CONFIG_FILE'] = join(dir, 'config');
    process.env['AWS_SHARED_CREDENTIALS_FILE'] = join(dir, 'credentials');
    process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
    // The controller's own identity: static keys, so that the chain never looks elsewhere.
    process.env['AWS_ACCESS_KEY_ID'] = 'AKIAENDPOINTTEST0001';
    process.env['AWS_SECRET_ACCESS_KEY'] = 'endpoint-test-secret';
  });
  after(() => {
    for (const key of Object.keys(process.env)) Reflect.deleteProperty(process.env, key);
    Object.assign(process.env, saved);
    rmSync(dir, { recursive: true, force: true });
  });

  it('has no endpoint override to inherit', () => {
    assert.deepEqual(
      Object.keys(process.env).filter((key) => key.startsWith('AWS_ENDPOINT_URL')),
      [],
    );
  });

  for (const form of registryForms) {
    it(`sends the ${form.name} host's token and STS requests to ${form.tokenUrl} and ${form.stsUrl}`, async () => {
      const parsed = parseRegistryHost(form.host);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
      assert.equal(parsed.value.partition, form.partition);
      const endpoint = tokenEndpoint(parsed.value);
      const { handler, seen } = capture();
      const api = sdkAwsApi({ requestTimeoutMs: 1_000, requestHandler: handler });
      const keys = { accessKeyId: 'ASIAROLESESSION00001', secretAccessKey: 'x', sessionToken: 'y' };
      const role = { endpoint: stsEndpointFor(endpoint), roleArn: roleIn(form.partition), sessionName: 'ecr-login.test', durationSeconds: 3600 };

      await captured(api.getAuthorizationToken(endpoint)); // the controller's own identity
      await captured(api.getAuthorizationToken(endpoint, keys)); // an assumed role's session
      await captured(api.assumeRole(role));
      await captured(api.assumeRoleWithWebIdentity({ ...role, webIdentityToken: 'eyJ.token' }));

      const tokenTarget =
        form.service === 'ecr' ? 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken' : 'SpencerFrontendService.GetAuthorizationToken';
      const token = { url: form.tokenUrl, scope: `${form.region}/${form.service}`, target: tokenTarget };
      const sts = { url: form.stsUrl, scope: `${form.region}/sts`, target: '' };
      assert.deepEqual(seen, [token, token, sts, { ...sts, scope: 'unsigned' }]);
    });
  }

  it("exchanges the controller's own web identity (IRSA) at its home region's STS, whatever the token's region", async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'eyJ.web-identity');
    Object.assign(process.env, { AWS_REGION: 'eu-west-1', AWS_ROLE_ARN: 'arn:aws:iam::111122223333:role/controller', AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile });
    delete process.env['AWS_ACCESS_KEY_ID'];
    delete process.env['AWS_SECRET_ACCESS_KEY'];
    try {
      const { handler, seen } = capture();
      const api = sdkAwsApi({ requestTimeoutMs: 1_000, requestHandler: handler });
      await captured(api.getAuthorizationToken({ service: 'ecr', region: 'ap-southeast-2', fips: false, dualStack: false }));
      assert.deepEqual(seen, [{ url: 'https://sts.eu-west-1.amazonaws.com/', scope: 'unsigned', target: '' }]);
    } finally {
      for (const key of ['AWS_REGION', 'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE']) Reflect.deleteProperty(process.env, key);
      process.env['AWS_ACCESS_KEY_ID'] = 'AKIAENDPOINTTEST0001';
      process.env['AWS_SECRET_ACCESS_KEY'] = 'endpoint-test-secret';
    }
  });

  it('keeps at most 16 clients for its own identity, however many endpoints it served', async () => {
    const { handler, seen } = capture();
    const api = sdkAwsApi({ requestTimeoutMs: 1_000, requestHandler: handler });
    const regions = [
      'us-east-1',
      'us-east-2',
      'us-west-1',
      'us-west-2',
      'eu-west-1',
      'eu-west-2',
      'eu-west-3',
      'eu-central-1',
      'eu-central-2',
      'eu-north-1',
      'eu-south-1',
      'eu-south-2',
      'ap-south-1',
      'ap-south-2',
      'ap-northeast-1',
      'ap-northeast-2',
      'ap-northeast-3',
      'ap-southeast-1',
      'ap-southeast-2',
      'ca-central-1',
      'sa-east-1',
      'me-south-1',
    ];
    for (const region of regions) {
      for (const variant of [
        { fips: false, dualStack: false },
        { fips: true, dualStack: false },
      ]) {
        await captured(api.getAuthorizationToken({ service: 'ecr', region, ...variant }));
      }
    }
    assert.equal(seen.length, 44);
    assert.ok(api.clients <= 16, `${String(api.clients)} clients kept`);
    assert.ok(api.clients > 0, 'and it does keep some: they hold connections');
  });
});
