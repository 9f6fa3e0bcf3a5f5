// The doctor's checks of the running controller, beside what the cluster's objects say: its
// Deployment and Pods, the Lease and who holds it, and the status the leader publishes (src/status.ts):
// its version against this doctor's, the config it has in force (which can differ from the ConfigMap:
// an invalid or deleted one leaves the last good one in force), and the namespaces whose last
// reconcile failed. What it may not read with the rights it runs with, it says, and goes on.

import { ApiException, AppsV1Api, CoordinationV1Api, CoreV1Api, type KubeConfig, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { formatDuration } from './config/duration.ts';
import type { Options } from './config/options.ts';
import { configHash, configKey, type ConfigInForce } from './config/source.ts';
import type { Check } from './check.ts';
import { describeKubeError } from './kube/api.ts';
import type { Result } from './result.ts';
import { readStatus, type ControllerStatus } from './status.ts';

/** The labels the manifests give the controller's Deployment (kustomize/base). */
export const deploymentSelector = 'app.kubernetes.io/name=kube-ecrlogin';

/** A Pod restarted this recently is worth a warning (an OOM kill, a crash). */
const recentRestartMs = 3_600_000;

function forbidden(error: unknown): boolean {
  return error instanceof ApiException && error.code === 403;
}

function notFound(error: unknown): boolean {
  return error instanceof ApiException && error.code === 404;
}

function ago(now: number, time: Date | string | undefined): string {
  if (time === undefined) return 'at an unknown time';
  const ms = now - new Date(time).getTime();
  return ms >= 0 ? `${formatDuration(ms)} ago` : `in ${formatDuration(-ms)}`;
}

/** The controller's Deployment (by the manifests' label) and its Pods: ready, restarts, why not. */
export async function checkDeployment(config: KubeConfig, options: Options, now: number): Promise<Check> {
  const name = 'controller';
  const namespace = options.namespace;
  let deployments: V1Deployment[];
  try {
    deployments = (await config.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace, labelSelector: deploymentSelector })).items;
  } catch (error) {
    return {
      name,
      status: 'warn',
      detail: `cannot list Deployments in namespace ${namespace}, so its Deployment and Pods are not checked: ${describeKubeError(error)}${
        forbidden(error) ? " (the controller's own RBAC has no Deployments or Pods: run the doctor as a user who may read them)" : ''
      }`,
    };
  }
  if (deployments.length === 0) {
    return {
      name,
      status: 'skip',
      detail: `no Deployment labelled ${deploymentSelector} in namespace ${namespace} (a CronJob install, or a controller run elsewhere)`,
    };
  }
  const core = config.makeApiClient(CoreV1Api);
  const parts: string[] = [];
  let status: Check['status'] = 'ok';
  const worse = (next: Check['status']): void => {
    if (next === 'fail' || (next === 'warn' && status === 'ok')) status = next;
  };
  for (const deployment of deployments) {
    const desired = deployment.spec?.replicas ?? 1;
    const ready = deployment.status?.readyReplicas ?? 0;
    const label = `Deployment ${deployment.metadata?.name ?? '?'}`;
    if (desired === 0) {
      worse('fail');
      parts.push(`${label} is scaled to 0: no controller runs`);
      continue;
    }
    worse(ready === 0 ? 'fail' : ready < desired ? 'warn' : 'ok');
    const pods = await listPods(core, namespace, deployment);
    parts.push(`${label}: ${ready} of ${desired} ready${pods.ok ? '' : ` (cannot list its Pods: ${pods.error})`}`);
    if (!pods.ok) continue;
    for (const pod of pods.value) {
      const described = describePod(pod, now);
      if (described.recentRestart) worse('warn');
      parts.push(described.text);
    }
  }
  return { name, status, detail: parts.join('; ') };
}

async function listPods(core: CoreV1Api, namespace: string, deployment: V1Deployment): Promise<Result<V1Pod[]>> {
  const labels = deployment.spec?.selector.matchLabels ?? {};
  const labelSelector = Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
  try {
    const pods = (await core.listNamespacedPod({ namespace, labelSelector })).items;
    return { ok: true, value: pods.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '')) };
  } catch (error) {
    return { ok: false, error: describeKubeError(error) };
  }
}

