// Registry hosts through the controller, against the real control plane and the AWS test server:
// ECR Public alone and beside private registries in one Secret, one ECR Public call per identity for
// every Secret that needs it, hosts written in any case, and regions that do not exist or belong to
// another partition than their domain refused before any AWS call.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, withAwsAndController } from '../support/controller.ts';
import { decodeDockerConfig, namespaceEvents, readSecret } from '../support/objects.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const west = '444455556666.dkr.ecr.eu-west-1.amazonaws.com';
const pub = 'public.ecr.aws';

describe('registry hosts through the controller', () => {
  const env = withAwsAndController();

  it('gives a namespace asking for ECR Public alone a Secret with its auths entry, from ECR Public', async () => {
    const ns = uniqueName('public');
    const before = env.aws.count({ service: 'ecr-public' });
    await createServedNamespace(env.controller, ns, { 'ecr-login/server': pub });
    const secret = await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    const auths = decodeDockerConfig(secret);
    assert.deepEqual(Object.keys(auths), [pub]);
    assert.equal(auths[pub]?.username, 'AWS');
    assert.equal(auths[pub]?.auth, Buffer.from(`AWS:${auths[pub]?.password ?? ''}`).toString('base64'));
    assert.ok(Date.parse(secret.metadata?.annotations?.['ecr-login/expires-at'] ?? '') > Date.now() + 11 * 3600_000, "expiry from ECR Public's token");
    assert.ok(env.aws.count({ service: 'ecr-public' }) > before);
    assert.ok(env.aws.calls.filter((call) => call.service === 'ecr-public').every((call) => call.region === 'us-east-1' && call.outcome === 'ok'));
  });

  it('puts ECR Public beside registries of two accounts and regions into one Secret, each with its own token', async () => {
    const ns = uniqueName('public-mixed');
    await createServedNamespace(env.controller, ns, { 'ecr-login/server': `${east}, ${pub}, ${west}` });
    const secret = await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    const auths = decodeDockerConfig(secret);
    assert.deepEqual(Object.keys(auths).sort(), [east, west, pub].sort());
    assert.equal(new Set([east, west, pub].map((host) => auths[host]?.password)).size, 3, 'ECR in us-east-1, ECR in eu-west-1 and ECR Public: three tokens');
    assert.equal(secret.metadata?.annotations?.['ecr-login/registries'], `${east},${pub},${west}`);
  });

  it('serves 20 namespaces asking for ECR Public, alone or beside a private registry, with one ECR Public call', async () => {
    // A dual-stack ECR Public host is a token key of its own; this test's namespaces use the other one.
    const names = Array.from({ length: 20 }, (_, i) => `${uniqueName('public-many')}-${i}`);
    env.aws.resetCounters();
    await Promise.all(
      names.map((ns, i) =>
        createServedNamespace(env.controller, ns, { 'ecr-login/server': i % 2 === 0 ? 'ecr-public.aws.com' : `ecr-public.aws.com,${west}` }),
      ),
    );
    await eventually(
      'all 20 Secrets',
      async () => {
        for (const ns of names) await readSecret(ns, 'ecr-login');
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(env.aws.count({ service: 'ecr-public' }), 1);
  });

  it('accepts a host written upper-case and writes it lower-case', async () => {
    const ns = uniqueName('upper');
    await createServedNamespace(env.controller, ns, { 'ecr-login/server': east.toUpperCase() });
    const secret = await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    assert.deepEqual(Object.keys(decodeDockerConfig(secret)), [east]);
  });

  for (const [name, value, says] of [
    ['a region no partition lists', '111122223333.dkr.ecr.nowhere-9.amazonaws.com', /"nowhere-9" is not an AWS region/],
    ['a region with underscores', '111122223333.dkr.ecr.us_east_1.amazonaws.com', /"us_east_1" is not an AWS region/],
    ['a region that fits the pattern but does not exist', '111122223333.dkr.ecr.us-east-7.amazonaws.com', /"us-east-7" is not an AWS region/],
    ['a China region under amazonaws.com', '111122223333.dkr.ecr.cn-north-1.amazonaws.com', /region cn-north-1 belongs to partition aws-cn/],
    ['a standard role for China registries', '111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn', /partition aws, but the registries are in partition aws-cn/],
  ] as const) {
    it(`rejects ${name} with an InvalidAnnotation Event and no AWS call`, async () => {
      const ns = uniqueName('region');
      const annotations: Record<string, string> = { 'ecr-login/server': value };
      if (name.includes('role')) annotations['ecr-login/role-arn'] = 'arn:aws:iam::111122223333:role/pull';
      await createServedNamespace(env.controller, ns, annotations);
      const event = await eventually('an InvalidAnnotation Event', async () => {
        const found = (await namespaceEvents(ns)).find((e) => e.reason === 'InvalidAnnotation');
        assert.ok(found);
        return found;
      });
      assert.equal(event.type, 'Warning');
      assert.match(event.message ?? '', says);
      assert.deepEqual(cluster().writes({ user: env.controller.user, namespace: ns, resource: 'secrets' }), []);
      const region = /\.dkr\.ecr\.([^.]+)\./.exec(value)?.[1] ?? '';
      assert.equal(env.aws.count({ region }), 0, 'no AWS call for that region');
    });
  }
});
