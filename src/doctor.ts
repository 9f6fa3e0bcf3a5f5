// `kube-ecrlogin doctor`: checks what the controller depends on, then lists every annotated object
// with its Secret, expiry, status and last error. Reads only: it writes nothing to the cluster (its
// SelfSubjectAccessReviews and SelfSubjectReview are questions, not stored objects) and prints no
// credential. Exit code 0 when healthy, 1 with the failing checks named.
//
// Checks: the Kubernetes API and who we are there; the policy ConfigMap (parsed as the controller
// parses it); RBAC (a SelfSubjectAccessReview per permission in src/kube/permissions.ts, as whoever
// runs the doctor: run it as the controller's ServiceAccount, e.g. with kubectl exec); the AWS
// identity (GetCallerIdentity); ECR (one GetAuthorizationToken per region and identity in use,
// through the token broker as the controller gets them); then the annotated objects, and whether
// registry rules are defeated by an identity that namespaces under different rules share.

import {
  ApiException,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  type CoreV1Event,
  type KubeConfig,
  type V1Namespace,
  type V1Secret,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { describeSource } from './annotations.ts';
import { loadKubeConfig } from './kube/kubeconfig.ts';
import type { AwsApi } from './aws/api.ts';
import { describeAwsError } from './aws/errors.ts';
import { identityProblemFromEnv, identityProblemFromError, identityProblemFromServiceAccount } from './aws/identity-problem.ts';
import { sdkAwsApi } from './aws/sdk.ts';
import { describeIdentity, TokenBroker, TokenError, type TokenIdentity } from './broker.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Options } from './config/options.ts';
import { defaultSettings, type Rule, type Settings } from './config/settings.ts';
import { configKey, initialSettings, settingsFromConfigMap } from './config/source.ts';
import { nameOf, pullSecretsFor, resolveIntents, sharedSessionName } from './controller/intents.ts';
import { type Grant, type ProblemReason } from './controller/model.ts';
import { isManaged, managedSelector, readSecretState } from './controller/secrets.ts';
import { describeKubeError } from './kube/api.ts';
import { describePermission, requiredPermissions, type Permission } from './kube/permissions.ts';
import { namespaceMatches } from './policy.ts';
import { formatDuration } from './config/duration.ts';
import { tokenEndpoint, tokenEndpoints } from './registry.ts';
import { inPool } from './pool.ts';
import { refreshMargin } from './refresh.ts';
import type { Result } from './result.ts';
import { endpointKey, homeRegion, type EcrEndpoint } from './aws/api.ts';
import type { Check, CheckStatus } from './check.ts';
import { checkConfigInForce, checkDeployment, checkLease, checkStatus, configMapNow, readControllerStatus, type ConfigMapNow } from './doctor-running.ts';
import type { ControllerStatus } from './status.ts';
import { version } from './version.ts';
import { type ObjectRef } from './kube/objects.ts';

export type { Check } from './check.ts';

export type ObjectStatus = 'ok' | 'expiring' | 'expired' | 'missing' | 'conflict' | 'invalid annotation' | 'unknown annotation' | 'pending' | 'policy denied';

export interface ObjectReport {
  /** Namespace/<ns>, ServiceAccount/<ns>/<name>, or Target/<ns> (the --target-registries Secret). */
  readonly object: string;
  readonly namespace: string;
  readonly secret?: string;
  /** ISO time; absent when there is no Secret or it does not say. */
  readonly expiresAt?: string;
  readonly status: ObjectStatus;
  /** Why the status is what it is, when it is not ok. */
  readonly detail?: string;
  /** The newest Warning Event about the object: "<reason>: <message>". */
  readonly lastError?: string;
}

export interface DoctorReport {
  readonly healthy: boolean;
  /** The names of the failing checks. */
  readonly failing: readonly string[];
  readonly checks: readonly Check[];
  readonly objects: readonly ObjectReport[];
  /** The status the running controller published, when the doctor could read it. */
  readonly controller?: ControllerStatus;
}

/** Adapters a test may replace. */
export interface DoctorDependencies {
  readonly kubeConfig?: KubeConfig;
  readonly aws?: AwsApi;
  readonly clock?: Clock;
}

export async function doctor(options: Options, out: NodeJS.WritableStream, deps: DoctorDependencies = {}): Promise<number> {
  const report = await diagnose(options, deps);
  out.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, (deps.clock ?? systemClock).now()));
  return report.healthy ? 0 : 1;
}

