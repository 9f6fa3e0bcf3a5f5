// One benchmark workload: N annotated namespaces, each with its `default` ServiceAccount, served
// through k distinct (identity, region) token keys, on a private control plane of its own.
//
// In order, on the same control plane:
//   1. the floor (floor.ts) and the original's method (seed-method.ts), each as its own process;
//   2. the controller as its own process (`node dist/kube-ecrlogin.mjs run`, or src/cli.ts), as its own user
//      (the static user kube-ecrlogin bound to kustomize/base's ClusterRole and Role): cold start
//      until every Secret and ServiceAccount entry is in place;
//   3. a steady stream of namespaces annotated while it runs: annotate-to-ready latency (then the
//      annotations are removed again, so that the refresh cycle below covers exactly N Secrets);
//   4. a steady-state window with nothing changing, up to just before the first Secret is due;
//   5. exactly one refresh cycle: every Secret rewritten once with a new token;
//   6. the floor again, with the controller stopped (the floor reported is the mean of both runs).
// Writes come from the apiserver's audit log, by user; AWS calls from the AWS test server's counters;
// memory and CPU from /proc.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import * as k8s from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { parseSettings } from '../../src/config/settings.ts';
import type { RefreshSettings } from '../../src/refresh.ts';
import { shareConnections } from '../../src/kube/connections.ts';
import { readSecretState, secretAnnotations, secretRefreshAt } from '../../src/controller/secrets.ts';
import { buildDockerConfig } from '../../src/dockerconfig.ts';
import type { SpawnedServer } from '../aws/control-client.ts';
import type { Counters } from '../aws/recorder.ts';
import { freePorts, repoRoot, startControlPlane, type ControlPlane } from '../cluster/controlplane.ts';
import { controllerKeys } from '../support/controller.ts';
import { AuditTail, succeeded, type Write } from './audit.ts';
import type { FloorJob } from './floor.ts';
import { machineBusySeconds, processCost, type ProcessCost } from './proc.ts';
import { percentile } from './report.ts';
import type { SeedJob } from './seed-method.ts';

/**
 * controller: the controller's own identity in 1..10 regions, so k identities are k token keys.
 * assume-role: k roles (ecr-login/role-arn) in one region, assumed from the controller's identity,
 * with the default session per namespace; assume-role-shared: the same with aws.sessionScope: shared.
 */
export type IdentityMode = 'controller' | 'assume-role' | 'assume-role-shared';

export interface WorkloadSpec {
  readonly namespaces: number;
  readonly identities: number;
  readonly mode: IdentityMode;
  /** The controller's --workers, and the baselines' requests in flight. */
  readonly workers: number;
  /** Namespaces annotated while the controller runs, and how many per second. */
  readonly streamCount: number;
  readonly streamRate: number;
  /** The controller's --resync-period, seconds: the steady-state window covers at least one. */
  readonly resyncSeconds: number;
  /** Work directory (the control plane, job files, the controller's log). */
  readonly dir: string;
  /** The controller's entry point: the bundle (as the image runs it), src/cli.ts, or another build's. */
  readonly controllerEntry: string;
  /** Node.js flags for the controller: the image's (see image-runtime.ts), then any for profiling. */
  readonly controllerNodeArgs: readonly string[];
  /** Environment for the controller beyond the test's (the image's NODE_COMPILE_CACHE). */
  readonly controllerEnv: Readonly<Record<string, string>>;
  readonly aws: SpawnedServer;
  readonly log: (message: string) => void;
}

export interface WorkloadResult {
  readonly namespaces: number;
  readonly identities: number;
  readonly identityMode: IdentityMode;
  readonly workers: number;
  readonly coldStartSeconds: number | null;
  readonly floorSeconds: number | null;
  readonly seedMethodSeconds: number | null;
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
  readonly streamSamples: number;
  readonly awsCallsPerCycle: number | null;
  /** The least possible: one GetAuthorizationToken per distinct identity and region. */
  readonly awsCallsMinimum: number;
  readonly writesPerCycle: number | null;
  readonly cycleSeconds: number | null;
  readonly steadyStateWrites: number | null;
  readonly steadyStateSeconds: number | null;
  readonly peakRssMiB: number | null;
  readonly cpuSeconds: number | null;
  /** The controller's CPU time in the steady-state window, seconds per minute (nothing to do but resyncs). */
  readonly idleCpuSecondsPerMinute: number | null;
  /** Extra detail for reading the numbers: per-phase costs and request counts. */
  readonly detail: Record<string, unknown>;
  readonly notes: string[];
  readonly tokenLifetimeSeconds: number;
  readonly loadAverage: { readonly start: number; readonly end: number };
}

