// The ECR-shaped registry and the token tap, without a kubelet (no root needed): the registry answers
// a pull's requests the way ECR does, and accepts exactly the tokens the AWS test server issued, for
// their region, until they expire.

import assert from 'node:assert/strict';
import { request } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { start, type AwsTestServer } from '../aws/server.ts';
import { alice, ecrClient } from '../aws/fixtures.ts';
import { buildImage } from './oci.ts';
import { authenticate, startRegistry, type Registry } from './registry.ts';
import { makeRegistryTls, type RegistryTls } from './tls.ts';
import { startTokenTap, TokenBook, type TokenTap } from './tokens.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const west = '444455556666.dkr.ecr.eu-west-1.amazonaws.com';
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('ECR-style authentication', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const book = new TokenBook();
  book.add({ password: 'issued-east', account: '111122223333', region: 'us-east-1', expiresAt: now + 60_000 });
  book.add({ password: 'expired-east', account: '111122223333', region: 'us-east-1', expiresAt: now });
  const cases: { name: string; header: string | undefined; region: string; want: string }[] = [
    { name: 'no credentials are anonymous', header: undefined, region: 'us-east-1', want: 'anonymous' },
    { name: 'a bearer token is anonymous (ECR speaks Basic)', header: 'Bearer abc', region: 'us-east-1', want: 'anonymous' },
    { name: 'an issued, unexpired token for the region is accepted', header: basic('AWS', 'issued-east'), region: 'us-east-1', want: 'ok' },
    { name: 'a token AWS never issued is unknown', header: basic('AWS', 'made-up'), region: 'us-east-1', want: 'unknown-token' },
    { name: 'an issued token under another user name is unknown', header: basic('admin', 'issued-east'), region: 'us-east-1', want: 'unknown-token' },
    { name: 'a token of another region is refused', header: basic('AWS', 'issued-east'), region: 'eu-west-1', want: 'wrong-region' },
    { name: 'a token at its expiry is expired', header: basic('AWS', 'expired-east'), region: 'us-east-1', want: 'expired' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(authenticate(c.header, c.region, book, now).outcome, c.want);
    });
  }
});

describe('the registry and the token tap', () => {
  let dir: string;
  let tls: RegistryTls;
  let aws: AwsTestServer;
  let tap: TokenTap;
  let registry: Registry;
  let offsetMs = 0;
  const image = buildImage({ binary: Buffer.from('#!/bin/true\n'), name: 'app', architecture: 'amd64' });

  /** A request to the registry as if to https://<host>/ (the Host header picks the registry). */
  const call = (
    host: string,
    path: string,
    options: { method?: string; auth?: string } = {},
  ): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: registry.port,
          path,
          method: options.method ?? 'GET',
          servername: host,
          ca: tls.ca,
          agent: false,
          headers: { host, ...(options.auth !== undefined ? { authorization: options.auth } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.end();
    });

  /** A token for a region, fetched through the tap as the controller does. */
  const token = async (region: string): Promise<string> => {
    const ecr = ecrClient(tap.endpoint, alice, { region });
    const out = await ecr.send(new GetAuthorizationTokenCommand({}));
    ecr.destroy();
    return Buffer.from(out.authorizationData?.[0]?.authorizationToken ?? '', 'base64')
      .toString('utf8')
      .slice('AWS:'.length);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-registry-'));
    tls = makeRegistryTls(dir, [east, west]);
    aws = await start({ users: [alice], tokenLifetimeSeconds: 600 });
    tap = await startTokenTap(aws.endpoint);
    registry = await startRegistry({ cert: tls.cert, key: tls.key, tokens: tap.book, port: 0, now: () => Date.now() + offsetMs });
    registry.push(east, 'team/app', '1', image);
  });

  after(async () => {
    await registry.close();
    await tap.close();
    await aws.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('notes each token GetAuthorizationToken issues through it, with its region, account and expiry', async () => {
    const asked = Date.now();
    const password = await token('us-east-1');
    const noted = tap.book.find(password);
    assert.equal(noted?.region, 'us-east-1');
    assert.equal(noted?.account, '111122223333');
    assert.ok(noted.expiresAt >= asked + 599_000 && noted.expiresAt <= Date.now() + 600_000);
  });

  it('challenges a request without credentials with Basic, as ECR does', async () => {
    const res = await call(east, '/v2/');
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], `Basic realm="https://${east}/",service="ecr.amazonaws.com"`);
    assert.equal(registry.requests.at(-1)?.outcome, 'anonymous');
  });

  it('serves the manifest by tag and by digest, and the blobs, to AWS with a current token', async () => {
    const auth = basic('AWS', await token('us-east-1'));
    assert.equal((await call(east, '/v2/', { auth })).status, 200);
    const byTag = await call(east, '/v2/team/app/manifests/1', { auth });
    assert.equal(byTag.status, 200);
    assert.equal(byTag.headers['content-type'], 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(byTag.headers['docker-content-digest'], image.manifestDigest);
    assert.deepEqual(byTag.body, image.manifest);
    const head = await call(east, `/v2/team/app/manifests/${image.manifestDigest}`, { auth, method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], String(image.manifest.length));
    for (const [digest, blob] of image.blobs) assert.deepEqual((await call(east, `/v2/team/app/blobs/${digest}`, { auth })).body, blob);
    const last = registry.requests.at(-1);
    assert.deepEqual([last?.user, last?.outcome, last?.repository, last?.kind], ['AWS', 'ok', 'team/app', 'blob']);
  });

  it('refuses a token of another region, a token nobody issued, and an unknown repository', async () => {
    const westToken = await token('eu-west-1');
    assert.equal((await call(east, '/v2/team/app/manifests/1', { auth: basic('AWS', westToken) })).status, 401);
    assert.equal((await call(east, '/v2/team/app/manifests/1', { auth: basic('AWS', 'forged') })).status, 401);
    assert.equal((await call(east, '/v2/team/other/manifests/1', { auth: basic('AWS', await token('us-east-1')) })).status, 404);
    assert.equal((await call(west, '/v2/', { auth: basic('AWS', westToken) })).status, 404, 'no image pushed to that host');
  });

  it("refuses an expired token with 403 and ECR's message", async () => {
    const password = await token('us-east-1');
    offsetMs = tap.book.find(password)!.expiresAt - Date.now();
    try {
      const res = await call(east, '/v2/team/app/manifests/1', { auth: basic('AWS', password) });
      assert.equal(res.status, 403);
      assert.deepEqual(JSON.parse(res.body.toString('utf8')), {
        errors: [{ code: 'DENIED', message: 'Your authorization token has expired. Reauthenticate and try again.' }],
      });
    } finally {
      offsetMs = 0;
    }
  });
});