/** Everything the doctor finds, without printing it. */
export async function diagnose(options: Options, deps: DoctorDependencies = {}): Promise<DoctorReport> {
  const clock = deps.clock ?? systemClock;
  const checks: Check[] = [];
  let running: ControllerStatus | undefined;
  const done = (objects: readonly ObjectReport[] = []): DoctorReport => {
    const failing = checks.filter((check) => check.status === 'fail').map((check) => check.name);
    return { healthy: failing.length === 0, failing, checks, objects, ...(running !== undefined ? { controller: running } : {}) };
  };

  // Kubernetes: reachable, and as whom.
  let config: KubeConfig;
  try {
    config = deps.kubeConfig ?? loadKubeConfig(options.kubeconfig);
  } catch (error) {
    checks.push({ name: 'kubernetes', status: 'fail', detail: `no kubeconfig: ${describeKubeError(error)}` });
    return done();
  }
  const server = config.getCurrentCluster()?.server ?? 'the API server';
  try {
    const review = await config.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    checks.push({ name: 'kubernetes', status: 'ok', detail: `${server} as ${review.status?.userInfo?.username ?? 'an unknown user'}` });
  } catch (error) {
    checks.push({ name: 'kubernetes', status: 'fail', detail: `${server}: ${describeKubeError(error)}` });
    return done();
  }
  const core = config.makeApiClient(CoreV1Api);

  // The running controller: its Deployment and Pods, its Lease, and the status its leader publishes.
  const started = clock.now();
  const published = await readControllerStatus(config, options);
  if (published.ok) running = published.value;
  const [deployment, lease] = await Promise.all([checkDeployment(config, options, started), checkLease(config, options, running, started)]);
  checks.push(deployment, ...(lease.check !== undefined ? [lease.check] : []));
  checks.push(...(running !== undefined ? checkStatus(running, version(), lease.holder, started) : published.ok ? [] : [published.error]));

  // The policy ConfigMap, listed by name as the controller reads it (its Role allows list, not get).
  let settings: Settings = defaultSettings;
  /** Whether we know the policy in force (an invalid ConfigMap leaves the controller on its last good one). */
  let policyKnown = true;
  let policyUnknown = 'the ConfigMap is invalid';
  const where = `ConfigMap ${options.namespace}/${options.configMap}`;
  /** The ConfigMap now, to compare with what the running controller has in force. */
  let seen: ConfigMapNow | undefined;
  try {
    const list = await core.listNamespacedConfigMap({ namespace: options.namespace, fieldSelector: `metadata.name=${options.configMap}` });
    const configMap = list.items[0];
    const source = { namespace: options.namespace, name: options.configMap, requirePolicy: options.requirePolicy };
    seen = configMapNow(configMap, configMap !== undefined && settingsFromConfigMap(configMap, source).ok);
    // As the controller reads it at start: under --require-policy, no policy denies everything.
    const result = initialSettings(configMap, { namespace: options.namespace, name: options.configMap, requirePolicy: options.requirePolicy });
    if (!result.ok) {
      policyKnown = false;
      const what = result.error.problem === 'no-key' ? where : `${where} key ${configKey}`;
      checks.push({ name: 'config', status: 'fail', detail: `${what} is invalid: ${result.error.errors.join('; ')}` });
    } else if (result.value.denyAll !== undefined) {
      settings = result.value;
      checks.push({
        name: 'config',
        status: 'fail',
        detail: `${result.value.denyAll}: the controller denies every request (one running since a valid ConfigMap was removed keeps that until it restarts)`,
      });
    } else {
      settings = result.value;
      const rules = `${result.value.rules.length} polic${result.value.rules.length === 1 ? 'y rule' : 'y rules'}`;
      checks.push({ name: 'config', status: 'ok', detail: configMap === undefined ? `${where} absent: the defaults apply` : `${where}: valid, ${rules}` });
    }
  } catch (error) {
    checks.push({ name: 'config', status: 'fail', detail: `cannot read ${where}: ${describeKubeError(error)}` });
  }
  // What runs can differ from the ConfigMap: an invalid or deleted one leaves the last good one in force.
  if (running !== undefined && seen !== undefined) {
    const inForce = checkConfigInForce(running.config, seen, options);
    checks.push(inForce.check);
    if (!inForce.agrees && policyKnown) {
      policyKnown = false;
      policyUnknown = 'the controller does not run the ConfigMap as it is now: see config in force';
    }
  }

  // What is annotated, as the controller sees it.
  const now = clock.now();
  let inventory: Inventory | undefined;
  try {
    inventory = await readInventory(core, options);
  } catch (error) {
    checks.push({ name: 'objects', status: 'fail', detail: `cannot list Namespaces, ServiceAccounts and managed Secrets: ${describeKubeError(error)}` });
  }
  const served = inventory === undefined ? [] : resolveAll(inventory, settings, options, now);
  const keyless = served.some(({ grants }) => grants.some((grant) => grant.identity.mode === 'service-account'));

  const [rbac, aws, ecr] = await Promise.all([
    checkPermissions(config, options, keyless),
    checkAwsIdentity(deps.aws ?? sdkAwsApi({ requestTimeoutMs: options.awsTimeoutMs }), served, inventory?.serviceAccounts.get(options.namespace) ?? []),
    checkRegistries(deps.aws ?? sdkAwsApi({ requestTimeoutMs: options.awsTimeoutMs }), served, settings, clock, options.awsRetries),
  ]);
  checks.push(...rbac, aws, ...ecr);

  if (inventory === undefined) return done();
  const events = await readEvents(core);
  if (!events.ok) checks.push({ name: 'events', status: 'warn', detail: `cannot list Events, so no last errors are shown: ${events.error}` });
  const objects = await Promise.all(served.flatMap((entry) => reportObjects(entry, inventory, events.ok ? events.value : [], settings, now, core)));
  checks.push(...summarizeObjects(objects, policyKnown, policyUnknown));
  const isolation = checkRegistryIsolation(settings, served, inventory);
  if (isolation !== undefined) checks.push(isolation);
  checks.push(await checkPods(core, served));
  return done(objects);
}