/** The controller's own AWS identity used in 1..10 regions: k regions means k token keys. */
export const regions = [
  'us-east-1',
  'eu-west-1',
  'us-west-2',
  'ap-southeast-1',
  'eu-central-1',
  'us-east-2',
  'ap-northeast-1',
  'eu-west-2',
  'sa-east-1',
  'ca-central-1',
] as const;

const account = '111122223333';
const controllerUser = 'kube-ecrlogin';
const adminUser = 'admin';
const controllerNamespace = 'kube-ecrlogin';
const secretName = 'ecr-login';
const baselineSecretName = 'regcred';
const serverAnnotation = 'ecr-login/server';
const roleAnnotation = 'ecr-login/role-arn';
const benchConfig = 'refresh:\n  margin: 50%\n  jitter: 10%\n  minInterval: 1s\n';

function configFor(mode: IdentityMode): string {
  return mode === 'assume-role-shared' ? `${benchConfig}aws:\n  sessionScope: shared\n` : benchConfig;
}

function regionOf(index: number, identities: number): string {
  return regions[index % identities] ?? 'us-east-1';
}

function hostOf(index: number, identities: number): string {
  return `${account}.dkr.ecr.${regionOf(index, identities)}.amazonaws.com`;
}

/** The annotations of the i-th namespace. */
function annotationsOf(index: number, identities: number, mode: IdentityMode): Record<string, string> {
  if (mode === 'controller') return { [serverAnnotation]: hostOf(index, identities) };
  // assume-role and assume-role-shared
  return { [serverAnnotation]: hostOf(0, 1), [roleAnnotation]: `arn:aws:iam::${account}:role/bench-pull-${index % identities}` };
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Successful writes by the controller's user, indexed by "verb resource namespace/name". */
class WriteIndex {
  readonly #byKey = new Map<string, number[]>();
  readonly all: Write[] = [];

  add(writes: readonly Write[]): void {
    for (const w of writes) {
      this.all.push(w);
      if (!succeeded(w)) continue;
      const key = `${w.user} ${w.verb} ${w.resource} ${w.namespace}/${w.name}`;
      let times = this.#byKey.get(key);
      if (times === undefined) {
        times = [];
        this.#byKey.set(key, times);
      }
      times.push(w.completed);
    }
  }

  /** When the first matching successful write at or after `since` completed. */
  first(user: string, verb: string, resource: string, namespace: string, name: string, since: number): number | undefined {
    return this.#byKey.get(`${user} ${verb} ${resource} ${namespace}/${name}`)?.find((t) => t >= since);
  }

  /** Writes by a user that completed in [from, to). */
  between(user: string, from: number, to: number): Write[] {
    return this.all.filter((w) => w.user === user && w.completed >= from && w.completed < to);
  }
}

/** Polls until check() returns a value, or throws after timeoutMs. */
async function until<T>(what: string, timeoutMs: number, check: () => T | undefined | Promise<T | undefined>, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Runs tasks with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await task(item);
    }),
  );
}

function cpuOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return processCost(pid).cpuSeconds;
  } catch {
    return 0;
  }
}

const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;

