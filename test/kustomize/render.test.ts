// Every kustomization renders, and what it renders says what the controller needs: the flags and
// environment parse with the controller's own parser, the ports match the flags, the ConfigMap's
// commented config.yaml is the controller's defaults, the alerts name metrics the controller exports,
// and the CronJob's Pod is the Deployment's.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseOptions } from '../../src/config/options.ts';
import { defaultSettings, parseSettings } from '../../src/config/settings.ts';

import { Metrics } from '../../src/metrics.ts';
import { repoRoot } from '../cluster/controlplane.ts';
import {
  containerOf,
  expandArgs,
  find,
  inNamespace,
  kustomizations,
  kustomize,
  kustomizeRoot,
  podSpecOf,
  podTemplateOf,
  run,
  runOk,
  Scratch,
  type Manifest,
} from './support.ts';
import { roleArnProblem } from '../../src/validation.ts';
import { fieldManager } from '../../src/kube/objects.ts';

const host = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const packageVersion = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const optionsFor = (args: readonly string[], env: Record<string, string> = {}) => parseOptions(expandArgs(args, env), { env, hostname: 'pod-0' });

describe('kustomize', () => {
  let scratch: Scratch;
  /** base plus one component, rendered through a throw-away overlay. */
  const withComponents = (name: string, ...components: string[]): Promise<Manifest[]> =>
    kustomize(scratch.kustomization(name, { resources: ['kustomize/base'], components: components.map((c) => `kustomize/components/${c}`) }));

  before(() => {
    scratch = new Scratch();
  });
  after(() => scratch.remove());

  describe('renders', () => {
    for (const dir of [...kustomizations.base, ...kustomizations.overlays]) {
      it(`kustomize/${dir}`, async () => {
        const objects = await kustomize(join(kustomizeRoot, dir));
        assert.ok(objects.length > 0);
      });
    }
    for (const dir of kustomizations.components) {
      it(`kustomize/${dir} on top of the base`, async () => {
        const name = dir.split('/')[1] ?? dir;
        // A component is built through an overlay; static-credentials also over the cronjob.
        const objects = await withComponents(`only-${name}`, name);
        assert.ok(objects.length > 0);
        if (name === 'static-credentials') await withComponents('cronjob-static', 'cronjob', 'static-credentials');
      });
    }

    it('validate.sh builds every kustomization', async () => {
      const result = await run(join(repoRoot, 'test', 'kustomize', 'validate.sh'), []);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      for (const dir of [...kustomizations.base, ...kustomizations.components, ...kustomizations.overlays]) {
        assert.match(result.stdout, new RegExp(`ok +kustomize/${dir}\\b`));
      }
    });
  });

  describe('base', () => {
    let objects: Manifest[];
    before(async () => {
      objects = await kustomize(join(kustomizeRoot, 'base'));
    });

    it('holds the controller and nothing else, every namespaced object in kube-ecrlogin', () => {
      assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
        'ClusterRole/kube-ecrlogin',
        'ClusterRoleBinding/kube-ecrlogin',
        'ConfigMap/kube-ecrlogin-config',
        'Deployment/kube-ecrlogin',
        'Namespace/kube-ecrlogin',
        'Role/kube-ecrlogin',
        'RoleBinding/kube-ecrlogin',
        'Service/kube-ecrlogin-metrics',
        'ServiceAccount/kube-ecrlogin',
      ]);
      for (const object of objects) {
        if (['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(object.kind)) assert.equal(object.metadata.namespace, undefined);
        else assert.equal(object.metadata.namespace, 'kube-ecrlogin', `${object.kind}/${object.metadata.name}`);
        assert.equal(object.metadata.labels?.['app.kubernetes.io/name'], 'kube-ecrlogin');
        // The controller selects its own Secrets by this label: nothing else may carry it.
        assert.notEqual(object.metadata.labels?.['app.kubernetes.io/managed-by'], 'kube-ecrlogin');
      }
      assert.equal(find(objects, 'Namespace').metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
    });

    it('runs the controller with flags it accepts, on the ports the probes and the Service use', () => {
      const deployment = find(objects, 'Deployment');
      const container = containerOf(deployment);
      assert.equal(container.image, `ghcr.io/kube-ecrlogin/kube-ecrlogin:${packageVersion}`);
      const options = optionsFor(container.args ?? [], { POD_NAMESPACE: 'kube-ecrlogin', POD_NAME: 'kube-ecrlogin-abc' });
      assert.equal(options.command, 'run');
      assert.equal(options.namespace, 'kube-ecrlogin');
      assert.equal(options.instance, 'kube-ecrlogin-abc');
      assert.equal(options.leaderElect, false);
      assert.equal(options.target, undefined, 'annotation mode: no static target');
      const port = (name: string): number | undefined => container.ports?.find((p) => p.name === name)?.containerPort;
      assert.equal(port('metrics'), options.metricsAddress?.port);
      assert.equal(port('health'), options.healthAddress?.port);
      assert.deepEqual(container.livenessProbe?.httpGet, { path: '/healthz', port: 'health' });
      assert.deepEqual(container.readinessProbe?.httpGet, { path: '/readyz', port: 'health' });
      const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.valueFrom]));
      assert.deepEqual(env, {
        POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
        POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      });
      const resources = container.resources as { requests: Record<string, string>; limits: Record<string, string> };
      assert.deepEqual(Object.keys(resources.requests).sort(), ['cpu', 'memory']);
      assert.deepEqual(Object.keys(resources.limits).sort(), ['cpu', 'memory']);
      assert.equal(podSpecOf(deployment).serviceAccountName, 'kube-ecrlogin');

      const service = find(objects, 'Service');
      const spec = service['spec'] as { selector: Record<string, string>; ports: { targetPort: string; port: number }[] };
      const podLabels = podTemplateOf(deployment).metadata?.labels ?? {};
      for (const [key, value] of Object.entries(spec.selector)) assert.equal(podLabels[key], value, `Service selector ${key}`);
      assert.equal(spec.ports[0]?.targetPort, 'metrics');
    });

    it('meets the restricted Pod Security Standard in its security contexts', () => {
      const pod = podSpecOf(find(objects, 'Deployment'));
      assert.deepEqual(pod.securityContext, {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        fsGroup: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      assert.deepEqual(pod.containers[0]?.securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
    });

    it('names the controller default ConfigMaps (policy, status) and Lease in the Role', () => {
      const defaults = optionsFor([]);
      const role = find(objects, 'Role') as Manifest & { rules: { resources: string[]; resourceNames?: string[] }[] };
      const names = (resource: string): string[] => role.rules.filter((r) => r.resources.includes(resource)).flatMap((r) => r.resourceNames ?? []);
      assert.deepEqual(names('configmaps'), [defaults.configMap, defaults.statusConfigMap]);
      assert.deepEqual(names('leases'), [defaults.leaseName]);
      assert.equal(find(objects, 'ConfigMap').metadata.name, defaults.configMap);
    });

    it('ships a config.yaml that is the defaults, and whose commented example is valid', () => {
      const data = find(objects, 'ConfigMap')['data'] as Record<string, string>;
      const text = data['config.yaml'] ?? '';
      const parsed = parseSettings(text);
      assert.ok(parsed.ok, 'the shipped config.yaml parses');
      assert.deepEqual(parsed.value, defaultSettings);
      const uncommented = text
        .split('\n')
        .map((line) => line.replace(/^(\s*)# ?/, '$1'))
        .join('\n');
      const example = parseSettings(uncommented);
      assert.ok(example.ok, `the uncommented example parses: ${example.ok ? '' : example.error.join('; ')}`);
      // Every documented value is the default, except the examples that have no default.
      assert.deepEqual(example.value.refresh, defaultSettings.refresh);
      assert.deepEqual(example.value.identities, defaultSettings.identities);
      assert.equal(example.value.logLevel, defaultSettings.logLevel);
      assert.equal(example.value.defaults.secretName, defaultSettings.defaults.secretName);
      assert.equal(example.value.aws.sessionDurationSeconds, defaultSettings.aws.sessionDurationSeconds);
      assert.equal(example.value.rules.length, 1);
    });
  });

  describe('components', () => {
    it('irsa annotates the ServiceAccount with a role ARN placeholder', async () => {
      const sa = find(await withComponents('irsa', 'irsa'), 'ServiceAccount');
      const arn = sa.metadata.annotations?.['eks.amazonaws.com/role-arn'] ?? '';
      assert.equal(roleArnProblem(arn), undefined);
      assert.match(arn, /:111122223333:/, 'the documented placeholder account');
    });

    it('pod-identity annotates nothing EKS reads, only a note', async () => {
      const sa = find(await withComponents('pod-identity', 'pod-identity'), 'ServiceAccount');
      assert.equal(sa.metadata.annotations?.['eks.amazonaws.com/role-arn'], undefined);
      assert.match(sa.metadata.annotations?.['kube-ecrlogin/aws-credentials'] ?? '', /EKS Pod Identity/);
    });

    it('static-credentials gives the Deployment, or the CronJob, the Secret kube-ecrlogin-aws as environment', async () => {
      const deployment = find(await withComponents('static', 'static-credentials'), 'Deployment');
      assert.deepEqual(containerOf(deployment).envFrom, [{ secretRef: { name: 'kube-ecrlogin-aws', optional: true } }]);
      const cronJob = find(await withComponents('cron-static', 'cronjob', 'static-credentials'), 'CronJob');
      assert.deepEqual(containerOf(cronJob).envFrom, [{ secretRef: { name: 'kube-ecrlogin-aws', optional: true } }]);
    });

    it('keyless-tenants adds TokenRequest in a ClusterRole of its own, bound to the controller', async () => {
      const objects = await withComponents('keyless', 'keyless-tenants');
      const role = find(objects, 'ClusterRole', 'kube-ecrlogin-keyless-tenants');
      assert.deepEqual(role['rules'], [{ apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] }]);
      const binding = find(objects, 'ClusterRoleBinding', 'kube-ecrlogin-keyless-tenants');
      assert.deepEqual(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kube-ecrlogin-keyless-tenants' });
      assert.deepEqual(binding['subjects'], [{ kind: 'ServiceAccount', name: 'kube-ecrlogin', namespace: 'kube-ecrlogin' }]);
      const base = await kustomize(join(kustomizeRoot, 'base'));
      assert.deepEqual(find(objects, 'ClusterRole', 'kube-ecrlogin'), find(base, 'ClusterRole', 'kube-ecrlogin'), 'the base ClusterRole is unchanged');
    });

    it('cronjob replaces the Deployment and its Service with a CronJob running the same Pod', async () => {
      const objects = await withComponents('cronjob', 'cronjob');
      assert.ok(!objects.some((o) => o.kind === 'Deployment' || o.kind === 'Service'));
      const cronJob = find(objects, 'CronJob', 'kube-ecrlogin');
      assert.equal(cronJob.metadata.namespace, 'kube-ecrlogin');
      const spec = cronJob['spec'] as Record<string, unknown>;
      assert.equal(spec['schedule'], '0 */4 * * *');
      assert.equal(spec['concurrencyPolicy'], 'Forbid');
      const deadline = spec['startingDeadlineSeconds'] as number;
      assert.ok(deadline > 0 && deadline < 4 * 3600, 'a missed run still starts, before the next one is due');
      const job = (spec['jobTemplate'] as { spec: Record<string, unknown> }).spec;
      assert.ok((job['backoffLimit'] as number) > 0);
      assert.equal(podSpecOf(cronJob).restartPolicy, 'OnFailure');
      const container = containerOf(cronJob);
      assert.equal(optionsFor(container.args ?? []).command, 'once');

      const deployment = find(await kustomize(join(kustomizeRoot, 'base')), 'Deployment');
      const [cronPod, deploymentPod] = [podSpecOf(cronJob), podSpecOf(deployment)];
      for (const field of ['serviceAccountName', 'securityContext', 'nodeSelector'] as const) {
        assert.deepEqual(cronPod[field], deploymentPod[field], field);
      }
      const deploymentContainer = containerOf(deployment);
      for (const field of ['image', 'securityContext', 'resources', 'env'] as const) {
        assert.deepEqual(container[field], deploymentContainer[field], `container ${field}`);
      }
    });

    it('high-availability runs two replicas that elect a leader, spread and protected by a PodDisruptionBudget', async () => {
      const objects = await withComponents('ha', 'high-availability');
      const deployment = find(objects, 'Deployment');
      const spec = deployment['spec'] as { replicas: number; strategy: { type: string; rollingUpdate: { maxUnavailable: number } } };
      assert.equal(spec.replicas, 2);
      assert.equal(spec.strategy.type, 'RollingUpdate');
      assert.equal(spec.strategy.rollingUpdate.maxUnavailable, 0);
      assert.equal(optionsFor(containerOf(deployment).args ?? []).leaderElect, true);
      const affinity = podSpecOf(deployment).affinity as { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: unknown[] } };
      assert.ok(affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.length > 0);
      const pdb = find(objects, 'PodDisruptionBudget');
      const pdbSpec = pdb['spec'] as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
      assert.equal(pdbSpec.minAvailable, 1);
      const podLabels = podTemplateOf(deployment).metadata?.labels ?? {};
      for (const [key, value] of Object.entries(pdbSpec.selector.matchLabels)) assert.equal(podLabels[key], value);
    });

    it('prometheus scrapes the metrics Service and alerts only on metrics the controller exports', async () => {
      const objects = await withComponents('prometheus', 'prometheus');
      const monitor = find(objects, 'ServiceMonitor');
      const service = find(objects, 'Service', 'kube-ecrlogin-metrics');
      const monitorSpec = monitor['spec'] as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
      for (const [key, value] of Object.entries(monitorSpec.selector.matchLabels)) assert.equal(service.metadata.labels?.[key], value);
      const servicePorts = (service['spec'] as { ports: { name: string }[] }).ports.map((p) => p.name);
      assert.ok(servicePorts.includes(monitorSpec.endpoints[0]?.port ?? ''));
      assert.equal(monitorSpec.endpoints[0]?.path, '/metrics');

      const rules = (find(objects, 'PrometheusRule')['spec'] as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
      const exported = new Set(new Metrics({ defaultMetrics: false }).registry.getMetricsAsArray().map((m) => m.name));
      const expressions = Object.fromEntries(rules.map((r) => [r.alert, r.expr]));
      assert.match(expressions['KubeEcrloginCredentialExpiringSoon'] ?? '', /kube_ecrlogin_secret_expiry_timestamp_seconds - time\(\) < 3600/);
      assert.match(expressions['KubeEcrloginSecretRefreshFailing'] ?? '', /kube_ecrlogin_secret_refresh_failing == 1/);
      assert.match(expressions['KubeEcrloginRefreshErrors'] ?? '', /sum\(increase\(kube_ecrlogin_refresh_total\{outcome="failed"\}\[15m\]\)\) > 0/);
      assert.match(expressions['KubeEcrloginNoLeader'] ?? '', /max\(kube_ecrlogin_leader\) < 1 or absent\(kube_ecrlogin_leader\)/);
      assert.match(expressions['KubeEcrloginConfigInvalid'] ?? '', /kube_ecrlogin_config_last_reload_successful == 0/);
      for (const rule of rules) {
        for (const name of rule.expr.match(/kube_ecrlogin_\w+/g) ?? []) assert.ok(exported.has(name), `${rule.alert}: ${name} is exported`);
      }
      // The outcome label value the alert counts is one the controller uses.
      const refreshes = new Metrics({ defaultMetrics: false });
      refreshes.refreshes.inc({ outcome: 'failed' });
      assert.match(await refreshes.registry.metrics(), /kube_ecrlogin_refresh_total\{outcome="failed"\} 1/);
    });

    it("admission-webhook leaves out kube-system and the install's own namespace, wherever a kustomize namespace: puts it", async () => {
      const webhookIn = scratch.kustomization('webhook-in-base-namespace', {
        resources: ['kustomize/base'],
        components: ['kustomize/components/admission-webhook'],
      });
      const renderings = {
        'the base namespace': await kustomize(webhookIn),
        'namespace: team beside the component': await kustomize(
          scratch.kustomization('webhook-team', { namespace: 'team', resources: ['kustomize/base'], components: ['kustomize/components/admission-webhook'] }),
        ),
        'namespace: team in an overlay above it': await kustomize(
          scratch.kustomization('webhook-team-above', { namespace: 'team', resources: ['../webhook-in-base-namespace'] }),
        ),
      };
      for (const [how, objects] of Object.entries(renderings)) {
        const { webhook, installed } = webhookOf(objects);
        assert.equal(installed.metadata.name, how === 'the base namespace' ? 'kube-ecrlogin' : 'team', `${how}: the test renders the namespace it means`);
        assert.equal(find(objects, 'Service', 'kube-ecrlogin-webhook').metadata.namespace, installed.metadata.name, how);
        assert.equal(webhook.clientConfig.service.namespace, installed.metadata.name, `${how}: the webhook calls the Service where it is`);
        assert.equal(selects(webhook.namespaceSelector, labelsOf(installed)), false, `${how}: the install's namespace ${installed.metadata.name} is left out`);
        assert.equal(selects(webhook.namespaceSelector, labelsOf(namespace('kube-system'))), false, `${how}: kube-system is left out`);
        assert.equal(selects(webhook.namespaceSelector, labelsOf(namespace('apps', { team: 'apps' }))), true, `${how}: another namespace is sent`);
        if (installed.metadata.name !== 'kube-ecrlogin') {
          assert.equal(
            selects(webhook.namespaceSelector, labelsOf(namespace('kube-ecrlogin'))),
            true,
            `${how}: a namespace merely named kube-ecrlogin is one like any other`,
          );
        }
      }
    });

    it("admission-webhook: a NamespaceTransformer keeps the base's Namespace, so a namespace you make yourself needs the label to be left out", async () => {
      // The builtin transformer moves namespaced objects but renames no Namespace (the `namespace:`
      // field does): the install then lives in a namespace the kustomization does not render.
      const objects = await kustomize(inNamespace(scratch, 'webhook-team-transformer', 'team', 'base', ['components/admission-webhook']));
      const { webhook, installed } = webhookOf(objects);
      assert.equal(installed.metadata.name, 'kube-ecrlogin');
      assert.equal(webhook.clientConfig.service.namespace, 'team');
      assert.equal(selects(webhook.namespaceSelector, labelsOf(namespace('team'))), true, 'an unlabelled team is sent (failurePolicy Ignore: harmless)');
      assert.equal(
        selects(webhook.namespaceSelector, labelsOf(namespace('team', { 'app.kubernetes.io/name': 'kube-ecrlogin' }))),
        false,
        'labelled as the README says, it is left out',
      );
    });
  });

  describe('overlays', () => {
    it('default is the base with IRSA and the guard-rails', async () => {
      const objects = await kustomize(join(kustomizeRoot, 'overlays', 'default'));
      const base = await kustomize(join(kustomizeRoot, 'base'));
      const guardRails = ['token-requests', 'writes'].flatMap((name) => [
        `ValidatingAdmissionPolicy/kube-ecrlogin-${name}`,
        `ValidatingAdmissionPolicyBinding/kube-ecrlogin-${name}`,
      ]);
      assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [...base.map((o) => `${o.kind}/${o.metadata.name}`), ...guardRails].sort());
      assert.ok(find(objects, 'ServiceAccount').metadata.annotations?.['eks.amazonaws.com/role-arn']);
    });

    describe('seed-compatible', () => {
      let objects: Manifest[];
      before(async () => {
        objects = await kustomize(join(kustomizeRoot, 'overlays', 'seed-compatible'));
      });

      it('forces no namespace, like the original: no Namespace object, no metadata.namespace', () => {
        assert.ok(!objects.some((o) => o.kind === 'Namespace'));
        for (const object of objects) assert.equal(object.metadata.namespace, undefined, `${object.kind}/${object.metadata.name}`);
        const roleBinding = find(objects, 'RoleBinding') as Manifest & { subjects: { namespace?: string }[] };
        assert.equal(roleBinding.subjects[0]?.namespace, undefined, "a RoleBinding's subject defaults to its own namespace");
        const clusterRoleBinding = find(objects, 'ClusterRoleBinding') as Manifest & { subjects: { namespace?: string }[] };
        assert.equal(clusterRoleBinding.subjects[0]?.namespace, 'default', 'as the original kube-ecrlogin-rbac.yaml');
      });

      it("is the original's CronJob: every 4 hours, keys from kube-ecrlogin-aws, regcred in its own namespace", () => {
        assert.ok(!objects.some((o) => o.kind === 'Deployment' || o.kind === 'Service'));
        const cronJob = find(objects, 'CronJob', 'kube-ecrlogin');
        const spec = cronJob['spec'] as Record<string, unknown>;
        assert.equal(spec['schedule'], '0 */4 * * *');
        assert.equal(podSpecOf(cronJob).restartPolicy, 'OnFailure');
        const container = containerOf(cronJob);
        assert.deepEqual(container.envFrom, [{ secretRef: { name: 'kube-ecrlogin-aws', optional: true } }]);
        // What the kubelet and the controller make of it in namespace `team`, with the original's Secret.
        const options = optionsFor(container.args ?? [], {
          POD_NAMESPACE: 'team',
          POD_NAME: 'kube-ecrlogin-28999-abcde',
          AWS_ACCESS_KEY_ID: 'AKIA',
          AWS_SECRET_ACCESS_KEY: 'secret',
          AWS_DEFAULT_REGION: 'us-east-1',
          AWS_ECR_SERVER: host,
        });
        assert.equal(options.command, 'once');
        assert.equal(options.namespace, 'team');
        assert.equal(options.target?.namespace, 'team');
        assert.equal(options.target?.secretName, 'regcred');
        assert.deepEqual(
          options.target?.registries.map((r) => r.host),
          [host],
        );
      });

      it('moves wholly into another namespace when wrapped as its README says, ClusterRoleBinding subject included', async () => {
        const wrapped = await kustomize(inNamespace(scratch, 'seed-in-team', 'team', 'overlays/seed-compatible'));
        for (const object of wrapped) {
          if (object.kind !== 'ClusterRole' && object.kind !== 'ClusterRoleBinding')
            assert.equal(object.metadata.namespace, 'team', `${object.kind}/${object.metadata.name}`);
        }
        for (const kind of ['RoleBinding', 'ClusterRoleBinding']) {
          assert.deepEqual((find(wrapped, kind) as Manifest & { subjects: unknown[] }).subjects, [
            { kind: 'ServiceAccount', name: 'kube-ecrlogin', namespace: 'team' },
          ]);
        }
      });
    });

    it("argocd points an Application at the install example and ignores kube-ecrlogin's imagePullSecrets entries", async (t) => {
      const app = find(await kustomize(join(kustomizeRoot, 'overlays', 'argocd')), 'Application');
      const spec = app['spec'] as {
        source: { path: string; repoURL: string };
        destination: { namespace: string };
        ignoreDifferences: { group: string; kind: string; managedFieldsManagers: string[]; jqPathExpressions: string[] }[];
        syncPolicy: { syncOptions: string[] };
      };
      assert.equal(spec.source.path, 'kustomize/examples/install');
      assert.ok(existsSync(join(repoRoot, spec.source.path, 'kustomization.yaml')));
      assert.equal(spec.destination.namespace, 'kube-ecrlogin');
      const rule = spec.ignoreDifferences.find((r) => r.kind === 'ServiceAccount');
      assert.equal(rule?.group, '');
      assert.deepEqual(rule?.managedFieldsManagers, [fieldManager]);
      assert.ok(spec.syncPolicy.syncOptions.includes('RespectIgnoreDifferences=true'));
      assert.ok(spec.syncPolicy.syncOptions.includes('ServerSideApply=true'));

      // Argo CD evaluates each expression as del(<expression>) (gojq); jq 1.6 agrees on this one.
      const expressions = rule?.jqPathExpressions ?? [];
      assert.ok(expressions.length > 0, 'the ServiceAccount rule ignores entries by jqPathExpressions');
      const jq = await run('jq', ['--version']);
      if (jq.code !== 0) {
        t.skip('no jq to evaluate the jqPathExpressions with');
        return;
      }
      const sa = { imagePullSecrets: [{ name: 'dockerhub' }, { name: 'ecr-login' }, { name: 'ecr-login-builder' }, { name: 'not-ecr-login' }] };
      for (const expression of expressions) {
        const out = await runOk('jq', ['-c', `del(${expression})`], { input: JSON.stringify(sa) });
        assert.deepEqual(JSON.parse(out), { imagePullSecrets: [{ name: 'dockerhub' }, { name: 'not-ecr-login' }] });
      }
    });

    it('flux syncs the install example with prune and wait, leaving ServiceAccount imagePullSecrets alone', async () => {
      const objects = await kustomize(join(kustomizeRoot, 'overlays', 'flux'));
      const source = find(objects, 'GitRepository');
      const ks = find(objects, 'Kustomization');
      const spec = ks['spec'] as {
        path: string;
        prune: boolean;
        wait: boolean;
        sourceRef: { kind: string; name: string };
        ignore: { paths: string[]; target: { kind: string; version: string } }[];
      };
      assert.ok(existsSync(join(repoRoot, spec.path, 'kustomization.yaml')));
      assert.equal(spec.path, './kustomize/examples/install');
      assert.equal(spec.prune, true);
      assert.equal(spec.wait, true);
      assert.deepEqual(spec.sourceRef, { kind: 'GitRepository', name: source.metadata.name });
      assert.equal(source.metadata.namespace, ks.metadata.namespace);
      assert.deepEqual(spec.ignore, [{ paths: ['/imagePullSecrets'], target: { version: 'v1', kind: 'ServiceAccount' } }]);
    });
  });
});

function webhookOf(objects: readonly Manifest[]): {
  webhook: { clientConfig: { service: { namespace: string } }; namespaceSelector: Selector };
  installed: Manifest;
} {
  const [webhook] = find(objects, 'MutatingWebhookConfiguration')['webhooks'] as {
    clientConfig: { service: { namespace: string } };
    namespaceSelector: Selector;
  }[];
  assert.ok(webhook !== undefined);
  return { webhook, installed: find(objects, 'Namespace') };
}

function namespace(name: string, labels: Record<string, string> = {}): Manifest {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

/** The labels the API server matches a namespaceSelector against: the Namespace's, and its name as kubernetes.io/metadata.name. */
function labelsOf(namespace: Manifest): Record<string, string> {
  return { ...namespace.metadata.labels, 'kubernetes.io/metadata.name': namespace.metadata.name };
}

/** A label selector as the API server reads it (matchLabels and matchExpressions, ANDed). */
interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

function selects(selector: Selector, labels: Record<string, string>): boolean {
  const labelsMatch = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  return (
    labelsMatch &&
    (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
      const value = labels[key];
      switch (operator) {
        case 'In':
          return value !== undefined && values.includes(value);
        case 'NotIn':
          return value === undefined || !values.includes(value);
        case 'Exists':
          return value !== undefined;
        case 'DoesNotExist':
          return value === undefined;
      }
    })
  );
}