/**
 * A rule's registries limit which hosts a Secret names, not what its token opens: an ECR token is
 * valid for every registry its identity can reach. Namespaces under rules with different registries
 * served by one identity (the controller's own, or one role, whatever its sessions) are not kept apart.
 */
function checkRegistryIsolation(settings: Settings, served: readonly Served[], inventory: Inventory): Check | undefined {
  if (!settings.rules.some((rule) => rule.registries !== undefined)) return undefined;
  const labels = new Map(inventory.namespaces.map((namespace) => [nameOf(namespace), namespace.metadata?.labels ?? {}]));
  const byIdentity = new Map<string, { who: string; oneToken: boolean; rules: Map<string, string> }>();
  for (const { namespace, grants } of served) {
    const rule = settings.rules.find((candidate) => namespaceMatches(candidate, { name: namespace, labels: labels.get(namespace) ?? {} }));
    if (rule === undefined) continue;
    for (const { source, identity } of grants) {
      // The command line's static target is the operator's, under no rule.
      if (source.kind === 'Target') continue;
      const key = identity.mode === 'controller' ? '' : identity.roleArn;
      const entry = byIdentity.get(key) ?? {
        who: key === '' ? "the controller's own identity" : `role ${key}`,
        oneToken: true,
        rules: new Map<string, string>(),
      };
      entry.oneToken &&= identity.mode === 'controller' || (identity.mode === 'assume-role' && identity.sessionName === sharedSessionName);
      entry.rules.set(rule.name, registriesOf(rule));
      byIdentity.set(key, entry);
    }
  }
  const shared = [...byIdentity.values()].filter((entry) => new Set(entry.rules.values()).size > 1);
  if (shared.length === 0) return undefined;
  const described = shared.map((entry) => {
    const rules = [...entry.rules].sort(([a], [b]) => a.localeCompare(b)).map(([name, registries]) => `${name} (${registries})`);
    return `${entry.who}${entry.oneToken ? ' (one token for all)' : ''} serves namespaces under rules with different registries: ${rules.join(', ')}`;
  });
  return {
    name: 'policy registries',
    status: 'warn',
    detail: `rules restrict registries, but an ECR token is valid for every registry its identity can reach: ${described.join('; ')}. Give each tenant its own role to keep them apart`,
  };
}

function registriesOf(rule: Rule): string {
  return rule.registries === undefined ? 'any registry' : rule.registries.map((pattern) => `${pattern.account}/${pattern.region}`).join(' or ');
}

/** How many Pods' names the pods check prints. */
const podsShown = 5;

/**
 * Pods created before their ServiceAccount listed our Secret (without admission, a Pod applied with
 * its annotated Namespace can be) never get it: spec.imagePullSecrets is fixed at creation.
 */