export async function runWorkload(spec: WorkloadSpec): Promise<WorkloadResult> {
  const { namespaces: n, identities, workers, aws, log } = spec;
  const notes: string[] = [];
  const detail: Record<string, unknown> = {};
  const loadStart = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  mkdirSync(spec.dir, { recursive: true });

  log(`starting a private control plane in ${join(spec.dir, 'cluster')}`);
  const plane = await startControlPlane({ dir: join(spec.dir, 'cluster') });
  let controller: ChildProcess | undefined;
  try {
    const tail = new AuditTail(plane.state.auditLog);
    const index = new WriteIndex();
    const poll = (): void => index.add(tail.poll());
    const admin = shareConnections(plane.adminConfig());
    const core = admin.makeApiClient(k8s.CoreV1Api);
    const apiserverCpu = (): number => cpuOf(plane.pids['kube-apiserver']) + cpuOf(plane.pids['etcd']);

    const kubeconfig = await prepareControllerUser(plane, spec.dir, configFor(spec.mode));
    const names = Array.from({ length: n }, (_, i) => `bench-${pad(i, 5)}`);
    const streamNames = Array.from({ length: spec.streamCount }, (_, i) => `stream-${pad(i, 4)}`);
    const indexOf = new Map(names.map((name, i) => [name, i]));
    const streamIndexOf = new Map(streamNames.map((name, i) => [name, i]));

    const started = Date.now();
    log(`creating ${n} annotated namespaces and ${spec.streamCount} more for the stream`);
    // kube-controller-manager would make each namespace's `default` ServiceAccount and kube-root-ca.crt
    // ConfigMap, but at its client's 20 requests per second: 5,000 namespaces would take eight minutes
    // and go on during the measurements. The same objects made here first leave it nothing to write.
    const caPem = plane.caPem;
    await pool([...names, ...streamNames], 32, async (name) => {
      const i = indexOf.get(name);
      const annotations = i === undefined ? undefined : annotationsOf(i, identities, spec.mode);
      await core.createNamespace({ body: { metadata: { name, ...(annotations !== undefined ? { annotations } : {}) } } });
      await Promise.all([
        ignoreConflict(core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'default' } } })),
        ignoreConflict(
          core.createNamespacedConfigMap({
            namespace: name,
            body: {
              metadata: { name: 'kube-root-ca.crt', annotations: { 'kubernetes.io/description': 'made by the benchmark as kube-controller-manager would' } },
              data: { 'ca.crt': caPem },
            },
          }),
        ),
      ]);
    });
    await waitForServiceAccounts(core, new Set([...names, ...streamNames]), 120_000 + n * 100);
    detail['setupSeconds'] = round((Date.now() - started) / 1000, 1);
    await sleep(2_000);
    poll();

    // Other work on the machine during a phase (other engineers' tests, say): busy CPU time that was
    // not the control plane's, the AWS test server's, this process's or the measured process's.
    const ours = (pid?: number): number =>
      apiserverCpu() +
      cpuOf(plane.pids['kube-controller-manager']) +
      cpuOf(aws.pid) +
      cpuOf(pid) +
      process.cpuUsage().user / 1e6 +
      process.cpuUsage().system / 1e6;
    const otherLoad = (from: { busy: number; ours: number; at: number }, pid?: number, theirs = 0): number =>
      round((machineBusySeconds() - from.busy - (ours(pid) + theirs - from.ours)) / ((Date.now() - from.at) / 1000));
    const mark = (pid?: number): { busy: number; ours: number; at: number } => ({ busy: machineBusySeconds(), ours: ours(pid), at: Date.now() });

    // 1. The floor (measured again after the controller, and averaged, so that a change in the
    // machine's load during the run weighs on both sides), then the original's method, which deletes
    // and creates the floor's Secrets as its CronJob found its own previous run's.
    const template = await floorSecret(aws.endpoint, hostOf(0, identities));
    const measureFloor = async (label: string, secret: k8s.V1Secret): Promise<number> => {
      const floorJob: FloorJob = { kubeconfig, concurrency: workers, namespaces: names, serviceAccount: 'default', secret };
      log(`floor (${label}): ${n} Secrets and ${n} ServiceAccount patches, ${workers} in flight`);
      const cpuBefore = apiserverCpu();
      const before = mark();
      const floor = await runScript(spec.dir, 'floor', floorJob, {});
      const floorWrites = await until('the floor writes in the audit log', 30_000, () => {
        poll();
        const writes = index.between(controllerUser, floor.spawnedAt, Number.POSITIVE_INFINITY).filter(succeeded);
        return writes.length >= 2 * n ? writes : undefined;
      });
      const seconds = (Math.max(...floorWrites.map((w) => w.completed)) - floor.spawnedAt) / 1000;
      detail[`floor ${label}`] = {
        seconds: round(seconds),
        writes: floorWrites.length,
        firstWriteSeconds: round((Math.min(...floorWrites.map((w) => w.received)) - floor.spawnedAt) / 1000),
        apiserverCpuSeconds: round(apiserverCpu() - cpuBefore),
        process: floor.cost,
        otherLoadCores: otherLoad(before, undefined, floor.cost?.cpuSeconds ?? 0),
      };
      if (floor.exitCode !== 0) notes.push(`the floor script (${label}) exited ${floor.exitCode}`);
      await sleep(1_000);
      return seconds;
    };
    const floorBefore = await measureFloor('before', template);

    await aws.control.reset();
    log(`seed method: per namespace a token, then delete and create ${baselineSecretName}, ${workers} in flight`);
    let cpuBefore = apiserverCpu();
    const seedJob: SeedJob = {
      kubeconfig,
      concurrency: workers,
      secretName: baselineSecretName,
      targets: names.map((namespace, i) => ({ namespace, host: hostOf(i, identities), region: regionOf(i, identities) })),
    };
    const seedMark = mark();
    const seed = await runScript(spec.dir, 'seed-method', seedJob, awsEnv(aws.endpoint));
    detail['seedMethodOtherLoadCores'] = otherLoad(seedMark, undefined, seed.cost?.cpuSeconds ?? 0);
    const seedWrites = await until('the seed method writes in the audit log', 30_000, () => {
      poll();
      const writes = index.between(controllerUser, seed.spawnedAt, Number.POSITIVE_INFINITY).filter(succeeded);
      return writes.length >= 2 * n ? writes : undefined;
    });
    const seedMethodSeconds = (Math.max(...seedWrites.map((w) => w.completed)) - seed.spawnedAt) / 1000;
    detail['seedMethodWrites'] = seedWrites.length;
    detail['seedMethodFirstWriteSeconds'] = round((Math.min(...seedWrites.map((w) => w.received)) - seed.spawnedAt) / 1000);
    detail['seedMethodAwsCalls'] = (await aws.control.calls(0)).counters.total;
    detail['seedMethodApiserverCpuSeconds'] = round(apiserverCpu() - cpuBefore);
    detail['seedMethodProcess'] = seed.cost;
    if (seed.exitCode !== 0) notes.push(`the seed method script exited ${seed.exitCode}`);
    await sleep(1_000);

    // 2. The controller. The token lifetime puts the first refresh after the cold start, the stream
    // and a steady-state window of at least one resync period.
    // Cold starts measured here took up to 2.2 times the floor; 3 times leaves room for a busier machine.
    const coldEstimate = 3 * floorBefore + 10;
    const streamEstimate = spec.streamCount / spec.streamRate + 10;
    const tokenLifetimeSeconds = Math.max(60, Math.ceil((coldEstimate + streamEstimate + spec.resyncSeconds + 10) / 0.45));
    await aws.control.trust({ tokenLifetimeSeconds });
    await aws.control.reset();
    const refresh = refreshSettings();

    log(`controller: cold start with ${n} annotated namespaces (ECR tokens live ${tokenLifetimeSeconds} s)`);
    cpuBefore = apiserverCpu();
    const coldMark = mark();
    const t0 = Date.now();
    const [metricsPort = 0] = await freePorts(1);
    controller = spawnController(spec, kubeconfig, metricsPort);
    const pid = controller.pid ?? 0;
    const exited = new Promise<number | null>((resolve) => controller?.once('exit', resolve));
    /** Throws once the controller has gone; an abort (V8 out of heap) sets signalCode, not exitCode. */
    const alive = (): void => {
      if (controller?.exitCode === null && controller.signalCode === null) return;
      throw new Error(`the controller exited (${String(controller?.exitCode ?? controller?.signalCode)}); see ${join(spec.dir, 'controller.log')}`);
    };
    let secretTimes = new Map<string, number>();
    let saTimes = new Map<string, number>();
    /** Records when each namespace's Secret was created and its ServiceAccount patched, since a time. */
    const recordReady = (namespaces: readonly string[], since: number): void => {
      for (const name of namespaces) {
        if (!secretTimes.has(name)) {
          const at = index.first(controllerUser, 'create', 'secrets', name, secretName, since);
          if (at !== undefined) secretTimes.set(name, at);
        }
        if (!saTimes.has(name)) {
          const at = index.first(controllerUser, 'patch', 'serviceaccounts', name, 'default', since);
          if (at !== undefined) saTimes.set(name, at);
        }
      }
    };
    const coldEnd = await until('the cold start', 120_000 + n * 200, () => {
      alive();
      poll();
      recordReady(names, t0);
      if (secretTimes.size < n || saTimes.size < n) return undefined;
      return Math.max(...secretTimes.values(), ...saTimes.values());
    });
    const coldCost = processCost(pid);
    detail['coldStartOtherLoadCores'] = otherLoad(coldMark, pid);
    const coldStartSeconds = (coldEnd - t0) / 1000;
    const coldWrites = index.between(controllerUser, t0, coldEnd + 1);
    detail['coldStartWrites'] = countBy(coldWrites.filter(succeeded), (w) => `${w.verb} ${w.resource}`);
    detail['coldStartFailedWrites'] = coldWrites.filter((w) => !succeeded(w)).length;
    detail['coldStartAwsCalls'] = (await aws.control.calls(0)).counters.byApi;
    detail['coldStartCpuSeconds'] = round(coldCost.cpuSeconds);
    detail['coldStartPeakRssMiB'] = round(coldCost.peakRssMiB, 1);
    detail['coldStartApiserverCpuSeconds'] = round(apiserverCpu() - cpuBefore);
    detail['coldStartMemory'] = await memoryMetrics(metricsPort);
    const firstWrite = Math.min(...coldWrites.map((w) => w.received));
    detail['coldStartFirstWriteSeconds'] = round((firstWrite - t0) / 1000);
    if (coldWrites.some((w) => w.verb === 'patch' && w.resource === 'secrets')) {
      notes.push('a refresh began before the cold start ended (token lifetime too short for this machine)');
    }
    await verifyState(core, names);
    log(`cold start ${coldStartSeconds.toFixed(1)} s (floor before ${floorBefore.toFixed(1)} s, seed method ${seedMethodSeconds.toFixed(1)} s)`);
    await quiet(poll, index, 2_000);

    // 3. The stream: namespaces annotated at a steady rate while the controller runs.
    log(`stream: ${spec.streamCount} namespaces annotated at ${spec.streamRate}/s`);
    const streamStart = Date.now();
    const annotating: Promise<unknown>[] = [];
    for (const [i, name] of streamNames.entries()) {
      const due = streamStart + (i * 1000) / spec.streamRate;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      annotating.push(
        core.patchNamespace(
          { name, body: { metadata: { annotations: annotationsOf(i, identities, spec.mode) } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ),
      );
    }
    await Promise.all(annotating);
    secretTimes = new Map();
    saTimes = new Map();
    const annotatedAt = new Map<string, number>();
    for (const w of index.between(adminUser, streamStart - 1, Number.POSITIVE_INFINITY)) {
      if (w.resource === 'namespaces' && w.verb === 'patch' && streamIndexOf.has(w.name)) annotatedAt.set(w.name, w.received);
    }
    const latencies = await until('every streamed namespace to be ready', 60_000 + spec.streamCount * 500, () => {
      alive();
      poll();
      for (const w of index.between(adminUser, streamStart - 1, Number.POSITIVE_INFINITY)) {
        if (w.resource === 'namespaces' && w.verb === 'patch' && streamIndexOf.has(w.name)) annotatedAt.set(w.name, w.received);
      }
      recordReady(streamNames, streamStart);
      if (secretTimes.size < streamNames.length || saTimes.size < streamNames.length || annotatedAt.size < streamNames.length) return undefined;
      return streamNames.map((name) => Math.max(secretTimes.get(name) ?? 0, saTimes.get(name) ?? 0) - (annotatedAt.get(name) ?? 0));
    });
    detail['streamMaxMs'] = round(Math.max(...latencies), 1);

    // The stream's annotations go again, so that the cycle below is over exactly the N namespaces.
    const removeStart = Date.now();
    await pool(streamNames, workers, async (name) => {
      await core.patchNamespace(
        { name, body: { metadata: { annotations: { [serverAnnotation]: null, [roleAnnotation]: null } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
    });
    await until('the stream namespaces to be cleaned up', 60_000 + spec.streamCount * 500, () => {
      alive();
      poll();
      const done = streamNames.every(
        (name) =>
          index.first(controllerUser, 'delete', 'secrets', name, secretName, removeStart) !== undefined &&
          index.first(controllerUser, 'patch', 'serviceaccounts', name, 'default', removeStart) !== undefined,
      );
      return done ? true : undefined;
    });
    await quiet(poll, index, 3_000);

    // 4. Steady state: nothing changes until the first Secret is due.
    const steadyStart = Date.now();
    const steadyCpuStart = processCost(pid).cpuSeconds;
    const firstDue = await firstRefreshDue(core, new Set(names), refresh);
    const steadyEnd = firstDue - 500;
    // The first refresh came before the window could open: neither the window nor the cycle can be
    // measured (AWS counters and writes would mix the two).
    const late = steadyEnd < Date.now() + 1_000;
    if (late) {
      notes.push(
        `the first refresh was due ${Math.round((Date.now() - firstDue) / 1000)} s before the steady-state window could open (the token lifetime was too short for this machine): steady state and the cycle not measured`,
      );
    } else if (steadyEnd - steadyStart < spec.resyncSeconds * 1000) {
      notes.push(`the steady-state window (${Math.max(0, Math.round((steadyEnd - steadyStart) / 1000))} s) is shorter than one resync period`);
    }
    log(`steady state for ${Math.max(0, Math.round((steadyEnd - steadyStart) / 1000))} s, until the first Secret is due`);
    if (steadyEnd > Date.now()) await sleep(steadyEnd - Date.now());
    const steadyCpu = processCost(pid).cpuSeconds - steadyCpuStart;
    const steadyMinutes = (Date.now() - steadyStart) / 60_000;
    const awsBefore: Counters = (await aws.control.calls(0)).counters;
    await sleep(500);
    poll();
    const steadyWrites = index.between(controllerUser, steadyStart, steadyEnd);
    detail['steadyStateWriteKinds'] = countBy(steadyWrites, (w) => `${w.verb} ${w.resource}`);

    // 5. One refresh cycle: every Secret rewritten once.
    log(`refresh cycle: waiting for ${n} Secrets to be refreshed`);
    const cycleEnd = await until('one refresh cycle', 60_000 + tokenLifetimeSeconds * 100 + n * 200, () => {
      alive();
      poll();
      let last = 0;
      for (const name of names) {
        const at = index.first(controllerUser, 'patch', 'secrets', name, secretName, steadyEnd);
        if (at === undefined) return undefined;
        last = Math.max(last, at);
      }
      return last;
    });
    const awsAfter: Counters = (await aws.control.calls(0)).counters;
    const cycleWrites = index.between(controllerUser, steadyEnd, cycleEnd + 1);
    detail['cycleWriteKinds'] = countBy(cycleWrites, (w) => `${w.verb} ${w.resource}`);
    detail['cycleAwsCalls'] = diffCounts(awsAfter.byApi, awsBefore.byApi);
    const endCost: ProcessCost = processCost(pid);
    detail['endMemory'] = await memoryMetrics(metricsPort);
    detail['apiserverCpuSecondsWhileControllerRan'] = round(apiserverCpu() - cpuBefore);

    controller.kill('SIGTERM');
    const code = await exited;
    if (code !== 0) notes.push(`the controller exited ${String(code)} on SIGTERM`);
    controller = undefined;
    const floorAfter = await measureFloor('after', { ...template, metadata: { ...template.metadata, name: 'floor-after' } });
    const floorSeconds = (floorBefore + floorAfter) / 2;

    return {
      namespaces: n,
      identities,
      identityMode: spec.mode,
      workers,
      coldStartSeconds: round(coldStartSeconds),
      floorSeconds: round(floorSeconds),
      seedMethodSeconds: round(seedMethodSeconds),
      p50Ms: round(percentile(latencies, 0.5), 1),
      p95Ms: round(percentile(latencies, 0.95), 1),
      p99Ms: round(percentile(latencies, 0.99), 1),
      streamSamples: latencies.length,
      awsCallsPerCycle: late ? null : awsAfter.total - awsBefore.total,
      // A session per namespace makes every namespace its own token key; otherwise there is one per identity.
      awsCallsMinimum: spec.mode === 'assume-role' ? n : identities,
      writesPerCycle: late ? null : cycleWrites.filter(succeeded).length,
      cycleSeconds: late ? null : round((cycleEnd - steadyEnd) / 1000),
      steadyStateWrites: late ? null : steadyWrites.length,
      steadyStateSeconds: late ? null : round((steadyEnd - steadyStart) / 1000, 1),
      peakRssMiB: round(endCost.peakRssMiB, 1),
      cpuSeconds: round(endCost.cpuSeconds),
      idleCpuSecondsPerMinute: late ? null : round(steadyCpu / steadyMinutes, 3),
      detail,
      notes,
      tokenLifetimeSeconds,
      loadAverage: { start: loadStart, end: Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]) },
    };
  } finally {
    if (controller !== undefined && controller.exitCode === null) controller.kill('SIGKILL');
    await plane.stop();
  }
}

/** The controller's user: the static user kube-ecrlogin, bound to the real ClusterRole and Role. */
async function prepareControllerUser(plane: ControlPlane, dir: string, config: string): Promise<string> {
  const admin = shareConnections(plane.adminConfig());
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
  const base = join(repoRoot, 'kustomize', 'base');
  const clusterRole = parseYaml(readFileSync(join(base, 'cluster_role.yaml'), 'utf8')) as k8s.V1ClusterRole;
  const role = parseYaml(readFileSync(join(base, 'role.yaml'), 'utf8')) as k8s.V1Role;
  const subjects = [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: controllerUser }];
  await core.createNamespace({ body: { metadata: { name: controllerNamespace } } });
  await rbac.createClusterRole({ body: clusterRole });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: 'kube-ecrlogin' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole.metadata?.name ?? '' },
      subjects,
    },
  });
  await rbac.createNamespacedRole({ namespace: controllerNamespace, body: { ...role, metadata: { ...role.metadata, namespace: controllerNamespace } } });
  await rbac.createNamespacedRoleBinding({
    namespace: controllerNamespace,
    body: { metadata: { name: 'kube-ecrlogin' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata?.name ?? '' }, subjects },
  });
  await core.createNamespacedConfigMap({
    namespace: controllerNamespace,
    body: { metadata: { name: 'kube-ecrlogin-config' }, data: { 'config.yaml': config } },
  });
  return plane.writeKubeconfig(plane.userConfig(controllerUser), join(dir, 'controller.kubeconfig'));
}

