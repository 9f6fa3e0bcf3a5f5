// The composition root: builds the controller from Options and the real adapters (or ones a test
// passes in), in dependency order, and runs it: the commands `run` and `once`, readiness, leader
// election, the admission webhook and graceful shutdown.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { CertificateKeeper } from './admission/keeper.ts';
import { AdmissionParamsPublisher } from './admission/publisher.ts';
import { AdmissionWebhook } from './admission/webhook.ts';
import { homeRegion, type AwsApi } from './aws/api.ts';
import { sdkAwsApi } from './aws/sdk.ts';
import { describeAwsError } from './aws/errors.ts';
import { identityProblemFromEnv, identityProblemFromError } from './aws/identity-problem.ts';
import { awsRetryMaxDelayMs, TokenBroker } from './broker.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Options, WebhookOptions } from './config/options.ts';
import { SettingsSource } from './config/source.ts';
import type { Settings } from './config/settings.ts';
import { Caches } from './controller/caches.ts';
import { Controller } from './controller/controller.ts';
import { Reconciler } from './controller/reconciler.ts';
import { kubeApi, liveReads, webhookApi, type KubeApi } from './kube/api.ts';
import { shareConnections } from './kube/connections.ts';
import { EventRecorder } from './kube/events.ts';
import { loadKubeConfig, serverVersion } from './kube/kubeconfig.ts';
import { LeaderElector, leaderOnly, leaseApi, WriteGate } from './leader.ts';
import { inPool } from './pool.ts';
import { createLogger, errorMessage, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { closeServer, eventLoopWatchdog, serve } from './server.ts';
import { StatusPublisher } from './status.ts';
import { version } from './version.ts';
import { credentialSource } from './aws/credential-source.ts';

/** Adapters a test may replace; production leaves them undefined. */
export interface Dependencies {
  readonly kubeConfig?: KubeConfig;
  readonly aws?: AwsApi;
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly metrics?: Metrics;
  /** Base delays of p-retry for AWS calls, ms (tests shorten them). */
  readonly awsRetryMinDelayMs?: number;
  /** The gate every Kubernetes write passes; run() passes one closed until this replica leads. */
  readonly writeGate?: WriteGate;
  /** How old a Namespace must be before a ServiceAccount it names and lacks is reported, ms (tests shorten it). */
  readonly pendingGraceMs?: number;
  /** The deadline of one reconcile, ms (default: reconcileTimeout(options); tests shorten it). */
  readonly reconcileTimeoutMs?: number;
}

/**
 * Longer than a reconcile can take when every AWS call it waits for (TokenRequest, STS, ECR) uses
 * all its attempts at the request timeout with p-retry's longest delays between them, plus a
 * minute for the Kubernetes reads and writes: a reconcile still running then is stuck.
 */
export function reconcileTimeout(options: Pick<Options, 'awsTimeoutMs' | 'awsRetries'>): number {
  const attempts = options.awsRetries + 1;
  return 3 * attempts * (options.awsTimeoutMs + awsRetryMaxDelayMs) + 60_000;
}

/** Everything a running controller is made of, for the CLI, tests and the doctor. */
export interface Parts {
  readonly options: Options;
  readonly config: KubeConfig;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly aws: AwsApi;
  readonly api: KubeApi;
  readonly settings: SettingsSource;
  readonly broker: TokenBroker;
  readonly caches: Caches;
  readonly controller: Controller;
  readonly events: EventRecorder;
  readonly clock: Clock;
  /** Every Kubernetes write in `api` passes this gate: open, or following the leader elector (run). */
  readonly writeGate: WriteGate;
  /** The admission policy's parameters (--admission-params), published while this replica leads. */
  readonly admissionParams?: AdmissionParamsPublisher;
}

/** Builds the parts and loads the config; throws InvalidConfigError on an invalid ConfigMap. */
export async function assemble(options: Options, deps: Dependencies = {}): Promise<Parts> {
  const clock = deps.clock ?? systemClock;
  const log = deps.log ?? createLogger({ level: options.logLevel ?? 'info' });
  const metrics = deps.metrics ?? new Metrics();
  // Every API client, watch and Lease call shares one connection pool (client-node makes one per request).
  const config = shareConnections(deps.kubeConfig ?? loadKubeConfig(options.kubeconfig));
  const writeGate = deps.writeGate ?? new WriteGate();
  const api = leaderOnly(kubeApi(config, metrics), () => writeGate.open, log);
  const events = new EventRecorder({ api, clock, log, instance: options.instance });
  const settings = new SettingsSource({
    config,
    namespace: options.namespace,
    name: options.configMap,
    requirePolicy: options.requirePolicy,
    log,
    metrics,
    events,
    // As the controller's own informers: a start-up during an outage begins within one backoff cap of its end.
    maxRestartDelayMs: Math.min(options.backoffMaxMs, 30_000),
  });
  const initial = await settings.start();
  if (options.logLevel === undefined) log.level = initial.logLevel;

  const aws = deps.aws ?? sdkAwsApi({ requestTimeoutMs: options.awsTimeoutMs });
  const broker = new TokenBroker({
    aws,
    clock,
    settings: () => settings.current,
    serviceAccountTokens: { mint: (ns, sa, audience, seconds) => api.requestToken(ns, sa, audience, seconds) },
    retries: options.awsRetries,
    ...(deps.awsRetryMinDelayMs !== undefined ? { retryMinDelayMs: deps.awsRetryMinDelayMs, retryMaxDelayMs: deps.awsRetryMinDelayMs * 8 } : {}),
    onAwsCall: (apiName, outcome) => metrics.awsCalls.inc({ api: apiName, result: outcome }),
  });
  // controller-runtime's order: the caches, the reconciler that reads them, the controller that drives both.
  const caches = new Caches({
    config,
    clock,
    log,
    // A watch that keeps failing is retried no less often than a failing reconcile: once the apiserver
    // is back, changes are seen within one backoff cap (the informer's own cap is 30 s).
    maxRestartDelayMs: Math.min(options.backoffMaxMs, 30_000),
    ...(options.namespaceSelector !== undefined ? { namespaceSelector: options.namespaceSelector } : {}),
  });
  const reconciler = new Reconciler({
    cache: caches,
    settings: () => settings.current,
    broker,
    api,
    events,
    clock,
    log,
    metrics,
    resyncMs: options.resyncMs,
    ...(options.target !== undefined ? { target: options.target } : {}),
    ...(deps.pendingGraceMs !== undefined ? { pendingGraceMs: deps.pendingGraceMs } : {}),
  });
  const controller = new Controller({
    caches,
    reconciler,
    clock,
    log,
    metrics,
    events,
    eventTarget: { kind: 'ConfigMap', name: options.configMap, namespace: options.namespace },
    workers: options.workers,
    resyncMs: options.resyncMs,
    backoffBaseMs: options.backoffBaseMs,
    backoffMaxMs: options.backoffMaxMs,
    reconcileTimeoutMs: deps.reconcileTimeoutMs ?? reconcileTimeout(options),
    ...(options.namespaceSelector !== undefined ? { namespaceSelector: options.namespaceSelector } : {}),
  });
  const admissionParams =
    options.admissionParams === undefined
      ? undefined
      : new AdmissionParamsPublisher({
          api,
          cache: caches,
          settings: () => settings.current,
          namespace: options.namespace,
          name: options.admissionParams,
          clock,
          log,
          resyncMs: options.resyncMs,
        });
  if (admissionParams !== undefined) {
    caches.onChange((namespace, kind) => {
      if (kind !== 'Secret') admissionParams.touch(namespace);
    });
  }
  // A settings change (policy, defaults, log level) is a change to every namespace.
  settings.subscribe((next: Settings) => {
    if (options.logLevel === undefined) log.level = next.logLevel;
    controller.enqueueAll();
    admissionParams?.touchAll();
  });
  metrics.bind({
    queueDepth: () => controller.queue.length,
    queueScheduled: () => controller.queue.delayedCount,
    managedSecrets: () => caches.managedSecretCount(),
  });
  return {
    options,
    config,
    log,
    metrics,
    aws,
    api,
    settings,
    broker,
    caches,
    controller,
    events,
    clock,
    writeGate,
    ...(admissionParams !== undefined ? { admissionParams } : {}),
  };
}

/**
 * Logs the controller's own AWS identity once (never a credential). Returns why there is none when the
 * install gave it none (the placeholder role, or no credentials at all; src/aws/identity-problem.ts),
 * after logging that as an error; a passing failure (STS unreachable, throttled) is only a warning.
 */
export async function logCallerIdentity(parts: Parts): Promise<string | undefined> {
  const placeholder = identityProblemFromEnv(process.env);
  if (placeholder !== undefined) {
    parts.log.error('No AWS identity', { problem: placeholder });
    return placeholder;
  }
  const region = homeRegion() ?? 'us-east-1';
  try {
    const identity = await parts.aws.getCallerIdentity(region);
    parts.log.info('AWS identity', { arn: identity.arn, account: identity.account });
    return undefined;
  } catch (error) {
    const none = identityProblemFromError(error);
    if (none !== undefined) parts.log.error('No AWS identity', { problem: none });
    else parts.log.warn('Could not determine the AWS identity (sts:GetCallerIdentity)', { error: describeAwsError(error) });
    return none;
  }
}

export type StopReason = 'stopped' | 'lost-leadership';

export interface Running {
  readonly parts: Parts;
  /** Resolves when the controller stopped: after stop(), or after losing its Lease to another holder. */
  readonly done: Promise<StopReason>;
  /** Graceful shutdown: stop taking work, finish in-flight reconciles, release the Lease. */
  stop(): Promise<boolean>;
  readonly elector?: LeaderElector;
  /** The admission webhook (--webhook). */
  readonly admission?: Admission;
}

/** `kube-ecrlogin run`: the controller until stopped. */
export async function run(options: Options, deps: Dependencies = {}): Promise<Running> {
  // The probes answer from the start: alive while the config loads and the caches sync, ready after.
  const metrics = deps.metrics ?? new Metrics();
  // No Kubernetes configuration is an error at once, before anything listens or retries.
  const kubeConfig = deps.kubeConfig ?? loadKubeConfig(options.kubeconfig);
  const log = deps.log ?? createLogger({ level: options.logLevel ?? 'info' });
  // The first line says what runs, against what, and as whom on AWS.
  log.info('Starting kube-ecrlogin', {
    version: version(),
    kubernetes: await serverVersion(kubeConfig, 5_000),
    server: kubeConfig.getCurrentCluster()?.server,
    identity: credentialSource(process.env),
    namespace: options.namespace,
    leaderElection: options.leaderElect,
  });
  const watchdog = eventLoopWatchdog();
  const servers: Server[] = [];
  let assembled: Parts | undefined;
  let admission: Admission | undefined;
  let shuttingDown = false;
  /** Set when the install gave the controller no AWS identity: not ready, and /readyz says why. */
  let identityProblem: string | undefined;
  const readiness = (): string | undefined => {
    if (shuttingDown) return 'shutting down';
    if (assembled === undefined) return 'loading config';
    if (identityProblem !== undefined) return identityProblem;
    // A standby with synced caches is ready: it takes over without a cold start (and answers admissions).
    if (!assembled.caches.synced) return 'caches not synced';
    if (admission !== undefined && !admission.ready) return 'webhook not serving a trusted certificate';
    return undefined;
  };
  try {
    if (options.metricsAddress !== undefined) servers.push(await serve(options.metricsAddress, { metrics }));
    if (options.healthAddress !== undefined) {
      servers.push(await serve(options.healthAddress, { healthz: watchdog.probe, readyz: readiness }));
    }
    // With leader election, nothing is written until this replica leads: not even an Event about a
    // ConfigMap change seen while it starts.
    const writeGate = new WriteGate();
    if (options.leaderElect) writeGate.follow(() => false);
    assembled = await assemble(options, { ...deps, kubeConfig, log, metrics, writeGate });
  } catch (error) {
    watchdog.stop();
    await Promise.all(servers.map((server) => closeServer(server)));
    throw error;
  }
  const parts = assembled;
  const { controller, clock } = parts;
  // Asked beside the work, never before it: a slow or unreachable STS delays nothing.
  void logCallerIdentity(parts).then((problem) => {
    identityProblem = problem;
  });
  // Every replica answers admissions, leader or not: a Pod creation never waits for an election.
  if (options.webhook !== undefined) {
    admission = startAdmission(parts, options.webhook);
    void admission.keeper.start();
  }

  const elector = options.leaderElect
    ? new LeaderElector({
        api: leaseApi(parts.config, metrics),
        namespace: options.namespace,
        name: options.leaseName,
        identity: options.instance,
        leaseDurationMs: options.leaseDurationMs,
        renewDeadlineMs: options.renewDeadlineMs,
        retryPeriodMs: options.retryPeriodMs,
        clock,
        log,
        metrics,
      })
    : undefined;
  // Only the leader writes; a standby keeps its caches warm and writes nothing but the Lease.
  if (elector !== undefined) parts.writeGate.follow(() => elector.canWrite());
  // What the doctor reads about this controller; the leader writes it, when it changes.
  const status = new StatusPublisher({
    api: parts.api,
    namespace: options.namespace,
    name: options.statusConfigMap,
    intervalMs: options.statusIntervalMs,
    clock,
    log,
    version: version(),
    instance: options.instance,
    leaderElection: options.leaderElect,
    config: () => parts.settings.inForce,
    results: () => controller.lastResults,
  });

  let reason: StopReason = 'stopped';
  let finish: () => void = () => undefined;
  const done = new Promise<StopReason>((resolve) => {
    finish = () => resolve(reason);
  });
  let stopping: Promise<boolean> | undefined;
  const stop = (): Promise<boolean> =>
    (stopping ??= (async () => {
      shuttingDown = true;
      log.info('Shutting down', { timeoutMs: options.shutdownTimeoutMs });
      const deadline = clock.now() + options.shutdownTimeoutMs;
      // Readiness is off now; the webhook keeps answering until the Service has stopped sending to it.
      admission?.webhook.drain();
      const webhookDrained = admission === undefined ? Promise.resolve() : sleep(admission.shutdownDelayMs);
      const drained = await controller.stop(options.shutdownTimeoutMs);
      await parts.admissionParams?.stop();
      await status.stop();
      if (!drained) log.warn('Shutdown timeout: some reconciles did not finish', { timeoutMs: options.shutdownTimeoutMs });
      // The Events those reconciles queued, within what is left of the timeout (at least a second).
      await parts.events.flush(Math.max(1_000, deadline - clock.now()));
      // What did not finish writes nothing more: each write is whole, and the next leader converges.
      parts.writeGate.follow(() => false);
      await elector?.release();
      await webhookDrained;
      await admission?.stop();
      await parts.settings.stop();
      watchdog.stop();
      await Promise.all(servers.map((server) => closeServer(server)));
      log.info('Stopped');
      finish();
      return drained;
    })());

  await parts.caches.sync();
  status.start();
  if (elector === undefined) {
    metrics.leader.set(1);
    controller.startWorkers();
    parts.admissionParams?.start();
  } else {
    void elector
      .acquire(() => {
        // client-go's choice: a controller that lost its Lease stops, and exits non-zero so that the
        // restart is visible; the restarted process rejoins as a standby.
        reason = 'lost-leadership';
        void stop();
      })
      .then((acquired) => {
        if (acquired && !controller.queue.shuttingDown) {
          controller.startWorkers();
          parts.admissionParams?.start();
          status.nudge();
        }
      });
  }
  return { parts, done, stop, ...(elector !== undefined ? { elector } : {}), ...(admission !== undefined ? { admission } : {}) };
}

export interface Admission {
  readonly keeper: CertificateKeeper;
  readonly webhook: AdmissionWebhook;
  readonly shutdownDelayMs: number;
  readonly ready: boolean;
  stop(): Promise<void>;
}

/** The admission webhook and its certificate keeper, reading the controller's caches. */
function startAdmission(parts: Parts, options: WebhookOptions): Admission {
  const { caches, log, metrics, clock, settings } = parts;
  const live = liveReads(parts.config);
  const selector = parts.options.namespaceSelector;
  const webhook = new AdmissionWebhook({
    address: options.address,
    reads: {
      cachedNamespace: (name) => caches.namespace(name),
      cachedServiceAccounts: (namespace) => caches.serviceAccountsIn(namespace),
      liveNamespace: (name) => live.namespace(name, selector),
      liveServiceAccount: (namespace, name) => live.serviceAccount(namespace, name),
    },
    settings: () => settings.current,
    clock,
    log,
    metrics,
  });
  const keeper = new CertificateKeeper({
    api: webhookApi(parts.config, metrics),
    namespace: parts.options.namespace,
    secret: options.secret,
    certs: options.certs,
    configuration: options.configuration,
    hosts: options.hosts,
    lifetimes: { certMs: options.certLifetimeMs },
    clock,
    log,
    serve: (cert, key, expiresAt) => {
      metrics.webhookCertExpiry.set(expiresAt / 1000);
      webhook.useCertificate(cert, key).catch((error: unknown) => {
        log.error('Admission webhook cannot listen', { address: `${options.address.host}:${String(options.address.port)}`, error: errorMessage(error) });
      });
    },
  });
  return {
    keeper,
    webhook,
    shutdownDelayMs: options.shutdownDelayMs,
    get ready() {
      return webhook.serving && keeper.ready;
    },
    stop: async () => {
      await keeper.stop();
      await webhook.close();
    },
  };
}

export interface OnceSummary {
  readonly namespaces: number;
  readonly failed: readonly { readonly namespace: string; readonly error: string }[];
  readonly writes: number;
}

/** `kube-ecrlogin once`: one pass over every namespace, then stop. */
export async function once(options: Options, deps: Dependencies = {}): Promise<OnceSummary> {
  const parts = await assemble(options, deps);
  const { caches, controller, log } = parts;
  try {
    await Promise.all([logCallerIdentity(parts), caches.sync()]);
    const names = new Set<string>([...caches.namespaceNames(), ...caches.namespacesWithSecrets()]);
    if (options.target !== undefined) names.add(options.target.namespace);
    names.delete('');
    const namespaces = [...names].sort();
    const results = await inPool(namespaces, options.workers, (namespace) => controller.reconcileOnce(namespace));
    const failed: { namespace: string; error: string }[] = [];
    let writes = 0;
    results.forEach((result, index) => {
      const namespace = namespaces[index] ?? '';
      writes += result.writes;
      if (result.error !== undefined) failed.push({ namespace, error: result.error.message });
      else if (!result.healthy) failed.push({ namespace, error: 'an annotated object could not be served (see its Events)' });
    });
    log.info('Pass complete', { namespaces: names.size, writes, failed: failed.length });
    return { namespaces: names.size, failed, writes };
  } finally {
    await controller.stop(options.shutdownTimeoutMs);
    await parts.events.flush(options.shutdownTimeoutMs);
    await parts.settings.stop();
  }
}