async function checkPods(core: CoreV1Api, served: readonly Served[]): Promise<Check> {
  const wanting = served.filter((entry) => entry.grants.length > 0);
  if (wanting.length === 0) return { name: 'pods', status: 'skip', detail: 'no namespace has credentials to carry' };
  const lacking: string[] = [];
  let looked = 0;
  try {
    for (const entry of wanting) {
      const pods = await core.listNamespacedPod({ namespace: entry.namespace });
      for (const pod of pods.items) {
        if (pod.metadata?.deletionTimestamp !== undefined) continue;
        looked++;
        const listed = new Set((pod.spec?.imagePullSecrets ?? []).map((ref) => ref.name));
        const missing = pullSecretsFor(entry.grants, pod.spec?.serviceAccountName ?? 'default').filter((secret) => !listed.has(secret));
        if (missing.length > 0) lacking.push(`${entry.namespace}/${nameOf(pod)} (${missing.join(', ')})`);
      }
    }
  } catch (error) {
    return {
      name: 'pods',
      status: 'warn',
      detail: `cannot list Pods, so Pods created without their pull Secret are not found: ${describeKubeError(error)} (the controller's own RBAC does not include Pods; run the doctor as a user who may list them)`,
    };
  }
  if (lacking.length === 0) return { name: 'pods', status: 'ok', detail: `all ${looked} Pods of served ServiceAccounts list their pull Secret` };
  const shown = lacking.slice(0, podsShown).join(', ') + (lacking.length > podsShown ? `, and ${lacking.length - podsShown} more` : '');
  return {
    name: 'pods',
    status: 'warn',
    detail: `${lacking.length === 1 ? '1 Pod was created before its ServiceAccount' : `${lacking.length} Pods were created before their ServiceAccounts`} listed the pull Secret and will never get it: ${shown}. Delete them (their controller makes new ones, which get it), and add the admission-policy or admission-webhook component so that it does not happen again`,
  };
}

interface Inventory {
  readonly namespaces: readonly V1Namespace[];
  readonly serviceAccounts: ReadonlyMap<string, V1ServiceAccount[]>;
  readonly secrets: ReadonlyMap<string, V1Secret[]>;
}

async function readInventory(core: CoreV1Api, options: Options): Promise<Inventory> {
  const selector = options.namespaceSelector;
  const [namespaces, serviceAccounts, secrets] = await Promise.all([
    core.listNamespace(selector !== undefined ? { labelSelector: selector } : {}),
    core.listServiceAccountForAllNamespaces(),
    core.listSecretForAllNamespaces({ labelSelector: managedSelector }),
  ]);
  return {
    namespaces: [...namespaces.items].sort((a, b) => nameOf(a).localeCompare(nameOf(b))),
    serviceAccounts: byNamespace(serviceAccounts.items),
    secrets: byNamespace(secrets.items),
  };
}

function byNamespace<T extends { metadata?: { namespace?: string } }>(items: readonly T[]): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const namespace = item.metadata?.namespace ?? '';
    map.set(namespace, [...(map.get(namespace) ?? []), item]);
  }
  return map;
}

interface Served {
  readonly namespace: string;
  readonly grants: readonly Grant[];
  readonly problems: readonly { readonly ref: ObjectRef; readonly reason: ProblemReason; readonly message: string }[];
  readonly annotated: readonly ObjectRef[];
}

/** Each namespace's grants and problems, computed as the reconciler computes them. */
function resolveAll(inventory: Inventory, settings: Settings, options: Options, now: number): Served[] {
  return inventory.namespaces.flatMap((namespace) => {
    const name = nameOf(namespace);
    const target = options.target?.namespace === name ? options.target : undefined;
    const intents = resolveIntents({
      namespace,
      serviceAccounts: inventory.serviceAccounts.get(name) ?? [],
      secrets: inventory.secrets.get(name) ?? [],
      settings,
      now,
      ...(target !== undefined ? { target } : {}),
      // The doctor says at once what is missing; the controller gives new Namespaces a moment.
      pendingGraceMs: 0,
    });
    if (intents.grants.length === 0 && intents.problems.length === 0) return [];
    return [{ namespace: name, grants: intents.grants, problems: intents.problems, annotated: intents.annotated }];
  });
}