function refreshSettings(): RefreshSettings {
  const parsed = parseSettings(benchConfig);
  if (!parsed.ok) throw new Error(`bench config: ${parsed.error.join('; ')}`);
  return parsed.value.refresh;
}

function awsEnv(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
    AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

function spawnController(spec: WorkloadSpec, kubeconfig: string, metricsPort: number): ChildProcess {
  // Straight into a file: through a pipe read by this process, the controller's synchronous writes to
  // stderr would wait for this process whenever the machine is busy.
  const log = openSync(join(spec.dir, 'controller.log'), 'w');
  const child = spawn(
    process.execPath,
    [
      ...spec.controllerNodeArgs,
      spec.controllerEntry,
      'run',
      '--namespace',
      controllerNamespace,
      '--workers',
      String(spec.workers),
      '--resync-period',
      `${spec.resyncSeconds}s`,
      '--metrics-bind-address',
      `127.0.0.1:${metricsPort}`,
      '--health-probe-bind-address',
      '127.0.0.1:0',
    ],
    { env: { ...process.env, ...spec.controllerEnv, KUBECONFIG: kubeconfig, ...awsEnv(spec.aws.endpoint) }, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  return child;
}

interface ScriptRun {
  readonly spawnedAt: number;
  readonly exitCode: number | null;
  readonly cost: ProcessCost | undefined;
}

/** Runs a baseline script as its own process with a job file; returns when it exits. */
async function runScript(dir: string, name: string, job: unknown, env: Record<string, string>): Promise<ScriptRun> {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(job));
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [join(repoRoot, 'test', 'bench', `${name}.ts`), file], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  // The last sample before it exits: its peak memory and CPU.
  let cost: ProcessCost | undefined;
  const sampler = setInterval(() => {
    try {
      if (child.pid !== undefined) cost = processCost(child.pid);
    } catch {
      // exited
    }
  }, 200);
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  if (stderr !== '') process.stderr.write(stderr.split('\n').slice(0, 5).join('\n') + '\n');
  return { spawnedAt, exitCode, cost };
}

/** A Secret of the controller's shape and size (a real test-server token), under the baselines' name. */
async function floorSecret(endpoint: string, host: string): Promise<k8s.V1Secret> {
  const client = new ECRClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: controllerKeys.accessKeyId, secretAccessKey: controllerKeys.secretAccessKey },
    maxAttempts: 1,
  });
  try {
    const output = await client.send(new GetAuthorizationTokenCommand({}));
    const data = output.authorizationData?.[0];
    const decoded = Buffer.from(data?.authorizationToken ?? '', 'base64').toString('utf8');
    const password = decoded.slice(decoded.indexOf(':') + 1);
    const now = new Date();
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: baselineSecretName,
        labels: { 'app.kubernetes.io/managed-by': 'bench-floor' },
        annotations: {
          [secretAnnotations.owner]: 'Namespace/bench',
          [secretAnnotations.registries]: host,
          [secretAnnotations.identity]: "the controller's own identity",
          [secretAnnotations.issuedAt]: now.toISOString(),
          [secretAnnotations.expiresAt]: (data?.expiresAt ?? now).toISOString(),
          [secretAnnotations.specHash]: '0123456789abcdef',
        },
      },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from(buildDockerConfig([{ host, username: 'AWS', password }])).toString('base64') },
    };
  } finally {
    client.destroy();
  }
}

