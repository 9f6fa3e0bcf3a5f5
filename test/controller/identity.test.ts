// Keyless identity and tenant policy against the real apiserver and the AWS test server, whose STS
// verifies ServiceAccount tokens against the apiserver's own issuer keys and a trust table.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys, createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { core, decodeDockerConfig, eventsFor, namespaceEvents, readSecret, secretAbsent } from '../support/objects.ts';

const account = '111122223333';
const registry = `${account}.dkr.ecr.us-east-1.amazonaws.com`;
const role = (name: string): string => `arn:aws:iam::${account}:role/${name}`;

describe('identity and tenant policy', () => {
  let aws: AwsTestServer;
  let controller: TestController;
  const teamA = uniqueName('team-a');
  const teamB = uniqueName('team-b');
  const teamC = uniqueName('team-c');
  const teamD = uniqueName('team-d');

  before(async () => {
    const plane = cluster();
    aws = await start();
    aws.addUser(controllerKeys);
    aws.trustIssuer({ issuer: plane.issuer, ca: plane.caPem });
    // IAM trust policies: who may assume each role.
    aws.setRole({ roleArn: role('team-a-pull'), webIdentitySubjects: [`system:serviceaccount:${teamA}:*`] });
    aws.setRole({ roleArn: role('team-b-pull'), webIdentitySubjects: [`system:serviceaccount:${teamB}:*`] });
    aws.setRole({ roleArn: role('team-a-external'), externalId: 'kube-ecrlogin-test' });
    // Team D's CI may push: its role trusts the whole namespace, as roles often do.
    aws.setRole({ roleArn: role('team-d-pull'), webIdentitySubjects: [`system:serviceaccount:${teamD}:*`] });
    aws.setRole({ roleArn: role('team-d-ci-push'), webIdentitySubjects: [`system:serviceaccount:${teamD}:*`] });
    useAwsEndpoint(aws.endpoint);
    controller = await startTestController({
      config: [
        'refresh:',
        '  minInterval: 1s',
        'aws:',
        '  externalId: kube-ecrlogin-test',
        'rules:',
        '  - name: team-a',
        '    namespaces: { selector: { matchLabels: { tenant: a } } }',
        `    roleArns: ["arn:aws:iam::${account}:role/team-a-*"]`,
        `    registries: [{ account: "${account}", region: "us-*" }]`,
        '  - name: team-b',
        '    namespaces: { selector: { matchLabels: { tenant: b } } }',
        `    roleArns: ["arn:aws:iam::${account}:role/team-b-*"]`,
        '  - name: team-c-keyless-only',
        '    namespaces: { selector: { matchLabels: { tenant: c } } }',
        '    identities: [service-account]',
        '  - name: team-d',
        '    namespaces: { selector: { matchLabels: { tenant: d } } }',
        '    identities: [service-account]',
        '    identityServiceAccounts: [puller, app-*]',
        '',
      ].join('\n'),
    });
    await createServedNamespace(controller, teamA, {}, { tenant: 'a' });
    await createServedNamespace(controller, teamB, {}, { tenant: 'b' });
    await createServedNamespace(controller, teamC, {}, { tenant: 'c' });
    await createServedNamespace(controller, teamD, {}, { tenant: 'd' });
  });

  after(async () => {
    await controller.stop();
    await aws.close();
  });

  it('exchanges a ServiceAccount token for the tenant role (keyless, per tenant)', async () => {
    await core().createNamespacedServiceAccount({
      namespace: teamA,
      body: {
        metadata: {
          name: 'puller',
          annotations: { 'ecr-login/server': registry, 'ecr-login/identity': 'service-account', 'ecr-login/role-arn': role('team-a-pull') },
        },
      },
    });
    const secret = await eventually('the Secret', () => readSecret(teamA, 'ecr-login-puller'));
    assert.equal(decodeDockerConfig(secret)[registry]?.username, 'AWS');
    const exchange = aws.calls.find((call) => call.api === 'AssumeRoleWithWebIdentity' && call.subject === `system:serviceaccount:${teamA}:puller`);
    assert.ok(exchange, 'STS verified a token for the annotated ServiceAccount');
    assert.equal(exchange.outcome, 'ok');
    assert.equal(exchange.roleArn, role('team-a-pull'));
    assert.deepEqual(exchange.audience, ['sts.amazonaws.com'], 'minted for STS only');
    assert.equal(exchange.tokenLifetimeSeconds, 600, 'short-lived: the TokenRequest minimum');
    assert.equal(exchange.sessionName, `ecr-login.${teamA}.puller`, 'CloudTrail shows whom it was for');
    const pull = aws.calls.find((call) => call.api === 'GetAuthorizationToken' && call.caller?.includes(`assumed-role/team-a-pull/ecr-login.${teamA}.puller`));
    assert.ok(pull, 'the ECR token was fetched as the tenant role');
  });

  it("uses the ServiceAccount's IRSA role annotation when no role is named", async () => {
    await core().createNamespacedServiceAccount({
      namespace: teamA,
      body: {
        metadata: {
          name: 'irsa',
          annotations: { 'ecr-login/server': registry, 'ecr-login/identity': 'service-account', 'eks.amazonaws.com/role-arn': role('team-a-pull') },
        },
      },
    });
    await eventually('the Secret', () => readSecret(teamA, 'ecr-login-irsa'));
    assert.ok(
      aws.calls.some((call) => call.api === 'AssumeRoleWithWebIdentity' && call.subject === `system:serviceaccount:${teamA}:irsa` && call.outcome === 'ok'),
    );
  });

  it("lets the IAM trust policy reject another tenant's token, with an Event", async () => {
    // The policy allows team-c any role in keyless mode: the role's trust policy is the guard.
    await core().createNamespacedServiceAccount({
      namespace: teamC,
      body: {
        metadata: {
          name: 'intruder',
          annotations: { 'ecr-login/server': registry, 'ecr-login/identity': 'service-account', 'ecr-login/role-arn': role('team-a-pull') },
        },
      },
    });
    const event = await eventually('a RefreshFailed Event', async () => {
      const found = (await eventsFor(teamC, 'ServiceAccount', 'intruder')).find((e) => e.reason === 'RefreshFailed');
      assert.ok(found);
      return found;
    });
    assert.match(event.message ?? '', /AssumeRoleWithWebIdentity.*AccessDenied/);
    const attempt = aws.calls.find((call) => call.api === 'AssumeRoleWithWebIdentity' && call.subject === `system:serviceaccount:${teamC}:intruder`);
    assert.equal(attempt?.outcome, 'AccessDenied');
    await secretAbsent(teamC, 'ecr-login-intruder');
  });

  it("denies a namespace naming another team's role without calling AWS (confused deputy)", async () => {
    const assumeBefore = aws.count({ api: 'AssumeRole', roleArn: role('team-a-pull') });
    await core().patchNamespace(
      {
        name: teamB,
        body: [{ op: 'add', path: '/metadata/annotations', value: { 'ecr-login/server': registry, 'ecr-login/role-arn': role('team-a-pull') } }],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    const event = await eventually('a PolicyDenied Event', async () => {
      const found = (await namespaceEvents(teamB)).find((e) => e.reason === 'PolicyDenied');
      assert.ok(found);
      return found;
    });
    assert.equal(event.type, 'Warning');
    assert.match(event.message ?? '', /rule team-b: role arn:aws:iam::111122223333:role\/team-a-pull is not allowed/);
    assert.equal(aws.count({ api: 'AssumeRole', roleArn: role('team-a-pull') }), assumeBefore, 'the AWS test server saw no call for it');
    await secretAbsent(teamB, 'ecr-login');
  });

  it('denies a mode or a registry the rule does not allow', async () => {
    await core().createNamespacedServiceAccount({
      namespace: teamC,
      body: { metadata: { name: 'chained', annotations: { 'ecr-login/server': registry, 'ecr-login/role-arn': role('team-a-pull') } } },
    });
    await core().createNamespacedServiceAccount({
      namespace: teamA,
      body: {
        metadata: {
          name: 'elsewhere',
          annotations: { 'ecr-login/server': `${account}.dkr.ecr.eu-west-1.amazonaws.com`, 'ecr-login/role-arn': role('team-a-pull') },
        },
      },
    });
    const denied = async (ns: string, name: string): Promise<string> =>
      eventually(`PolicyDenied on ${name}`, async () => {
        const found = (await eventsFor(ns, 'ServiceAccount', name)).find((e) => e.reason === 'PolicyDenied');
        assert.ok(found);
        return found.message ?? '';
      });
    assert.match(await denied(teamC, 'chained'), /rule team-c-keyless-only: identity mode assume-role is not allowed/);
    assert.match(await denied(teamA, 'elsewhere'), /rule team-a: registry 111122223333\.dkr\.ecr\.eu-west-1\.amazonaws\.com is not allowed/);
  });

  it("lends a ServiceAccount's identity only when the rule names it (identityServiceAccounts): a CI push role stays out of reach", async () => {
    const serviceAccount = (name: string, roleArn: string): Promise<k8s.V1ServiceAccount> =>
      core().createNamespacedServiceAccount({
        namespace: teamD,
        body: {
          metadata: {
            name,
            annotations: { 'ecr-login/server': registry, 'ecr-login/identity': 'service-account', 'eks.amazonaws.com/role-arn': roleArn },
          },
        },
      });
    // Someone who may only edit ServiceAccounts annotates the CI one, whose IRSA role may push.
    await serviceAccount('ci-push', role('team-d-ci-push'));
    await serviceAccount('puller', role('team-d-pull'));
    // The Namespace may not name it as its identity either.
    await core().patchNamespace(
      {
        name: teamD,
        body: [
          {
            op: 'add',
            path: '/metadata/annotations',
            value: { 'ecr-login/server': registry, 'ecr-login/identity': 'service-account', 'ecr-login/identity-service-account': 'ci-push' },
          },
        ],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );

    await eventually("the allowed ServiceAccount's Secret", () => readSecret(teamD, 'ecr-login-puller'));
    assert.ok(
      aws.calls.some((call) => call.api === 'AssumeRoleWithWebIdentity' && call.subject === `system:serviceaccount:${teamD}:puller` && call.outcome === 'ok'),
    );
    const denial = /^denied by policy: rule team-d: ServiceAccount ci-push may not serve as an identity \(identityServiceAccounts: puller, app-\*\)$/;
    const onServiceAccount = await eventually('PolicyDenied on the CI ServiceAccount', async () => {
      const found = (await eventsFor(teamD, 'ServiceAccount', 'ci-push')).find((e) => e.reason === 'PolicyDenied');
      assert.ok(found);
      return found;
    });
    assert.match(onServiceAccount.message ?? '', denial);
    const onNamespace = await eventually('PolicyDenied on the Namespace', async () => {
      const found = (await namespaceEvents(teamD)).find((e) => e.reason === 'PolicyDenied');
      assert.ok(found);
      return found;
    });
    assert.match(onNamespace.message ?? '', denial);
    assert.equal(aws.count({ api: 'AssumeRoleWithWebIdentity', roleArn: role('team-d-ci-push') }), 0, 'no token of the CI ServiceAccount was exchanged');
    await secretAbsent(teamD, 'ecr-login-ci-push');
    await secretAbsent(teamD, 'ecr-login');
  });

  it('chains a role on the static keys, with the external ID from config and the namespace as session name', async () => {
    const ns = uniqueName('team-a-chain');
    await createServedNamespace(controller, ns, { 'ecr-login/server': registry, 'ecr-login/role-arn': role('team-a-external') }, { tenant: 'a' });
    await eventually('the Secret', () => readSecret(ns, 'ecr-login'));
    const assume = aws.calls.find((call) => call.api === 'AssumeRole' && call.roleArn === role('team-a-external') && call.sessionName === `ecr-login.${ns}`);
    assert.ok(assume, 'AssumeRole with the namespace in the session name');
    assert.equal(assume.caller, controllerKeys.arn, 'chained on the controller identity (static keys)');
    assert.equal(assume.outcome, 'ok', 'the role demands the external ID; config supplied it');
    assert.ok(aws.calls.some((call) => call.api === 'GetAuthorizationToken' && call.caller?.endsWith(`assumed-role/team-a-external/ecr-login.${ns}`)));
  });

  it('never shows a token, password, auth value or JWT in logs, Events or metrics', async () => {
    const secrets: string[] = [];
    for (const ns of [teamA, teamB, teamC, teamD]) {
      const list = await core().listNamespacedSecret({ namespace: ns });
      for (const secret of list.items) {
        if (secret.type !== 'kubernetes.io/dockerconfigjson') continue;
        for (const entry of Object.values(decodeDockerConfig(secret))) secrets.push(entry.password, entry.auth);
        secrets.push(secret.data?.['.dockerconfigjson'] ?? '');
      }
    }
    assert.ok(secrets.length >= 4, 'there are secrets to look for');
    const events = [teamA, teamB, teamC, teamD, 'default'].map(async (ns) => JSON.stringify((await core().listNamespacedEvent({ namespace: ns })).items));
    const haystack = [controller.logs.join('\n'), ...(await Promise.all(events)), await controller.metrics.registry.metrics()].join('\n');
    assert.ok(haystack.includes(teamA), 'the haystack has the logs and Events in it');
    for (const secret of secrets) assert.ok(!haystack.includes(secret), 'a credential leaked');
    assert.doesNotMatch(haystack, /eyJ[\w-]{10,}\.eyJ[\w-]{10,}\./, 'a JWT leaked');
    assert.ok(!haystack.includes(controllerKeys.secretAccessKey), 'the AWS secret key leaked');
    assert.doesNotMatch(haystack, /ASIA[A-Z0-9]{12,}/, 'a session access key id leaked');
  });
});