async function checkPermissions(config: KubeConfig, options: Options, keyless: boolean): Promise<Check[]> {
  const authorization = config.makeApiClient(AuthorizationV1Api);
  const webhook =
    options.webhook === undefined
      ? undefined
      : { secret: options.webhook.secret, ...(options.webhook.certs === 'self-signed' ? { configuration: options.webhook.configuration } : {}) };
  const permissions = requiredPermissions(
    options.namespace,
    { configMap: options.configMap, lease: options.leaseName, status: options.statusConfigMap },
    options.admissionParams,
    webhook,
  );
  const results = await Promise.all(
    permissions.map(async (permission): Promise<{ permission: Permission; allowed: boolean; error?: string }> => {
      try {
        const review = await authorization.createSelfSubjectAccessReview({
          body: {
            spec: {
              resourceAttributes: {
                verb: permission.verb,
                group: permission.group,
                resource: permission.resource,
                ...(permission.subresource !== undefined ? { subresource: permission.subresource } : {}),
                ...(permission.namespace !== undefined ? { namespace: permission.namespace } : {}),
                ...(permission.name !== undefined ? { name: permission.name } : {}),
              },
            },
          },
        });
        return { permission, allowed: review.status?.allowed === true };
      } catch (error) {
        return { permission, allowed: false, error: describeKubeError(error) };
      }
    }),
  );
  const required = (permission: Permission): boolean =>
    permission.need === 'always' ||
    permission.need === 'admission-params' ||
    permission.need === 'webhook' ||
    (permission.need === 'leader-election' && options.leaderElect) ||
    (permission.need === 'keyless-tenants' && keyless);
  const denied = (filter: (permission: Permission) => boolean): string[] =>
    results
      .filter((result) => !result.allowed && filter(result.permission))
      .map((result) => `${describePermission(result.permission)}${result.error !== undefined ? ` (${result.error})` : ''}`);

  const checks: Check[] = [];
  const missing = denied(required);
  const needed = results.filter((result) => required(result.permission)).length;
  checks.push(
    missing.length === 0
      ? { name: 'rbac', status: 'ok', detail: `all ${needed} permissions the controller needs are granted` }
      : { name: 'rbac', status: 'fail', detail: `denied: ${missing.join('; ')}` },
  );
  const lease = denied((permission) => permission.need === 'leader-election' && !options.leaderElect);
  if (lease.length > 0) {
    checks.push({ name: 'rbac leader election', status: 'warn', detail: `needed with --leader-elect, denied: ${lease.join('; ')}` });
  }
  const token = denied((permission) => permission.need === 'keyless-tenants' && !keyless);
  if (token.length > 0) {
    checks.push({
      name: 'rbac keyless tenants',
      status: 'warn',
      detail: `needed only for ecr-login/identity: service-account (the keyless-tenants component), denied: ${token.join('; ')}`,
    });
  }
  return checks;
}

function awsRegion(served: readonly Served[]): string {
  const first = served.flatMap((entry) => entry.grants.flatMap((grant) => grant.registries.map((r) => tokenEndpoint(r).region)))[0];
  return homeRegion() ?? first ?? 'us-east-1';
}

/**
 * The AWS identity this process has (run it in the controller's Pod to check the controller's), and
 * whether the install gave the controller none (src/aws/identity-problem.ts): the placeholder role in
 * AWS_ROLE_ARN, or no credentials at all, fail; the placeholder on a ServiceAccount of the controller's
 * namespace is a warning when this process has an identity of its own (it may run elsewhere, and static
 * keys in the controller's Pod would come before the role).
 */
async function checkAwsIdentity(aws: AwsApi, served: readonly Served[], ownServiceAccounts: readonly V1ServiceAccount[]): Promise<Check> {
  const placeholder = identityProblemFromEnv(process.env);
  if (placeholder !== undefined) return { name: 'aws identity', status: 'fail', detail: placeholder };
  try {
    const identity = await aws.getCallerIdentity(awsRegion(served));
    const named = ownServiceAccounts
      .map((sa) => identityProblemFromServiceAccount(`${sa.metadata?.namespace ?? ''}/${sa.metadata?.name ?? ''}`, sa.metadata?.annotations))
      .find((problem) => problem !== undefined);
    if (named !== undefined) return { name: 'aws identity', status: 'warn', detail: `${named} (this doctor runs as ${identity.arn})` };
    return { name: 'aws identity', status: 'ok', detail: `${identity.arn} (account ${identity.account})` };
  } catch (error) {
    return { name: 'aws identity', status: 'fail', detail: identityProblemFromError(error) ?? `sts:GetCallerIdentity failed: ${describeAwsError(error)}` };
  }
}

/**
 * One GetAuthorizationToken per token endpoint (ECR in a region, its FIPS or dual-stack endpoint, or
 * ECR Public) and identity in use (roles once per role, not per session).
 */