/** Resolves when the object was created or already existed (kube-controller-manager was first). */
async function ignoreConflict(request: Promise<unknown>): Promise<void> {
  try {
    await request;
  } catch (error) {
    if (!(error instanceof k8s.ApiException && error.code === 409)) throw error;
  }
}

/** Waits until every namespace has its `default` ServiceAccount and kube-root-ca.crt (KCM is done). */
async function waitForServiceAccounts(core: k8s.CoreV1Api, wanted: ReadonlySet<string>, timeoutMs: number): Promise<void> {
  await until(
    `${wanted.size} default ServiceAccounts`,
    timeoutMs,
    async () => {
      const sas = await core.listServiceAccountForAllNamespaces({ fieldSelector: 'metadata.name=default' });
      const have = sas.items.filter((sa) => wanted.has(sa.metadata?.namespace ?? '')).length;
      if (have < wanted.size) return undefined;
      const cms = await core.listConfigMapForAllNamespaces({ fieldSelector: 'metadata.name=kube-root-ca.crt' });
      return cms.items.filter((cm) => wanted.has(cm.metadata?.namespace ?? '')).length >= wanted.size ? true : undefined;
    },
    1_000,
  );
}

/** Checks the end state directly: every Secret there, every ServiceAccount listing it. */
async function verifyState(core: k8s.CoreV1Api, names: readonly string[]): Promise<void> {
  const secrets = await core.listSecretForAllNamespaces({ labelSelector: 'app.kubernetes.io/managed-by=kube-ecrlogin' });
  const withSecret = new Set(secrets.items.filter((s) => s.metadata?.name === secretName).map((s) => s.metadata?.namespace ?? ''));
  const sas = await core.listServiceAccountForAllNamespaces({ fieldSelector: 'metadata.name=default' });
  const listed = new Set(
    sas.items.filter((sa) => (sa.imagePullSecrets ?? []).some((ref) => ref.name === secretName)).map((sa) => sa.metadata?.namespace ?? ''),
  );
  const missing = names.filter((name) => !withSecret.has(name) || !listed.has(name));
  if (missing.length > 0) {
    throw new Error(`after the cold start ${missing.length} namespaces lack their Secret or imagePullSecrets entry (e.g. ${missing.slice(0, 3).join(', ')})`);
  }
}