/** "Pod x: Running, ready, restarted 2 times (last OOMKilled 5m ago)" and the like. */
function describePod(pod: V1Pod, now: number): { text: string; recentRestart: boolean } {
  const containers = pod.status?.containerStatuses ?? [];
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const waiting = containers.map((c) => c.state?.waiting?.reason).find((reason) => reason !== undefined);
  const restarts = containers.reduce((sum, c) => sum + c.restartCount, 0);
  const last = containers.map((c) => c.lastState?.terminated).find((terminated) => terminated !== undefined);
  const words = [pod.status?.phase ?? 'Unknown', ready ? 'ready' : 'not ready'];
  if (waiting !== undefined) words.push(waiting);
  if (scheduled?.status === 'False') words.push(`not scheduled: ${scheduled.reason ?? ''} ${scheduled.message ?? ''}`.trim());
  let recentRestart = false;
  if (restarts > 0) {
    const finished = last?.finishedAt;
    recentRestart = finished !== undefined && now - new Date(finished).getTime() < recentRestartMs;
    const why = last === undefined ? '' : ` (last ${last.reason ?? `exit code ${last.exitCode}`} ${ago(now, finished)})`;
    words.push(`restarted ${restarts} time${restarts === 1 ? '' : 's'}${why}`);
  }
  return { text: `Pod ${pod.metadata?.name ?? '?'} ${words.join(', ')}`, recentRestart };
}

/**
 * The Lease (--lease-name): who holds it, since when, and whether it is renewed. No check when there
 * is no Lease and nothing says the controller elects a leader.
 */
export async function checkLease(
  config: KubeConfig,
  options: Options,
  status: ControllerStatus | undefined,
  now: number,
): Promise<{ readonly check?: Check; readonly holder?: string }> {
  const judged = (check: Check | undefined, holder?: string): { check?: Check; holder?: string } => ({
    ...(check !== undefined ? { check } : {}),
    ...(holder !== undefined ? { holder } : {}),
  });
  const name = 'controller lease';
  const where = `Lease ${options.namespace}/${options.leaseName}`;
  const elected = options.leaderElect || status?.leaderElection === true;
  let lease;
  try {
    lease = await config.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: options.namespace, name: options.leaseName });
  } catch (error) {
    if (notFound(error)) {
      return judged(elected ? { name, status: 'fail', detail: `${where} does not exist: no replica has led yet (see the controller's log)` } : undefined);
    }
    return judged({ name, status: 'warn', detail: `cannot read ${where}: ${describeKubeError(error)}` });
  }
  const spec = lease.spec ?? {};
  const holder = spec.holderIdentity ?? '';
  const durationMs = (spec.leaseDurationSeconds ?? 15) * 1000;
  const renewed = spec.renewTime === undefined ? undefined : new Date(spec.renewTime).getTime();
  const silentMs = renewed === undefined ? Infinity : now - renewed;
  const transitions = spec.leaseTransitions ?? 0;
  const history = `${transitions} transition${transitions === 1 ? '' : 's'}`;
  if (holder === '') {
    // Released on a clean shutdown: a standby takes it within a retry period.
    const recent = silentMs < durationMs + 5_000;
    return judged(
      {
        name,
        status: recent ? 'warn' : elected ? 'fail' : 'skip',
        detail: `${where} was released ${ago(now, spec.renewTime)} and nobody holds it${recent ? ' (a standby takes it within seconds)' : ': no replica leads'}; ${history}`,
      },
      holder,
    );
  }
  // Judged on this machine's clock against the holder's: a little slack for skew.
  if (silentMs > durationMs + 5_000) {
    return judged(
      {
        name,
        status: 'fail',
        detail: `${where} is held by ${holder} but was last renewed ${ago(now, spec.renewTime)} (it lasts ${formatDuration(durationMs)}): no replica leads; ${history}`,
      },
      holder,
    );
  }
  return judged(
    {
      name,
      status: 'ok',
      detail: `${where} is held by ${holder}, leading since ${ago(now, spec.acquireTime)}, renewed ${ago(now, spec.renewTime)}; ${history}`,
    },
    holder,
  );
}

/** The status the leader publishes (--status-config-map), or a check saying why there is none to read. */
export async function readControllerStatus(config: KubeConfig, options: Options): Promise<Result<ControllerStatus, Check>> {
  const name = 'controller status';
  const where = `ConfigMap ${options.namespace}/${options.statusConfigMap}`;
  try {
    const configMap = await config.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: options.namespace, name: options.statusConfigMap });
    const status = readStatus(configMap);
    if (!status.ok) return { ok: false, error: { name, status: 'warn', detail: `${where} holds no status: ${status.error}` } };
    return status;
  } catch (error) {
    const detail = notFound(error)
      ? `no status in ${where}: the controller is not running, has not led yet, is older than this doctor, or may not write it (see its log); its version, config in force and errors are unknown`
      : `cannot read ${where}, so the controller's version, config in force and errors are unknown: ${describeKubeError(error)}${
          forbidden(error) ? ` (the base Role grants get on it)` : ''
        }`;
    return { ok: false, error: { name, status: 'warn', detail } };
  }
}