async function checkRegistries(aws: AwsApi, served: readonly Served[], settings: Settings, clock: Clock, retries: number): Promise<Check[]> {
  const probes = new Map<string, { endpoint: EcrEndpoint; identity: TokenIdentity; users: number }>();
  const keyless = new Map<string, number>();
  for (const { grants } of served) {
    for (const grant of grants) {
      for (const endpoint of tokenEndpoints(grant.registries).values()) {
        const where = endpointKey(endpoint.service, endpoint);
        if (grant.identity.mode === 'service-account') {
          // Exchanging a tenant's ServiceAccount token would need a TokenRequest (a write), and act as the tenant.
          keyless.set(describeEndpoint(endpoint), (keyless.get(describeEndpoint(endpoint)) ?? 0) + 1);
          continue;
        }
        const key = grant.identity.mode === 'controller' ? `controller|${where}` : `${grant.identity.roleArn}|${where}`;
        const probe = probes.get(key);
        probes.set(key, { endpoint, identity: probe?.identity ?? grant.identity, users: (probe?.users ?? 0) + 1 });
      }
    }
  }
  if (probes.size === 0 && keyless.size === 0) {
    return [{ name: 'ecr', status: 'skip', detail: 'no annotated object asks for a registry yet' }];
  }
  const broker = new TokenBroker({
    aws,
    clock,
    settings: () => settings,
    retries,
    serviceAccountTokens: { mint: () => Promise.reject(new Error('the doctor does not request ServiceAccount tokens')) },
  });
  const roleOf = (identity: TokenIdentity): string => (identity.mode === 'controller' ? '' : identity.roleArn);
  const sorted = [...probes.values()]
    .map((probe) => ({ ...probe, where: describeEndpoint(probe.endpoint) }))
    .sort((a, b) => a.where.localeCompare(b.where) || roleOf(a.identity).localeCompare(roleOf(b.identity)));
  const checks = await inPool(sorted, 8, async ({ endpoint, where, identity, users }): Promise<Check> => {
    const name = identity.mode === 'controller' ? where : `${where} as ${identity.roleArn.slice(identity.roleArn.indexOf(':role/') + 1)}`;
    const used = `${users} Secret${users === 1 ? '' : 's'}`;
    const api = endpoint.service === 'ecr-public' ? 'ecr-public:GetAuthorizationToken' : 'GetAuthorizationToken';
    try {
      const token = await broker.token(identity, endpoint);
      const until = token.expiresAt !== undefined ? `, valid until ${new Date(token.expiresAt).toISOString()}` : '';
      return { name, status: 'ok', detail: `${api} as ${describeIdentity(identity)} for ${used}${until}` };
    } catch (error) {
      const message = error instanceof TokenError ? error.message : describeAwsError(error);
      return { name, status: 'fail', detail: `as ${describeIdentity(identity)} for ${used}: ${message}` };
    }
  });
  for (const [where, users] of [...keyless].sort(([a], [b]) => a.localeCompare(b))) {
    checks.push({
      name: `${where} web identity`,
      status: 'skip',
      detail: `${users} Secret${users === 1 ? '' : 's'} use a tenant's ServiceAccount web identity: not exchanged by the doctor; see their Events`,
    });
  }
  return checks;
}

/** A check's name for a token endpoint: `ecr us-east-1`, `ecr us-gov-west-1 fips`, `ecr eu-west-1 dual-stack`, `ecr-public`. */
function describeEndpoint(endpoint: EcrEndpoint): string {
  const variant = `${endpoint.fips ? ' fips' : ''}${endpoint.dualStack ? ' dual-stack' : ''}`;
  return endpoint.service === 'ecr-public' ? `ecr-public${variant}` : `ecr ${endpoint.region}${variant}`;
}

/** kube-ecrlogin's Warning Events, in every namespace, newest first. */
async function readEvents(core: CoreV1Api): Promise<Result<readonly CoreV1Event[]>> {
  try {
    const list = await core.listEventForAllNamespaces({ fieldSelector: 'type=Warning,source=kube-ecrlogin' });
    return { ok: true, value: [...list.items].sort((a, b) => eventTime(b) - eventTime(a)) };
  } catch (error) {
    return { ok: false, error: describeKubeError(error) };
  }
}

function eventTime(event: CoreV1Event): number {
  const time = event.lastTimestamp ?? event.eventTime ?? event.metadata.creationTimestamp;
  return time === undefined ? 0 : new Date(time).getTime();
}

function lastErrorAbout(events: readonly CoreV1Event[], ref: ObjectRef): string | undefined {
  if (ref.kind === 'Namespace') {
    // Said in full in the namespace, on its default ServiceAccount (see EventRecorder.emit).
    const prefix = `Namespace ${ref.name}: `;
    const event = events.find(
      (e) =>
        e.involvedObject.kind === 'ServiceAccount' &&
        e.involvedObject.name === 'default' &&
        e.involvedObject.namespace === ref.name &&
        e.message?.startsWith(prefix) === true,
    );
    return event === undefined ? undefined : `${event.reason ?? 'Warning'}: ${(event.message ?? '').slice(prefix.length)}`;
  }
  const event = events.find((e) => e.involvedObject.kind === ref.kind && e.involvedObject.name === ref.name && e.involvedObject.namespace === ref.namespace);
  return event === undefined ? undefined : `${event.reason ?? 'Warning'}: ${event.message ?? ''}`;
}

