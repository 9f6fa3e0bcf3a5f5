// Bad input on the real apiserver, for every annotation besides ecr-login/server (which
// test/controller/failures.test.ts covers): huge (64 KiB), empty, duplicated, non-ASCII and malformed
// values each give one InvalidAnnotation Warning Event naming the annotation, no Secret and no crash;
// the controller goes on serving good input.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, withAwsAndController } from '../support/controller.ts';
import { core, eventsFor, namespaceEvents, readSecret } from '../support/objects.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const huge = 'a'.repeat(64 * 1024);

/** Bad values per annotation: [what, value, what the Event must say]. */
const cases: Record<string, readonly (readonly [string, string, RegExp])[]> = {
  'ecr-login/role-arn': [
    ['a 64 KiB value', huge, /65536 characters long, more than the 4096 allowed/],
    ['an empty value', '', /is not an IAM role ARN/],
    ['a duplicated role', 'arn:aws:iam::111122223333:role/pull,arn:aws:iam::111122223333:role/pull', /is not an IAM role ARN/],
    ['a non-ASCII role name', 'arn:aws:iam::111122223333:role/pullé', /is not an IAM role ARN/],
    ['an 11-digit account', 'arn:aws:iam::11112222333:role/pull', /is not an IAM role ARN/],
  ],
  'ecr-login/service-accounts': [
    ['a 64 KiB value', huge, /more than the 4096 allowed/],
    ['an empty value', '', /names no ServiceAccount/],
    ['a duplicated name', 'builder, builder', /lists "builder" twice/],
    ['a non-ASCII name', 'bäcker', /is not a valid name/],
    ['`*` with names', '*, default', /cannot be combined with names/],
  ],
  'ecr-login/secret-name': [
    ['a 64 KiB value', huge, /more than the 4096 allowed/],
    ['an empty value', '', /Secret name is empty/],
    ['a duplicated name', 'pull,pull', /is not a valid name/],
    ['a non-ASCII name', 'geheimnis-ß', /is not a valid name/],
    ['a name with capitals and a slash', 'Team/Pull', /is not a valid name/],
  ],
  'ecr-login/identity': [
    ['a 64 KiB value', huge, /more than the 4096 allowed/],
    ['an empty value', '', /"" is not one of controller, service-account/],
    ['a duplicated mode', 'controller,controller', /is not one of controller, service-account/],
    ['a non-ASCII mode', 'contrôleur', /is not one of controller, service-account/],
    ['a mode in capitals', 'Service-Account', /is not one of controller, service-account/],
  ],
  'ecr-login/identity-service-account': [
    ['a 64 KiB value', huge, /more than the 4096 allowed/],
    ['an empty value', '', /ServiceAccount name is empty/],
    ['a duplicated name', 'default,default', /is not a valid name/],
    ['a non-ASCII name', 'défaut', /is not a valid name/],
    ['a path', '../kube-system/default', /is not a valid name/],
  ],
};

describe('bad annotation values on the real apiserver', () => {
  const env = withAwsAndController();

  for (const [annotation, values] of Object.entries(cases)) {
    it(`refuses bad ${annotation} values with one InvalidAnnotation Event each, no Secret and no AWS call`, async () => {
      const callsBefore = env.aws.count({ region: 'us-east-1' });
      const namespaces = await Promise.all(
        values.map(async ([, value]) => {
          const name = uniqueName('bad-input');
          await createServedNamespace(env.controller, name, { 'ecr-login/server': east, [annotation]: value });
          return name;
        }),
      );
      for (const [i, [what, , says]] of values.entries()) {
        const namespace = namespaces[i] ?? '';
        const event = await eventually(`an InvalidAnnotation Event for ${what}`, async () => {
          const found = (await namespaceEvents(namespace)).filter((e) => e.reason === 'InvalidAnnotation');
          assert.equal(found.length, 1, 'one Event');
          return found[0];
        });
        assert.equal(event?.type, 'Warning', what);
        assert.ok((event?.message ?? '').startsWith(`annotation ${annotation}: `), `${what}: ${event?.message ?? ''}`);
        assert.match(event?.message ?? '', says, what);
        assert.ok((event?.message ?? '').length < 600, `${what}: the message stays readable`);
        await assert.rejects(readSecret(namespace, 'ecr-login'), /404|not found/, `${what}: no Secret`);
      }
      assert.equal(env.aws.count({ region: 'us-east-1' }), callsBefore, 'no AWS call for bad input');
      assert.deepEqual(
        cluster()
          .writes({ user: env.controller.user, resource: 'secrets' })
          .filter((w) => namespaces.includes(w.objectRef?.namespace ?? '')),
        [],
        'not one write to Secrets in those namespaces',
      );
      assert.ok(!env.controller.logs.some((line) => line.includes('Reconcile failed unexpectedly')), 'no unexpected failure');
    });
  }

  it('refuses a Namespace-only annotation on a ServiceAccount, and keeps serving good input afterwards', async () => {
    const namespace = uniqueName('bad-input');
    await createServedNamespace(env.controller, namespace);
    await core().createNamespacedServiceAccount({
      namespace,
      body: { metadata: { name: 'builder', annotations: { 'ecr-login/server': east, 'ecr-login/service-accounts': '*' } } },
    });
    const event = await eventually('an InvalidAnnotation Event on the ServiceAccount', async () => {
      const found = (await eventsFor(namespace, 'ServiceAccount', 'builder')).find((e) => e.reason === 'InvalidAnnotation');
      assert.ok(found);
      return found;
    });
    assert.match(event.message ?? '', /ecr-login\/service-accounts: only applies to a Namespace/);
    // Still alive and well: a good annotation is served.
    const good = uniqueName('good-input');
    await createServedNamespace(env.controller, good, { 'ecr-login/server': east });
    await eventually('the Secret for good input', () => readSecret(good, 'ecr-login'));
  });
});