/** Version (against this doctor's), who wrote the status and when; then the namespaces that fail. */
export function checkStatus(status: ControllerStatus, doctorVersion: string, holder: string | undefined, now: number): Check[] {
  const written = `written by ${status.instance} ${ago(now, status.updatedAt)} (written when it changes)`;
  const stale = holder !== undefined && holder !== '' && holder !== status.instance ? `; the Lease is held by ${holder}, which has not written it yet` : '';
  const checks: Check[] = [
    status.version === doctorVersion
      ? { name: 'controller status', status: 'ok', detail: `version ${status.version}, as this doctor; ${written}${stale}` }
      : {
          name: 'controller status',
          status: 'warn',
          detail: `the controller runs version ${status.version}, this doctor is ${doctorVersion}: each checks what its own version does, so run the doctor of the controller's version (kubectl exec into its Pod); ${written}${stale}`,
        },
  ];
  const { failing, unhealthy } = status.namespaces;
  const served = unhealthy > 0 ? `; ${unhealthy} namespace${unhealthy === 1 ? ' has' : 's have'} annotations that cannot be served (see below)` : '';
  if (failing === 0) {
    checks.push({ name: 'controller errors', status: 'ok', detail: `no namespace's last reconcile failed${served}` });
  } else {
    const listed = status.errors.map((error) => `${error.namespace} (since ${ago(now, error.since)}: ${error.reason})`);
    const more = failing > status.errors.length ? `, and ${failing - status.errors.length} more` : '';
    checks.push({
      name: 'controller errors',
      status: 'warn',
      detail: `the last reconcile of ${failing} namespace${failing === 1 ? '' : 's'} failed, retried with backoff: ${listed.join('; ')}${more}${served}`,
    });
  }
  return checks;
}

/** The policy ConfigMap as the doctor read it now. */
export interface ConfigMapNow {
  readonly present: boolean;
  /** Valid as the controller would take it on a change (not under --require-policy's start rules). */
  readonly valid: boolean;
  /** configHash of its config.yaml, when it has one. */
  readonly hash?: string;
}

export function configMapNow(configMap: { data?: Record<string, string> } | undefined, valid: boolean): ConfigMapNow {
  const text = configMap?.data?.[configKey];
  return { present: configMap !== undefined, valid, ...(text !== undefined ? { hash: configHash(text) } : {}) };
}

/**
 * What the running controller has in force, against the ConfigMap now. Returns the check and
 * whether the two agree (if not, the doctor's view of the policy is not the one in force).
 */
export function checkConfigInForce(
  inForce: ConfigInForce,
  now: ConfigMapNow,
  options: Pick<Options, 'namespace' | 'configMap' | 'requirePolicy'>,
): { check: Check; agrees: boolean } {
  const name = 'config in force';
  const requirePolicy = options.requirePolicy;
  const read = `${options.namespace}/${options.configMap}`;
  if (inForce.configMap !== read) {
    return {
      check: {
        name,
        status: 'warn',
        detail: `the controller reads ConfigMap ${inForce.configMap}, not ${read}: give the doctor the controller's --config-map`,
      },
      agrees: false,
    };
  }
  const runs = (c: ConfigInForce): string =>
    c.source === 'configmap'
      ? `the config.yaml of ConfigMap ${c.configMap} at resourceVersion ${c.resourceVersion ?? '?'} (hash ${c.hash ?? '?'})`
      : c.source === 'defaults'
        ? 'the defaults (no ConfigMap at its start: no rules, everything allowed)'
        : `no policy: ${c.denyAll ?? 'every request is denied'}`;
  const afterRestart = requirePolicy ? 'every request is denied (--require-policy)' : 'the defaults apply (no rules)';
  if (inForce.source === 'no-policy') {
    return { check: { name, status: 'fail', detail: `the controller denies every request: ${inForce.denyAll ?? 'no policy in force'}` }, agrees: !now.valid };
  }
  if (inForce.source === 'configmap' && now.valid && now.hash === inForce.hash) {
    return { check: { name, status: 'ok', detail: `the controller runs this ConfigMap: ${runs(inForce)}` }, agrees: true };
  }
  if (inForce.source === 'defaults' && !now.present) {
    return { check: { name, status: 'ok', detail: `the controller runs ${runs(inForce)}` }, agrees: true };
  }
  let why: string;
  if (!now.present) {
    why = `the ConfigMap was deleted; the controller keeps ${runs(inForce)} in force until it restarts, and then ${afterRestart}`;
  } else if (!now.valid) {
    why = `the ConfigMap is invalid (see config), so the controller keeps ${runs(inForce)} in force until it restarts; fix it first: a restart with it ${requirePolicy ? 'refuses to start, or without config.yaml denies every request' : 'refuses to start'}`;
  } else {
    why = `the controller runs ${runs(inForce)}, but the ConfigMap now holds another config.yaml (hash ${now.hash ?? '?'}), not loaded yet: if this stays after a few seconds, see the controller's log`;
  }
  return { check: { name, status: 'warn', detail: why }, agrees: false };
}
