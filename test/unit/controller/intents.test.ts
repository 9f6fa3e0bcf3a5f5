// From a namespace snapshot to grants and problems: identities, policy, Secret name conflicts, the
// static target, and which Secrets are kept when their object's annotation breaks.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import { resolveIntents } from '../../../src/controller/intents.ts';
import { pendingGraceMs, type Grant, type Intents } from '../../../src/controller/model.ts';
import { buildSecret } from '../../../src/controller/secrets.ts';
import { parseRegistryHost, type RegistryHost } from '../../../src/registry.ts';
import { east, namespace, roleA, roleB, serviceAccount, settingsFrom, snapshot, t0, token, west } from '../../support/snapshot.ts';

function host(text: string): RegistryHost {
  const parsed = parseRegistryHost(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

function only(intents: Intents): Grant {
  assert.equal(intents.grants.length, 1, `grants: ${JSON.stringify(intents.grants.map((g) => g.secretName))}; problems: ${JSON.stringify(intents.problems)}`);
  return intents.grants[0]!;
}

/** A managed Secret as buildSecret writes it for a grant. */
function secretFor(grant: Grant): V1Secret {
  return buildSecret(
    grant,
    new Map([
      ['us-east-1', token('p')],
      ['eu-west-1', token('q')],
    ]),
  );
}

describe('resolveIntents: grants', () => {
  it('an annotated namespace gets one grant for its default ServiceAccount with the controller identity', () => {
    const grant = only(resolveIntents(snapshot({ namespace: namespace('team-a', { 'ecr-login/server': east }) })));
    assert.deepEqual(grant.source, { kind: 'Namespace', namespace: 'team-a', name: 'team-a' });
    assert.deepEqual(grant.ref, { kind: 'Namespace', name: 'team-a', uid: 'uid-ns-team-a' });
    assert.deepEqual(
      grant.registries.map((r) => r.host),
      [east],
    );
    assert.deepEqual(grant.identity, { mode: 'controller' });
    assert.equal(grant.secretName, 'ecr-login');
    assert.deepEqual(grant.forServiceAccounts, { all: false, names: ['default'] });
    assert.match(grant.specHash, /^[0-9a-f]{16}$/);
  });

  it('a namespace with two regions gets one grant with both registries', () => {
    const grant = only(resolveIntents(snapshot({ namespace: namespace('team-a', { 'ecr-login/server': `${east},${west}` }) })));
    assert.deepEqual(
      grant.registries.map((r) => r.region),
      ['us-east-1', 'eu-west-1'],
    );
  });

  it('a role annotation makes an assume-role identity with a session named for the namespace', () => {
    const grant = only(resolveIntents(snapshot({ namespace: namespace('team-a', { 'ecr-login/server': east, 'ecr-login/role-arn': roleA }) })));
    assert.deepEqual(grant.identity, { mode: 'assume-role', roleArn: roleA, sessionName: 'ecr-login.team-a' });
  });

  it('with aws.sessionScope shared, every object naming a role shares one session (and so one token)', () => {
    const settings = settingsFrom('aws: {sessionScope: shared}');
    const identities = ['team-a', 'team-b'].map(
      (name) => only(resolveIntents(snapshot({ namespace: namespace(name, { 'ecr-login/server': east, 'ecr-login/role-arn': roleA }), settings }))).identity,
    );
    assert.deepEqual(identities, [
      { mode: 'assume-role', roleArn: roleA, sessionName: 'kube-ecrlogin' },
      { mode: 'assume-role', roleArn: roleA, sessionName: 'kube-ecrlogin' },
    ]);
  });

  it('without a role annotation, the default role is assumed', () => {
    const settings = settingsFrom(`defaults: {roleArn: "${roleB}"}`);
    const grant = only(resolveIntents(snapshot({ namespace: namespace('team-a', { 'ecr-login/server': east }), settings })));
    assert.deepEqual(grant.identity, { mode: 'assume-role', roleArn: roleB, sessionName: 'ecr-login.team-a' });
  });

  it('an annotated ServiceAccount gets its own Secret, owned by it, patched into itself', () => {
    const sa = serviceAccount('team-a', 'builder', { annotations: { 'ecr-login/server': east } });
    const grant = only(resolveIntents(snapshot({ namespace: namespace('team-a'), serviceAccounts: [sa] })));
    assert.equal(grant.secretName, 'ecr-login-builder');
    assert.deepEqual(grant.ref, { kind: 'ServiceAccount', name: 'builder', namespace: 'team-a', uid: 'uid-sa-builder' });
    assert.deepEqual(grant.forServiceAccounts, { all: false, names: ['builder'] });
  });

  it('the default Secret name comes from the settings', () => {
    const settings = settingsFrom('defaults: {secretName: regcred}');
    const sa = serviceAccount('team-a', 'builder', { annotations: { 'ecr-login/server': east } });
    const intents = resolveIntents(snapshot({ namespace: namespace('team-a', { 'ecr-login/server': east }), serviceAccounts: [sa], settings }));
    assert.deepEqual(
      intents.grants.map((g) => g.secretName),
      ['regcred', 'regcred-builder'],
    );
  });

  it('the same registries in another order keep the spec hash; another registry or role changes it', () => {
    const hash = (annotations: Record<string, string>): string => only(resolveIntents(snapshot({ namespace: namespace('team-a', annotations) }))).specHash;
    const base = hash({ 'ecr-login/server': `${east},${west}` });
    assert.equal(hash({ 'ecr-login/server': `${west},${east}` }), base);
    assert.notEqual(hash({ 'ecr-login/server': east }), base);
    assert.notEqual(hash({ 'ecr-login/server': `${east},${west}`, 'ecr-login/role-arn': roleA }), base);
  });

  it('lists every annotated object, valid or not, and no other', () => {
    const intents = resolveIntents(
      snapshot({
        namespace: namespace('team-a', { 'ecr-login/server': east }),
        serviceAccounts: [serviceAccount('team-a', 'broken', { annotations: { 'ecr-login/server': 'docker.io' } }), serviceAccount('team-a', 'plain')],
      }),
    );
    assert.deepEqual(
      intents.annotated.map((ref) => `${ref.kind}/${ref.name}`),
      ['Namespace/team-a', 'ServiceAccount/broken'],
    );
  });
});

describe('resolveIntents: Secret name conflicts', () => {
  it('the Namespace annotation wins a Secret name over a ServiceAccount', () => {
    const intents = resolveIntents(
      snapshot({
        namespace: namespace('team-a', { 'ecr-login/server': east, 'ecr-login/secret-name': 'pull' }),
        serviceAccounts: [serviceAccount('team-a', 'aaa', { annotations: { 'ecr-login/server': west, 'ecr-login/secret-name': 'pull' } })],
      }),
    );
    assert.deepEqual(
      intents.grants.map((g) => g.source.kind),
      ['Namespace'],
    );
    assert.equal(intents.problems.length, 1);
    assert.equal(intents.problems[0]?.reason, 'SecretConflict');
    assert.equal(intents.problems[0]?.ref.name, 'aaa');
    assert.match(intents.problems[0]?.message ?? '', /Secret name pull is already used by Namespace\/team-a; set ecr-login\/secret-name to another name/);
  });

  it('between ServiceAccounts, the first by name wins, whatever the cache order', () => {
    const intents = resolveIntents(
      snapshot({
        namespace: namespace('team-a'),
        serviceAccounts: [
          serviceAccount('team-a', 'zeta', { annotations: { 'ecr-login/server': east, 'ecr-login/secret-name': 'shared' } }),
          serviceAccount('team-a', 'alpha', { annotations: { 'ecr-login/server': east, 'ecr-login/secret-name': 'shared' } }),
        ],
      }),
    );
    assert.deepEqual(
      intents.grants.map((g) => g.source.name),
      ['alpha'],
    );
    assert.deepEqual(
      intents.problems.map((p) => [p.reason, p.ref.name]),
      [['SecretConflict', 'zeta']],
    );
    assert.match(intents.problems[0]?.message ?? '', /already used by ServiceAccount\/team-a\/alpha/);
  });

  it("an explicit name equal to another ServiceAccount's derived name conflicts with it", () => {
    const intents = resolveIntents(
      snapshot({
        namespace: namespace('team-a'),
        serviceAccounts: [
          serviceAccount('team-a', 'aaa', { annotations: { 'ecr-login/server': east, 'ecr-login/secret-name': 'ecr-login-bbb' } }),
          serviceAccount('team-a', 'bbb', { annotations: { 'ecr-login/server': east } }),
        ],
      }),
    );
    assert.deepEqual(
      intents.grants.map((g) => [g.source.name, g.secretName]),
      [['aaa', 'ecr-login-bbb']],
    );
    assert.deepEqual(
      intents.problems.map((p) => [p.reason, p.ref.name]),
      [['SecretConflict', 'bbb']],
    );
  });

  it('the static target claims its Secret name before any annotation', () => {
    const intents = resolveIntents(
      snapshot({
        namespace: namespace('jobs', { 'ecr-login/server': east, 'ecr-login/secret-name': 'regcred' }),
        target: { namespace: 'jobs', registries: [host(west)], secretName: 'regcred', serviceAccounts: [], adopt: false },
      }),
    );
    assert.deepEqual(
      intents.grants.map((g) => g.source.kind),
      ['Target'],
    );
    assert.match(intents.problems[0]?.message ?? '', /already used by Target\/jobs/);
  });
});

describe('resolveIntents: the static target', () => {
  it('needs no annotation and is not subject to tenant policy', () => {
    const settings = settingsFrom('rules: [{name: nobody, namespaces: {names: [nothing]}}]');
    const grant = only(
      resolveIntents(
        snapshot({
          namespace: namespace('jobs'),
          settings,
          target: { namespace: 'jobs', registries: [host(east)], secretName: 'regcred', serviceAccounts: ['default', 'runner'], adopt: false },
        }),
      ),
    );
    assert.deepEqual(grant.source, { kind: 'Target', namespace: 'jobs', name: 'jobs' });
    assert.equal(grant.secretName, 'regcred');
    assert.deepEqual(grant.forServiceAccounts, { all: false, names: ['default', 'runner'] });
    assert.deepEqual(grant.identity, { mode: 'controller' });
  });

  it('assumes the default role when one is configured', () => {
    const grant = only(
      resolveIntents(
        snapshot({
          namespace: namespace('jobs'),
          settings: settingsFrom(`defaults: {roleArn: "${roleA}"}`),
          target: { namespace: 'jobs', registries: [host(east)], secretName: 'regcred', serviceAccounts: [], adopt: false },
        }),
      ),
    );
    assert.deepEqual(grant.identity, { mode: 'assume-role', roleArn: roleA, sessionName: 'ecr-login.jobs' });
  });
});

describe('resolveIntents: service-account identity', () => {
  const annotated = (extra: Record<string, string> = {}): Record<string, string> => ({
    'ecr-login/server': east,
    'ecr-login/identity': 'service-account',
    ...extra,
  });

  const cases: { name: string; annotations: Record<string, string>; irsa?: string; defaultRole?: string; roleArn: string }[] = [
    { name: 'the role annotation comes first', annotations: annotated({ 'ecr-login/role-arn': roleA }), irsa: roleB, defaultRole: roleB, roleArn: roleA },
    { name: "then the identity ServiceAccount's eks.amazonaws.com/role-arn", annotations: annotated(), irsa: roleB, defaultRole: roleA, roleArn: roleB },
    { name: 'then the default role', annotations: annotated(), defaultRole: roleA, roleArn: roleA },
    { name: 'a blank IRSA annotation falls through to the default role', annotations: annotated(), irsa: '  ', defaultRole: roleA, roleArn: roleA },
  ];
  for (const c of cases) {
    it(`role: ${c.name}`, () => {
      const grant = only(
        resolveIntents(
          snapshot({
            namespace: namespace('team-a', c.annotations),
            serviceAccounts: [serviceAccount('team-a', 'default', c.irsa !== undefined ? { annotations: { 'eks.amazonaws.com/role-arn': c.irsa } } : {})],
            ...(c.defaultRole !== undefined ? { settings: settingsFrom(`defaults: {roleArn: "${c.defaultRole}"}`) } : {}),
          }),
        ),
      );
      assert.deepEqual(grant.identity, {
        mode: 'service-account',
        roleArn: c.roleArn,
        namespace: 'team-a',
        serviceAccount: 'default',
        sessionName: 'ecr-login.team-a.default',
      });
    });
  }

  it("a namespace may exchange another ServiceAccount's token", () => {
    const grant = only(
      resolveIntents(
        snapshot({
          namespace: namespace('team-a', annotated({ 'ecr-login/identity-service-account': 'puller' })),
          serviceAccounts: [serviceAccount('team-a', 'puller', { annotations: { 'eks.amazonaws.com/role-arn': roleA } })],
        }),
      ),
    );
    assert.equal(grant.identity.mode === 'service-account' ? grant.identity.serviceAccount : '', 'puller');
    assert.equal(grant.identity.mode === 'service-account' ? grant.identity.sessionName : '', 'ecr-login.team-a.puller');
  });

  it('an annotated ServiceAccount exchanges its own token with its own IRSA role', () => {
    const sa = serviceAccount('team-a', 'builder', {
      annotations: { 'ecr-login/server': east, 'ecr-login/identity': 'service-account', 'eks.amazonaws.com/role-arn': roleA },
    });
    const grant = only(resolveIntents(snapshot({ namespace: namespace('team-a'), serviceAccounts: [sa] })));
    assert.deepEqual(grant.identity, {
      mode: 'service-account',
      roleArn: roleA,
      namespace: 'team-a',
      serviceAccount: 'builder',
      sessionName: 'ecr-login.team-a.builder',
    });
  });

  it('a missing identity ServiceAccount is a ServiceAccountMissing problem', () => {
    const intents = resolveIntents(
      snapshot({ namespace: namespace('team-a', annotated({ 'ecr-login/identity-service-account': 'puller', 'ecr-login/role-arn': roleA })) }),
    );
    assert.equal(intents.grants.length, 0);
    assert.deepEqual(
      intents.problems.map((p) => p.reason),
      ['ServiceAccountMissing'],
    );
    assert.match(intents.problems[0]?.message ?? '', /identity ServiceAccount puller does not exist in namespace team-a/);
  });

  it('no role anywhere is an InvalidAnnotation problem that says where a role can come from', () => {
    const intents = resolveIntents(snapshot({ namespace: namespace('team-a', annotated()), serviceAccounts: [serviceAccount('team-a', 'default')] }));
    assert.deepEqual(
      intents.problems.map((p) => p.reason),
      ['InvalidAnnotation'],
    );
    assert.match(intents.problems[0]?.message ?? '', /set ecr-login\/role-arn, or eks\.amazonaws\.com\/role-arn on ServiceAccount default/);
  });

  it('a malformed IRSA role is an InvalidAnnotation problem naming the IRSA annotation', () => {
    const intents = resolveIntents(
      snapshot({
        namespace: namespace('team-a', annotated()),
        serviceAccounts: [serviceAccount('team-a', 'default', { annotations: { 'eks.amazonaws.com/role-arn': 'not-an-arn' } })],
      }),
    );
    assert.deepEqual(
      intents.problems.map((p) => p.reason),
      ['InvalidAnnotation'],
    );
    assert.match(intents.problems[0]?.message ?? '', /annotation eks\.amazonaws\.com\/role-arn on ServiceAccount default: "not-an-arn" is not an IAM role ARN/);
  });

  it("a ServiceAccount IRSA role outside the tenant's policy is denied, naming the rule", () => {
    const settings = settingsFrom(`rules:
  - {name: team-a, namespaces: {names: [team-a]}, roleArns: ["arn:aws:iam::111122223333:role/team-a-*"]}`);
    const intents = resolveIntents(
      snapshot({
        namespace: namespace('team-a', annotated()),
        serviceAccounts: [serviceAccount('team-a', 'default', { annotations: { 'eks.amazonaws.com/role-arn': roleB } })],
        settings,
      }),
    );
    assert.deepEqual(
      intents.problems.map((p) => [p.reason, p.rule]),
      [['PolicyDenied', 'team-a']],
    );
    assert.match(intents.problems[0]?.message ?? '', /^denied by policy: rule team-a: role .*team-b-puller is not allowed$/);
  });
});

describe('resolveIntents: broken annotations keep their Secrets, policy denials do not', () => {
  const grantOf = (annotations: Record<string, string>): Grant =>
    only(resolveIntents(snapshot({ namespace: namespace('team-a'), serviceAccounts: [serviceAccount('team-a', 'builder', { annotations })] })));
  const builderSecret = secretFor(grantOf({ 'ecr-login/server': east }));
  const nsSecret = secretFor(only(resolveIntents(snapshot({ namespace: namespace('team-a', { 'ecr-login/server': east }) }))));

  it('a ServiceAccount whose annotation became invalid keeps its Secret, and only its own', () => {
    const intents = resolveIntents(
      snapshot({
        namespace: namespace('team-a'),
        serviceAccounts: [serviceAccount('team-a', 'builder', { annotations: { 'ecr-login/server': 'docker.io' } })],
        secrets: [builderSecret, nsSecret],
      }),
    );
    assert.deepEqual(
      intents.problems.map((p) => p.reason),
      ['InvalidAnnotation'],
    );
    assert.deepEqual([...intents.keep], ['ecr-login-builder']);
  });

  it('a missing identity ServiceAccount keeps the Secret too', () => {
    const intents = resolveIntents(
      snapshot({
        namespace: namespace('team-a', { 'ecr-login/server': east, 'ecr-login/identity': 'service-account', 'ecr-login/role-arn': roleA }),
        secrets: [nsSecret],
      }),
    );
    assert.deepEqual([...intents.keep], ['ecr-login']);
  });

  it('a policy denial keeps nothing: access is revoked', () => {
    const intents = resolveIntents(
      snapshot({
        namespace: namespace('team-a', { 'ecr-login/server': east }),
        secrets: [nsSecret],
        settings: settingsFrom('rules: [{name: others, namespaces: {names: [team-b]}}]'),
      }),
    );
    assert.deepEqual(
      intents.problems.map((p) => p.reason),
      ['PolicyDenied'],
    );
    assert.equal(intents.keep.size, 0);
    assert.match(intents.problems[0]?.message ?? '', /no policy rule matches namespace team-a/);
  });
});

describe('resolveIntents: what is said besides', () => {
  const aged = (ms: number): V1Namespace => {
    const ns = namespace('team-a', { 'ecr-login/server': east, 'ecr-login/service-accounts': 'deployer' });
    return { ...ns, metadata: { ...ns.metadata, creationTimestamp: new Date(t0 - ms) } };
  };

  it('a ServiceAccount named but absent is pending once the Namespace is older than the grace, and the grant stands', () => {
    const intents = resolveIntents(snapshot({ namespace: aged(pendingGraceMs) }));
    assert.deepEqual(
      intents.grants.map((g) => g.secretName),
      ['ecr-login'],
    );
    assert.deepEqual(
      intents.problems.map((p) => [p.reason, p.message]),
      [['ServiceAccountPending', 'ServiceAccount deployer named in ecr-login/service-accounts does not exist (yet): it gets the Secret when it appears']],
    );
    assert.equal(intents.recheckAt, undefined);
  });

  it('within the grace it is not said yet, and the namespace is to be looked at again when the grace ends', () => {
    const intents = resolveIntents(snapshot({ namespace: aged(1_000) }));
    assert.deepEqual(intents.problems, []);
    assert.equal(intents.recheckAt, t0 - 1_000 + pendingGraceMs);
  });

  it('a key that is none of ours is an UnknownAnnotation problem, also on an object that asks for nothing', () => {
    const intents = resolveIntents(snapshot({ namespace: namespace('team-a', { 'ecr-login/servers': east }) }));
    assert.deepEqual(intents.grants, []);
    assert.deepEqual(
      intents.problems.map((p) => [p.ref.kind, p.reason]),
      [['Namespace', 'UnknownAnnotation']],
    );
    assert.deepEqual(
      intents.annotated.map((r) => r.kind),
      ['Namespace'],
    );
  });
});