/** The time the first of these namespaces' Secrets is due, from the Secrets themselves. */
async function firstRefreshDue(core: k8s.CoreV1Api, names: ReadonlySet<string>, refresh: RefreshSettings): Promise<number> {
  const secrets = await core.listSecretForAllNamespaces({ labelSelector: 'app.kubernetes.io/managed-by=kube-ecrlogin' });
  let first = Number.POSITIVE_INFINITY;
  for (const secret of secrets.items) {
    const namespace = secret.metadata?.namespace ?? '';
    if (!names.has(namespace)) continue;
    const state = readSecretState(secret);
    if (!state.ok) throw new Error(`Secret ${namespace}/${secretName}: ${state.error}`);
    first = Math.min(first, secretRefreshAt(namespace, secret.metadata?.name ?? '', state.value, refresh));
  }
  return first;
}

/** The controller's memory as its own /metrics reports it (prom-client's process and Node.js metrics), MiB. */
async function memoryMetrics(port: number): Promise<Record<string, number>> {
  const wanted: Record<string, string> = {
    process_resident_memory_bytes: 'rss',
    nodejs_heap_size_used_bytes: 'heapUsed',
    nodejs_heap_size_total_bytes: 'heapTotal',
    nodejs_external_memory_bytes: 'external',
  };
  const out: Record<string, number> = {};
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n')) {
      const [name, value] = line.split(' ');
      const key = name === undefined ? undefined : wanted[name];
      if (key !== undefined) out[key] = round(Number(value) / 2 ** 20, 1);
    }
  } catch {
    // metrics are a diagnosis, not a result
  }
  return out;
}

/** Waits until the controller has written nothing for `ms`. */
async function quiet(poll: () => void, index: WriteIndex, ms: number): Promise<void> {
  await until(
    'the controller to be quiet',
    120_000,
    () => {
      poll();
      const last = index.all.findLast((w) => w.user === controllerUser)?.completed ?? 0;
      return Date.now() - last >= ms ? true : undefined;
    },
    200,
  );
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

function diffCounts(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const delta = value - (before[key] ?? 0);
    if (delta !== 0) out[key] = delta;
  }
  return out;
}
