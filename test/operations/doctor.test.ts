// `kube-ecrlogin doctor` as a separate process against the real control plane and the AWS test
// server: healthy (exit 0, every annotated object with its Secret, expiry and status), and broken in
// each way it must name: RBAC missing, AWS denied (identity and per region), an invalid ConfigMap (a
// misspelled key too), no policy under --require-policy, registry rules that a shared identity
// defeats, and Secrets missing, expired, expiring or taken. It writes nothing to the cluster.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { DoctorReport, ObjectReport } from '../../src/doctor.ts';
import { clusterRules, namespaceRules, type PolicyRule } from '../../src/kube/permissions.ts';
import { start, type AwsTestServer } from '../aws/server.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { controllerKeys, createServedNamespace, startTestController, useAwsEndpoint, type TestController } from '../support/controller.ts';
import { runCommand, type CommandResult } from '../support/command.ts';
import { eventually } from '../support/eventually.ts';
import { pullSecretNames, readSecret } from '../support/objects.ts';
import { admin, ecrHost, policyRules } from './support.ts';

const config = `rules:
  - name: no-eu-for-restricted
    namespaces:
      names: ["doc-denied-*"]
    registries:
      - region: "us-*"
  - name: everyone
    namespaces:
      names: ["*"]
`;

describe('kube-ecrlogin doctor', () => {
  let aws: AwsTestServer;
  let controller: TestController;
  /** Kubeconfigs: the controller's exact RBAC, the same without two permissions, and the admin. */
  const kubeconfigs: Record<'leastPrivilege' | 'missingRbac' | 'admin', string> = { leastPrivilege: '', missingRbac: '', admin: '' };
  const users: Record<string, string> = {};
  const ns = { good: uniqueName('doc-good'), invalid: uniqueName('doc-invalid'), denied: uniqueName('doc-denied') };
  const role = 'arn:aws:iam::111122223333:role/doc-builder-pull';
  /** Namespaces only the doctor looks at (no controller serves them), with their own label. */
  const unserved = { key: 'kube-ecrlogin.test/doctor-only', value: uniqueName('only') };

  const env = (kubeconfig: string, extra: Record<string, string> = {}): Record<string, string> => ({
    KUBECONFIG: kubeconfig,
    AWS_ENDPOINT_URL: aws.endpoint,
    AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
    AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  });

  const doctor = (args: readonly string[], environment: Record<string, string>): Promise<CommandResult> =>
    runCommand(['doctor', '--namespace', controller.namespace, '--aws-retries', '0', ...args], environment);
  const served = (): string[] => ['--namespace-selector', `${controller.label.key}=${controller.label.value}`];
  const json = async (args: readonly string[], environment: Record<string, string>): Promise<{ code: number | null; report: DoctorReport }> => {
    const result = await doctor([...args, '--json'], environment);
    return { code: result.code, report: JSON.parse(result.stdout) as DoctorReport };
  };
  const row = (report: DoctorReport, object: string): ObjectReport => {
    const found = report.objects.find((o) => o.object === object);
    assert.ok(found, `${object} in ${JSON.stringify(report.objects.map((o) => o.object))}`);
    return found;
  };

  /** A ServiceAccount in the controller's namespace bound to these rules, and a kubeconfig for it. */
  const account = async (name: string, cluster_: readonly PolicyRule[], namespaced: readonly PolicyRule[]): Promise<string> => {
    const { core, rbac } = admin();
    const namespace = controller.namespace;
    const full = `${namespace}-${name}`;
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    const subjects = [{ kind: 'ServiceAccount', name, namespace }];
    await rbac.createClusterRole({ body: { metadata: { name: full }, rules: policyRules(cluster_) } });
    await rbac.createClusterRoleBinding({
      body: { metadata: { name: full }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: full }, subjects },
    });
    await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules: policyRules(namespaced) } });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects },
    });
    users[name] = `system:serviceaccount:${namespace}:${name}`;
    const plane = cluster();
    return plane.writeKubeconfig(await plane.serviceAccountConfig(namespace, name), join(plane.state.dir, 'ops', `${full}.kubeconfig`));
  };

  before(async () => {
    aws = await start();
    aws.addUser(controllerKeys);
    aws.setRole({ roleArn: role, trustedPrincipals: [controllerKeys.arn] });
    useAwsEndpoint(aws.endpoint);
    controller = await startTestController({ config });
    await createServedNamespace(controller, ns.good, { 'ecr-login/server': `${ecrHost('us-east-1')},${ecrHost('eu-west-1', '444455556666')}` });
    await createServedNamespace(controller, ns.invalid, { 'ecr-login/server': 'docker.io/library' });
    await createServedNamespace(controller, ns.denied, { 'ecr-login/server': ecrHost('eu-west-1') });
    const { core } = admin();
    await eventually('the default ServiceAccount', () => core.readNamespacedServiceAccount({ namespace: ns.good, name: 'default' }));
    await core.createNamespacedServiceAccount({
      namespace: ns.good,
      body: { metadata: { name: 'builder', annotations: { 'ecr-login/server': ecrHost('us-east-2'), 'ecr-login/role-arn': role } } },
    });
    await eventually('the controller served them', async () => {
      await readSecret(ns.good, 'ecr-login');
      const builder = await core.readNamespacedServiceAccount({ namespace: ns.good, name: 'builder' });
      assert.deepEqual(pullSecretNames(builder), ['ecr-login-builder']);
    });

    const withoutSome = clusterRules
      .map((rule) => (rule.resources.includes('serviceaccounts') ? { ...rule, verbs: rule.verbs.filter((verb) => verb !== 'patch') } : rule))
      .filter((rule) => !rule.resources.includes('events'));
    kubeconfigs.leastPrivilege = await account('doctor', clusterRules, namespaceRules);
    kubeconfigs.missingRbac = await account('doctor-missing', withoutSome, namespaceRules);
    const plane = cluster();
    kubeconfigs.admin = plane.writeKubeconfig(plane.adminConfig(), join(plane.state.dir, 'ops', `${controller.namespace}-admin.kubeconfig`));
  });

  after(async () => {
    await controller.stop();
    await aws.close();
  });

  it('on a healthy installation, as the controller, exits 0 and lists every annotated object with its Secret, expiry and status', async (t) => {
    const since = new Date();
    const table = await doctor(served(), env(kubeconfigs.leastPrivilege));
    t.diagnostic(`\n${table.stdout}`);
    assert.equal(table.code, 0, table.stdout + table.stderr);
    assert.match(table.stdout, /^CHECK +RESULT +DETAIL\n/);
    assert.match(table.stdout, new RegExp(`^kubernetes +ok +.* as system:serviceaccount:${controller.namespace}:doctor$`, 'm'));
    assert.match(table.stdout, /^rbac +ok +all 16 permissions the controller needs are granted$/m);
    assert.match(table.stdout, /^aws identity +ok +arn:aws:iam::111122223333:user\/kube-ecrlogin/m);
    for (const region of ['eu-west-1', 'us-east-1'])
      assert.match(table.stdout, new RegExp(`^ecr ${region} +ok +GetAuthorizationToken as the controller's own identity`, 'm'));
    assert.match(table.stdout, new RegExp(`^ecr us-east-2 as role/doc-builder-pull +ok +GetAuthorizationToken as role ${role}`, 'm'));
    assert.match(table.stdout, /^OBJECT +SECRET +EXPIRES +STATUS +LAST ERROR$/m);
    const secret = await readSecret(ns.good, 'ecr-login');
    const expires = (secret.metadata?.annotations?.['ecr-login/expires-at'] ?? '').replace(/\.\d{3}Z$/, 'Z');
    assert.match(table.stdout, new RegExp(`^Namespace/${ns.good} +ecr-login +${expires} \\(in 1[12]h\\d*m?\\d*s?\\) +ok$`, 'm'));
    assert.match(table.stdout, new RegExp(`^ServiceAccount/${ns.good}/builder +ecr-login-builder +\\S+ \\(in 1[12]h.*\\) +ok$`, 'm'));
    assert.match(table.stdout, new RegExp(`^Namespace/${ns.invalid} +- +- +invalid annotation +annotation ecr-login/server: "docker.io/library"`, 'm'));
    assert.match(table.stdout, new RegExp(`^Namespace/${ns.denied} +- +- +policy denied +denied by policy: rule no-eu-for-restricted`, 'm'));
    assert.match(table.stdout, /\nhealthy\n$/);
    // The controller's RBAC has no Event list: said, not failed.
    assert.match(table.stdout, /^events +WARN +cannot list Events/m);
    assert.match(table.stdout, /^rbac keyless tenants +WARN +needed only for ecr-login\/identity: service-account/m);

    const { code, report } = await json(served(), env(kubeconfigs.leastPrivilege));
    assert.equal(code, 0);
    assert.equal(report.healthy, true);
    assert.deepEqual(report.failing, []);
    assert.deepEqual(row(report, `Namespace/${ns.good}`), {
      object: `Namespace/${ns.good}`,
      namespace: ns.good,
      secret: 'ecr-login',
      expiresAt: secret.metadata?.annotations?.['ecr-login/expires-at'],
      status: 'ok',
    });
    assert.equal(row(report, `ServiceAccount/${ns.good}/builder`).secret, 'ecr-login-builder');
    assert.equal(report.objects.length, 4);

    // Questions only: no object was written.
    const writes = cluster().writes({ user: users['doctor'] ?? '', since });
    assert.ok(writes.length >= 14, 'it asked');
    assert.deepEqual([...new Set(writes.map((w) => `${w.verb} ${w.objectRef?.resource}`))].sort(), [
      'create selfsubjectaccessreviews',
      'create selfsubjectreviews',
    ]);
  });

  it('shows the newest Warning Event about each object as its last error, when allowed to list Events', async () => {
    const { code, report } = await json(served(), env(kubeconfigs.admin));
    assert.equal(code, 0);
    assert.match(row(report, `Namespace/${ns.invalid}`).lastError ?? '', /^InvalidAnnotation: annotation ecr-login\/server: "docker.io\/library"/);
    assert.match(row(report, `Namespace/${ns.denied}`).lastError ?? '', /^PolicyDenied: denied by policy: rule no-eu-for-restricted/);
    assert.equal(row(report, `Namespace/${ns.good}`).lastError, undefined);
  });

  it('lists Pods created before their ServiceAccount listed the pull Secret, and says when it may not list Pods', async () => {
    const { core } = admin();
    const body = (name: string, imagePullSecrets?: k8s.V1LocalObjectReference[]): k8s.V1Pod => ({
      metadata: { name },
      spec: { containers: [{ name: 'c', image: `${ecrHost('us-east-1')}/app:1` }], ...(imagePullSecrets !== undefined ? { imagePullSecrets } : {}) },
    });
    // A Pod that names a Secret of its own gets nothing from its ServiceAccount: the race's outcome.
    await core.createNamespacedPod({ namespace: ns.good, body: body('late', [{ name: 'other' }]) });
    await core.createNamespacedPod({ namespace: ns.good, body: body('fine') });
    const asAdmin = await json(served(), env(kubeconfigs.admin));
    const pods = asAdmin.report.checks.find((check) => check.name === 'pods');
    assert.equal(pods?.status, 'warn');
    assert.match(
      pods?.detail ?? '',
      new RegExp(`^1 Pod was created before its ServiceAccount listed the pull Secret .*: ${ns.good}/late \\(ecr-login\\)\\. Delete them`),
    );
    assert.doesNotMatch(pods?.detail ?? '', /\/fine/);
    const asController = await json(served(), env(kubeconfigs.leastPrivilege));
    assert.match(asController.report.checks.find((check) => check.name === 'pods')?.detail ?? '', /^cannot list Pods, .*HTTP 403/);
    assert.equal(asController.code, 0, 'a warning, not a failure');
    await core.deleteCollectionNamespacedPod({ namespace: ns.good });
  });

  it('missing RBAC: exits 1 and names each permission that is denied', async () => {
    const result = await doctor(served(), env(kubeconfigs.missingRbac));
    assert.equal(result.code, 1, result.stdout);
    assert.match(result.stdout, /^rbac +FAIL +denied: .*patch serviceaccounts cluster-wide/m);
    assert.match(result.stdout, /^rbac +FAIL +denied: .*create events cluster-wide/m);
    assert.doesNotMatch(result.stdout, /denied: .*(list|watch) serviceaccounts/);
    assert.match(result.stdout, /\nunhealthy: 1 failing check: rbac\n$/);
  });

  it('with --leader-elect, the Lease permissions are required, and named when missing', async () => {
    const withoutLease = await account(
      'doctor-no-lease',
      clusterRules,
      namespaceRules.filter((rule) => !rule.resources.includes('leases')),
    );
    const relaxed = await doctor(served(), env(withoutLease));
    assert.equal(relaxed.code, 0, relaxed.stdout);
    assert.match(relaxed.stdout, /^rbac leader election +WARN +needed with --leader-elect, denied: create leases.coordination.k8s.io in namespace/m);
    const strict = await doctor([...served(), '--leader-elect'], env(withoutLease));
    assert.equal(strict.code, 1);
    assert.match(
      strict.stdout,
      new RegExp(
        `^rbac +FAIL +denied: create leases.coordination.k8s.io in namespace ${controller.namespace}; get leases.coordination.k8s.io kube-ecrlogin in namespace ${controller.namespace}; update leases`,
        'm',
      ),
    );
  });

  it('AWS denied: exits 1 and names the AWS identity check and every region', async () => {
    const result = await doctor(
      served(),
      env(kubeconfigs.leastPrivilege, { AWS_ACCESS_KEY_ID: 'AKIAUNKNOWN000000000', AWS_SECRET_ACCESS_KEY: 'not-a-known-key' }),
    );
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^aws identity +FAIL +sts:GetCallerIdentity failed: InvalidClientTokenId/m);
    assert.match(
      result.stdout,
      /^ecr us-east-1 +FAIL +as the controller's own identity for 1 Secret: GetAuthorizationToken failed: UnrecognizedClientException/m,
    );
    assert.match(result.stdout, /\nunhealthy: 4 failing checks: aws identity, ecr eu-west-1, ecr us-east-1, ecr us-east-2 as role\/doc-builder-pull\n$/);
    assert.ok(!result.stdout.includes('not-a-known-key'));
  });

  it('AWS denied in one region only: exits 1 naming that region alone', async () => {
    const id = aws.faults.set({ api: 'GetAuthorizationToken', region: 'eu-west-1', kind: 'accessDenied' });
    try {
      const { code, report } = await json(served(), env(kubeconfigs.leastPrivilege));
      assert.equal(code, 1);
      assert.deepEqual(report.failing, ['ecr eu-west-1']);
      assert.match(report.checks.find((c) => c.name === 'ecr eu-west-1')?.detail ?? '', /AccessDeniedException/);
    } finally {
      aws.faults.clear({ id });
    }
  });

  it('an invalid ConfigMap: exits 1 and names the setting', async () => {
    const { core } = admin();
    const replace = (text: string): Promise<k8s.V1ConfigMap> =>
      core.replaceNamespacedConfigMap({
        namespace: controller.namespace,
        name: 'kube-ecrlogin-config',
        body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': text } },
      });
    await replace(`${config}refresh:\n  margin: always\n`);
    try {
      const result = await doctor(served(), env(kubeconfigs.leastPrivilege));
      assert.equal(result.code, 1);
      assert.match(
        result.stdout,
        new RegExp(
          `^config +FAIL +ConfigMap ${controller.namespace}/kube-ecrlogin-config key config.yaml is invalid: refresh.margin: "always" is neither`,
          'm',
        ),
      );
      assert.match(result.stdout, /\nunhealthy: 1 failing check: config\n$/);
      // Its policy unknown, the doctor cannot blame a missing Secret on the controller.
      assert.match(
        result.stdout,
        new RegExp(
          `^credentials unknown +WARN +no Secret, perhaps denied by the policy in force \\(the ConfigMap is invalid\\): Namespace/${ns.denied} \\(missing\\)$`,
          'm',
        ),
      );
    } finally {
      await replace(config);
    }
  });

  it('a ConfigMap whose key is misspelled (config.yml): exits 1 and names the key found and the one expected', async () => {
    const { core } = admin();
    const replace = (data: Record<string, string>): Promise<k8s.V1ConfigMap> =>
      core.replaceNamespacedConfigMap({
        namespace: controller.namespace,
        name: 'kube-ecrlogin-config',
        body: { metadata: { name: 'kube-ecrlogin-config' }, data },
      });
    await replace({ 'config.yml': config });
    try {
      const { code, report } = await json(served(), env(kubeconfigs.leastPrivilege));
      assert.equal(code, 1);
      assert.deepEqual(report.failing, ['config']);
      assert.equal(
        report.checks.find((c) => c.name === 'config')?.detail,
        `ConfigMap ${controller.namespace}/kube-ecrlogin-config is invalid: no key config.yaml: found "config.yml", expected "config.yaml"`,
      );
    } finally {
      await replace({ 'config.yaml': config });
    }
  });

  it('with --require-policy and no ConfigMap: exits 1, says every request is denied, and shows each object denied', async () => {
    const absent = uniqueName('doc-absent');
    const open = await json([...served(), '--config-map', absent], env(kubeconfigs.admin));
    assert.equal(open.report.checks.find((c) => c.name === 'config')?.detail, `ConfigMap ${controller.namespace}/${absent} absent: the defaults apply`);

    const { code, report } = await json([...served(), '--config-map', absent, '--require-policy'], env(kubeconfigs.admin));
    assert.equal(code, 1);
    assert.ok(report.failing.includes('config'));
    assert.equal(
      report.checks.find((c) => c.name === 'config')?.detail,
      `no policy in force: --require-policy and ConfigMap ${controller.namespace}/${absent} is missing: the controller denies every request (one running since a valid ConfigMap was removed keeps that until it restarts)`,
    );
    assert.equal(row(report, `Namespace/${ns.good}`).status, 'policy denied');
    assert.match(row(report, `Namespace/${ns.good}`).detail ?? '', /^denied by policy: no policy in force: --require-policy/);
  });

  it('warns when rules restrict registries but namespaces under different rules share an identity, and not when each has its own role', async () => {
    const { core } = admin();
    const other = 'arn:aws:iam::111122223333:role/doc-other-pull';
    aws.setRole({ roleArn: other, trustedPrincipals: [controllerKeys.arn] });
    const group = async (members: Record<string, Record<string, string>>): Promise<string[]> => {
      const label = { key: 'kube-ecrlogin.test/doctor-isolation', value: uniqueName('iso') };
      for (const [name, annotations] of Object.entries(members)) {
        await core.createNamespace({ body: { metadata: { name, labels: { [label.key]: label.value }, annotations } } });
      }
      return ['--namespace-selector', `${label.key}=${label.value}`];
    };
    const us = { 'ecr-login/server': ecrHost('us-east-1') };

    // doc-denied-* may use us-* registries only; everyone else any: with one identity, one token for both.
    const shared = await group({ [uniqueName('doc-denied-iso')]: us, [uniqueName('doc-shared-iso')]: us });
    const warned = (await json(shared, env(kubeconfigs.leastPrivilege))).report.checks.find((c) => c.name === 'policy registries');
    assert.equal(warned?.status, 'warn');
    assert.equal(
      warned?.detail,
      "rules restrict registries, but an ECR token is valid for every registry its identity can reach: the controller's own identity (one token for all) serves namespaces under rules with different registries: everyone (any registry), no-eu-for-restricted (*/us-*). Give each tenant its own role to keep them apart",
    );

    // The same role, even with a session per namespace, reaches the same registries.
    const sameRole = await group({
      [uniqueName('doc-denied-iso')]: { ...us, 'ecr-login/role-arn': role },
      [uniqueName('doc-shared-iso')]: { ...us, 'ecr-login/role-arn': role },
    });
    const sameRoleCheck = (await json(sameRole, env(kubeconfigs.leastPrivilege))).report.checks.find((c) => c.name === 'policy registries');
    assert.equal(sameRoleCheck?.status, 'warn');
    assert.match(
      sameRoleCheck?.detail ?? '',
      new RegExp(
        `: role ${role} serves namespaces under rules with different registries: everyone \\(any registry\\), no-eu-for-restricted \\(\\*/us-\\*\\)\\. `,
      ),
    );

    const ownRoles = await group({
      [uniqueName('doc-denied-iso')]: { ...us, 'ecr-login/role-arn': role },
      [uniqueName('doc-own-iso')]: { ...us, 'ecr-login/role-arn': other },
    });
    const { report } = await json(ownRoles, env(kubeconfigs.leastPrivilege));
    assert.equal(report.objects.length, 2, 'both are listed');
    assert.equal(
      report.checks.find((c) => c.name === 'policy registries'),
      undefined,
    );
  });

  it('classifies the Secrets it finds: missing, expired, expiring and taken by a Secret it does not manage', async () => {
    const { core } = admin();
    const names = {
      missing: uniqueName('doc-missing'),
      expired: uniqueName('doc-expired'),
      expiring: uniqueName('doc-expiring'),
      taken: uniqueName('doc-taken'),
    };
    const labels = { [unserved.key]: unserved.value };
    for (const name of Object.values(names)) {
      await core.createNamespace({ body: { metadata: { name, labels, annotations: { 'ecr-login/server': ecrHost('us-east-1') } } } });
    }
    const now = Date.now();
    const managed = (namespace: string, issuedAt: number, expiresAt: number): Promise<k8s.V1Secret> =>
      core.createNamespacedSecret({
        namespace,
        body: {
          metadata: {
            name: 'ecr-login',
            labels: { 'app.kubernetes.io/managed-by': 'kube-ecrlogin' },
            annotations: {
              'ecr-login/owner': `Namespace/${namespace}`,
              'ecr-login/issued-at': new Date(issuedAt).toISOString(),
              'ecr-login/expires-at': new Date(expiresAt).toISOString(),
            },
          },
          type: 'kubernetes.io/dockerconfigjson',
          data: {
            '.dockerconfigjson': Buffer.from(
              JSON.stringify({ auths: { [ecrHost('us-east-1')]: { username: 'AWS', password: 'x', auth: Buffer.from('AWS:x').toString('base64') } } }),
            ).toString('base64'),
          },
        },
      });
    await managed(names.expired, now - 13 * 3_600_000, now - 3_600_000);
    await managed(names.expiring, now - 11.5 * 3_600_000, now + 1_800_000);
    await core.createNamespacedSecret({ namespace: names.taken, body: { metadata: { name: 'ecr-login' }, type: 'Opaque', data: { other: 'eA==' } } });

    const { code, report } = await json(['--namespace-selector', `${unserved.key}=${unserved.value}`], env(kubeconfigs.leastPrivilege));
    assert.equal(code, 1);
    const status = (name: string): string => row(report, `Namespace/${name}`).status;
    assert.equal(status(names.missing), 'missing');
    assert.equal(status(names.expired), 'expired');
    assert.equal(status(names.expiring), 'expiring');
    assert.equal(status(names.taken), 'conflict');
    assert.match(row(report, `Namespace/${names.taken}`).detail ?? '', /exists and is not managed by kube-ecrlogin/);
    assert.deepEqual(report.failing, ['credentials']);
    const credentials = report.checks.find((c) => c.name === 'credentials')?.detail ?? '';
    assert.match(
      credentials,
      new RegExp(
        `^2 without usable credentials: Namespace/${names.missing} \\(missing\\), Namespace/${names.expired} \\(expired\\)$|^2 without usable credentials: Namespace/${names.expired} \\(expired\\), Namespace/${names.missing} \\(missing\\)$`,
      ),
    );
    assert.match(report.checks.find((c) => c.name === 'credentials expiring')?.detail ?? '', new RegExp(names.expiring));
  });

  it('checks every Secret of an object that has several (argocd-repository: one per registry), not only the first', async () => {
    const { core } = admin();
    const name = uniqueName('doc-argocd');
    const only = { key: 'kube-ecrlogin.test/doctor-argocd', value: uniqueName('argocd') };
    const hosts = { fresh: ecrHost('us-east-1'), expired: ecrHost('eu-west-1', '444455556666'), missing: ecrHost('us-east-2') };
    await core.createNamespace({
      body: {
        metadata: {
          name,
          labels: { [only.key]: only.value },
          annotations: { 'ecr-login/server': [hosts.fresh, hosts.expired, hosts.missing].join(','), 'ecr-login/format': 'argocd-repository' },
        },
      },
    });
    const secretName = (host: string): string => `ecr-login-${host.replace(/\./g, '-')}`;
    const now = Date.now();
    const repository = (host: string, issuedAt: number, expiresAt: number): Promise<k8s.V1Secret> =>
      core.createNamespacedSecret({
        namespace: name,
        body: {
          metadata: {
            name: secretName(host),
            labels: { 'app.kubernetes.io/managed-by': 'kube-ecrlogin', 'argocd.argoproj.io/secret-type': 'repo-creds' },
            annotations: {
              'ecr-login/owner': `Namespace/${name}`,
              'ecr-login/format': 'argocd-repository',
              'ecr-login/issued-at': new Date(issuedAt).toISOString(),
              'ecr-login/expires-at': new Date(expiresAt).toISOString(),
            },
          },
          type: 'Opaque',
          stringData: { url: host, type: 'helm', enableOCI: 'true', username: 'AWS', password: 'x' },
        },
      });
    await repository(hosts.fresh, now - 3_600_000, now + 11 * 3_600_000);
    await repository(hosts.expired, now - 13 * 3_600_000, now - 3_600_000);

    const { code, report } = await json(['--namespace-selector', `${only.key}=${only.value}`], env(kubeconfigs.leastPrivilege));
    assert.equal(code, 1);
    assert.deepEqual(
      report.objects.map((o) => [o.secret, o.status]).sort(),
      [
        [secretName(hosts.fresh), 'ok'],
        [secretName(hosts.expired), 'expired'],
        [secretName(hosts.missing), 'missing'],
      ].sort(),
    );
    assert.ok(report.objects.every((o) => o.object === `Namespace/${name}`));
    assert.deepEqual(report.failing, ['credentials']);
    const credentials = report.checks.find((c) => c.name === 'credentials')?.detail ?? '';
    assert.ok(credentials.startsWith('2 without usable credentials: '), credentials);
    assert.ok(credentials.includes(`Namespace/${name} Secret ${secretName(hosts.expired)} (expired)`), credentials);
    assert.ok(credentials.includes(`Namespace/${name} Secret ${secretName(hosts.missing)} (missing)`), credentials);
  });

  it('names create serviceaccounts/token as a failure once an annotation uses service-account identity', async () => {
    const { core } = admin();
    const keyless = { key: 'kube-ecrlogin.test/doctor-keyless', value: uniqueName('keyless') };
    const name = uniqueName('doc-keyless');
    await core.createNamespace({
      body: {
        metadata: {
          name,
          labels: { [keyless.key]: keyless.value },
          annotations: { 'ecr-login/server': ecrHost('us-east-1'), 'ecr-login/identity': 'service-account', 'ecr-login/role-arn': role },
        },
      },
    });
    await eventually('the default ServiceAccount', () => core.readNamespacedServiceAccount({ namespace: name, name: 'default' }));
    const { report } = await json(['--namespace-selector', `${keyless.key}=${keyless.value}`], env(kubeconfigs.leastPrivilege));
    assert.ok(report.failing.includes('rbac'));
    assert.match(report.checks.find((c) => c.name === 'rbac')?.detail ?? '', /^denied: create serviceaccounts\/token cluster-wide$/);
    assert.equal(
      report.checks.find((c) => c.name === 'rbac keyless tenants'),
      undefined,
    );
    assert.equal(report.checks.find((c) => c.name === 'ecr us-east-1 web identity')?.status, 'skip');
  });
});