const problemStatus: Record<ProblemReason, ObjectStatus> = {
  InvalidAnnotation: 'invalid annotation',
  UnknownAnnotation: 'unknown annotation',
  ServiceAccountPending: 'pending',
  PolicyDenied: 'policy denied',
  SecretConflict: 'conflict',
  ServiceAccountMissing: 'missing',
};

const sameRef = (a: ObjectRef, b: ObjectRef): boolean => a.kind === b.kind && a.name === b.name && a.namespace === b.namespace;

function reportObjects(
  entry: Served,
  inventory: Inventory,
  events: readonly CoreV1Event[],
  settings: Settings,
  now: number,
  core: CoreV1Api,
): Promise<ObjectReport>[] {
  const { namespace } = entry;
  // The command line's static target first (it has no annotation), then every annotated object: a row
  // per Secret it is granted (argocd-repository grants one per registry), or one row saying why none.
  type Row = { ref: ObjectRef; grant: Grant | undefined };
  const rows: Row[] = [
    ...entry.grants.filter((grant) => grant.source.kind === 'Target').map((grant) => ({ ref: grant.ref, grant })),
    ...entry.annotated.flatMap((ref): Row[] => {
      const grants = entry.grants.filter((g) => g.source.kind !== 'Target' && sameRef(g.ref, ref));
      return grants.length > 0 ? grants.map((grant) => ({ ref, grant })) : [{ ref, grant: undefined }];
    }),
  ];
  return rows.map(async (row): Promise<ObjectReport> => {
    const report = await reportObject(row);
    // Served, yet something to say: a key that is none of ours, a ServiceAccount still to come.
    const note = entry.problems.find((p) => sameRef(p.ref, row.ref) && (p.reason === 'UnknownAnnotation' || p.reason === 'ServiceAccountPending'));
    return report.status === 'ok' && note !== undefined ? { ...report, status: problemStatus[note.reason], detail: note.message } : report;
  });

  async function reportObject({ ref, grant }: Row): Promise<ObjectReport> {
    const object =
      grant !== undefined ? describeSource(grant.source) : ref.kind === 'Namespace' ? `Namespace/${ref.name}` : `ServiceAccount/${namespace}/${ref.name}`;
    const lastError = lastErrorAbout(events, ref);
    const base = { object, namespace, ...(lastError !== undefined ? { lastError } : {}) };
    const notes: readonly ProblemReason[] = ['UnknownAnnotation', 'ServiceAccountPending'];
    const problem = entry.problems.find((p) => sameRef(p.ref, ref) && !notes.includes(p.reason)) ?? entry.problems.find((p) => sameRef(p.ref, ref));
    if (grant === undefined) {
      return {
        ...base,
        status: problem !== undefined ? problemStatus[problem.reason] : 'missing',
        ...(problem !== undefined ? { detail: problem.message } : {}),
      };
    }
    const secret = (inventory.secrets.get(namespace) ?? []).find((s) => nameOf(s) === grant.secretName);
    const named = { ...base, secret: grant.secretName };
    if (secret === undefined) {
      // Our cache holds labelled Secrets only: a live read tells a foreign Secret of that name from none.
      let live: V1Secret | undefined;
      try {
        live = (await core.listNamespacedSecret({ namespace, fieldSelector: `metadata.name=${grant.secretName}` })).items[0];
      } catch (error) {
        if (!(error instanceof ApiException && error.code === 404)) {
          return { ...named, status: 'missing', detail: `cannot read Secret: ${describeKubeError(error)}` };
        }
      }
      if (live !== undefined && !isManaged(live)) {
        return { ...named, status: 'conflict', detail: `Secret ${grant.secretName} exists and is not managed by kube-ecrlogin` };
      }
      return { ...named, status: 'missing', detail: `Secret ${grant.secretName} does not exist yet` };
    }
    const read = readSecretState(secret);
    if (!read.ok) return { ...named, status: 'missing', detail: `Secret ${grant.secretName} cannot be used: ${read.error}` };
    const state = read.value;
    if (state.expiresAt === undefined) return { ...named, status: 'ok', detail: 'the token did not say when it expires' };
    const expiresAt = new Date(state.expiresAt).toISOString();
    const left = state.expiresAt - now;
    if (left <= 0) return { ...named, expiresAt, status: 'expired', detail: `expired ${formatDuration(-left)} ago` };
    // Expiring: due for refresh (within the refresh margin) with less than an hour left.
    const lifetime = state.expiresAt - state.issuedAt;
    const margin = refreshMargin(lifetime, settings.refresh);
    if (left < Math.min(3_600_000, margin)) {
      return { ...named, expiresAt, status: 'expiring', detail: `expires in ${formatDuration(left)} and is overdue for refresh` };
    }
    return { ...named, expiresAt, status: 'ok' };
  }
}

/**
 * Expired or missing credentials fail; what tenants must fix (and soon-expiring ones) warn. With an
 * invalid ConfigMap the policy in force is unknown (the controller keeps its last good one), so a
 * missing Secret may be one that policy denies: it warns instead.
 */
function summarizeObjects(objects: readonly ObjectReport[], policyKnown: boolean, policyUnknown: string): Check[] {
  if (objects.length === 0) return [{ name: 'credentials', status: 'ok', detail: 'no annotated objects' }];
  // An object with several Secrets (argocd-repository: one per registry) has a row for each: name the Secret.
  const rowsOf = new Map<string, number>();
  for (const row of objects) rowsOf.set(row.object, (rowsOf.get(row.object) ?? 0) + 1);
  const rowName = (row: ObjectReport): string =>
    (rowsOf.get(row.object) ?? 0) > 1 && row.secret !== undefined ? `${row.object} Secret ${row.secret}` : row.object;
  const list = (rows: readonly ObjectReport[]): string => rows.map((row) => `${rowName(row)} (${row.status})`).join(', ');
  const missing = objects.filter((row) => row.status === 'missing' && row.secret !== undefined);
  const broken = objects.filter((row) => row.status === 'expired' || (policyKnown && missing.includes(row)));
  const unsure = policyKnown ? [] : missing;
  const tenant = objects.filter(
    (row) =>
      ['invalid annotation', 'unknown annotation', 'pending', 'policy denied', 'conflict'].includes(row.status) ||
      (row.status === 'missing' && row.secret === undefined),
  );
  const expiring = objects.filter((row) => row.status === 'expiring');
  const checks: Check[] = [];
  // Objects, not rows: an object is served when every one of its Secrets is.
  const unserved = new Set([...tenant, ...broken, ...unsure].map((row) => row.object));
  const servedCount = rowsOf.size - unserved.size;
  checks.push(
    broken.length === 0
      ? { name: 'credentials', status: 'ok', detail: `${servedCount} of ${rowsOf.size} annotated objects served` }
      : { name: 'credentials', status: 'fail', detail: `${broken.length} without usable credentials: ${list(broken)}` },
  );
  if (unsure.length > 0) {
    checks.push({
      name: 'credentials unknown',
      status: 'warn',
      detail: `no Secret, perhaps denied by the policy in force (${policyUnknown}): ${list(unsure)}`,
    });
  }
  if (expiring.length > 0) checks.push({ name: 'credentials expiring', status: 'warn', detail: list(expiring) });
  if (tenant.length > 0) checks.push({ name: 'annotations', status: 'warn', detail: `${tenant.length} cannot be served as annotated: ${list(tenant)}` });
  return checks;
}

const statusMark: Record<CheckStatus, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

/** The report as two tables and a verdict. */
export function formatReport(report: DoctorReport, now: number): string {
  const lines: string[] = [];
  lines.push(
    ...table(
      ['CHECK', 'RESULT', 'DETAIL'],
      report.checks.map((check) => [check.name, statusMark[check.status], check.detail]),
    ),
  );
  lines.push('');
  if (report.objects.length === 0) {
    lines.push('No annotated Namespaces or ServiceAccounts.');
  } else {
    lines.push(
      ...table(
        ['OBJECT', 'SECRET', 'EXPIRES', 'STATUS', 'LAST ERROR'],
        report.objects.map((row) => [
          row.object,
          row.secret ?? '-',
          row.expiresAt === undefined ? '-' : `${row.expiresAt.replace(/\.\d{3}Z$/, 'Z')} (${relative(Date.parse(row.expiresAt) - now)})`,
          row.status,
          shorten(row.lastError ?? (row.status === 'ok' ? '' : (row.detail ?? '')), 120),
        ]),
      ),
    );
  }
  lines.push('');
  lines.push(
    report.healthy ? 'healthy' : `unhealthy: ${report.failing.length} failing check${report.failing.length === 1 ? '' : 's'}: ${report.failing.join(', ')}`,
  );
  return `${lines.join('\n')}\n`;
}

function relative(ms: number): string {
  return ms >= 0 ? `in ${formatDuration(ms)}` : `${formatDuration(-ms)} ago`;
}

function shorten(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const format = (row: readonly string[]): string =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [format(header), ...rows.map(format)];
}
