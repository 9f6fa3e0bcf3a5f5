// `make bench`: cold start, annotate-to-ready latency, AWS and Kubernetes cost per refresh cycle,
// steady-state writes, memory and CPU of the controller, against the floor and the original's method.
//
// Environment:
//   BENCH_SIZES       annotated namespaces per workload (default "100 1000"; the full set: "100 1000 5000 10000")
//   BENCH_IDENTITIES  distinct (identity, region) token keys per workload (default "1 10")
//   BENCH_MODE        "controller" (default): identities are regions of the controller's own identity;
//                     "assume-role": identities are roles (ecr-login/role-arn) assumed from it, one
//                     session per namespace (the default); "assume-role-shared": aws.sessionScope: shared
//   BENCH_WORKERS     the controller's --workers and the baselines' concurrency (default 4)
//   BENCH_STREAM      namespaces annotated while the controller runs, and the rate: "COUNT@RATE" (default "200@20")
//   BENCH_RESYNC      the controller's --resync-period in seconds (default 30)
//   BENCH_CONTROLLER  "dist" (default: the bundle, as the image runs it), "src" (node src/cli.ts), or the
//                     path of another build's entry point, e.g. a dist/cli.js (to compare a change)
//   BENCH_CONTROLLER_NODE_ARGS  Node flags for the controller, e.g. "--cpu-prof --cpu-prof-dir=.cache/bench/profiles"
//   BENCH_WEBHOOK     Pod creations per phase of the admission webhook's measurement (default 1000; 0 skips it)
//   BENCH_PUBLISH=1   also copy the chart to test/bench/results/ and the table into test/bench/README.md
//
// Output: a markdown table on stdout and in .cache/bench/report.md, .cache/bench/report.json,
// .cache/bench/chart.svg. Each workload runs on a fresh private control plane in .cache/bench/.

import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { spawnAwsTestServer } from '../aws/control-client.ts';
import { repoRoot } from '../cluster/controlplane.ts';
import { controllerKeys } from '../support/controller.ts';
import { loadAverage, machine } from './proc.ts';
import { buildImageApp, imageEnv, imageRuntime } from './image-runtime.ts';
import { renderMarkdown, writeReports, type RunInfo } from './report.ts';
import { renderWebhookMarkdown, runWebhookBench, type WebhookBenchResult } from './webhook.ts';
import { regions, runWorkload, type IdentityMode, type WorkloadResult } from './workload.ts';

function numbers(name: string, fallback: string): number[] {
  const text = process.env[name] ?? fallback;
  const values = text
    .split(/[\s,]+/)
    .filter((s) => s !== '')
    .map(Number);
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new Error(`${name}=${JSON.stringify(text)}: expected whole numbers, e.g. "${fallback}"`);
  }
  return values;
}

function stream(): { count: number; rate: number } {
  const text = process.env['BENCH_STREAM'] ?? '200@20';
  const match = /^(\d+)@(\d+(?:\.\d+)?)$/.exec(text.trim());
  if (match === null || Number(match[1]) < 1 || !(Number(match[2]) > 0))
    throw new Error(`BENCH_STREAM=${JSON.stringify(text)}: expected COUNT@RATE, e.g. 200@20`);
  return { count: Number(match[1]), rate: Number(match[2]) };
}

/**
 * The controller as the image runs it: the bundle of `npm run bundle` beside a copy of package.json
 * (see image-runtime.ts). BENCH_CONTROLLER=src runs src/cli.ts with Node's type stripping instead
 * (more resident memory, and slower to start).
 */
function controllerEntry(dir: string): string {
  const choice = process.env['BENCH_CONTROLLER'] ?? 'dist';
  if (choice === 'src') return join(repoRoot, 'src', 'cli.ts');
  // A path: another build's entry point, to compare a change.
  if (choice !== 'dist') return resolve(choice);
  const build = join(dir, 'build');
  rmSync(build, { recursive: true, force: true });
  return buildImageApp(build);
}

const log = (message: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
};

function failed(namespaces: number, identities: number, mode: IdentityMode, workers: number, error: unknown): WorkloadResult {
  return {
    namespaces,
    identities,
    identityMode: mode,
    workers,
    coldStartSeconds: null,
    floorSeconds: null,
    seedMethodSeconds: null,
    p50Ms: null,
    p95Ms: null,
    p99Ms: null,
    streamSamples: 0,
    awsCallsPerCycle: null,
    awsCallsMinimum: identities,
    writesPerCycle: null,
    cycleSeconds: null,
    steadyStateWrites: null,
    steadyStateSeconds: null,
    peakRssMiB: null,
    cpuSeconds: null,
    idleCpuSecondsPerMinute: null,
    detail: {},
    notes: [`failed: ${error instanceof Error ? error.message : String(error)}`],
    tokenLifetimeSeconds: 0,
    loadAverage: { start: Number.NaN, end: loadAverage() },
  };
}

/** Replaces the table between the bench markers of test/bench/README.md with this run's report. */
function publish(dir: string, markdown: string): void {
  const results = join(repoRoot, 'test', 'bench', 'results');
  mkdirSync(results, { recursive: true });
  copyFileSync(join(dir, 'chart.svg'), join(results, 'chart.svg'));
  const readmePath = join(repoRoot, 'test', 'bench', 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const begin = '<!-- bench:begin -->';
  const end = '<!-- bench:end -->';
  const from = readme.indexOf(begin);
  const to = readme.indexOf(end);
  if (from < 0 || to < from) {
    log('test/bench/README.md has no bench markers: not updated');
    return;
  }
  writeFileSync(readmePath, `${readme.slice(0, from + begin.length)}\n${markdown}${readme.slice(to)}`);
  log('updated test/bench/README.md and test/bench/results/chart.svg');
}

async function main(): Promise<void> {
  const sizes = numbers('BENCH_SIZES', '100 1000');
  const identityCounts = numbers('BENCH_IDENTITIES', '1 10');
  if (identityCounts.some((k) => k > regions.length)) throw new Error(`BENCH_IDENTITIES: at most ${regions.length}`);
  const [workers = 4] = numbers('BENCH_WORKERS', '4');
  const { count: streamCount, rate: streamRate } = stream();
  const [resyncSeconds = 30] = numbers('BENCH_RESYNC', '30');
  const modeText = process.env['BENCH_MODE'] ?? 'controller';
  if (modeText !== 'controller' && modeText !== 'assume-role' && modeText !== 'assume-role-shared') {
    throw new Error(`BENCH_MODE=${JSON.stringify(modeText)}: controller, assume-role or assume-role-shared`);
  }
  const mode: IdentityMode = modeText;
  const dir = join(repoRoot, '.cache', 'bench');
  mkdirSync(dir, { recursive: true });
  const entry = controllerEntry(dir);
  // The image's compile cache goes with the image's bundle only.
  const controllerEnv = (process.env['BENCH_CONTROLLER'] ?? 'dist') === 'dist' ? imageEnv(entry) : {};
  // As the image runs it (see image-runtime.ts); BENCH_CONTROLLER_NODE_ARGS adds flags, e.g.
  // "--cpu-prof --cpu-prof-dir=.cache/bench/profiles" for profiling.
  const runtime = imageRuntime();
  const nodeArgs = [...runtime.nodeArgs, ...(process.env['BENCH_CONTROLLER_NODE_ARGS'] ?? '').split(' ').filter((arg) => arg !== '')];

  const info: RunInfo = {
    date: new Date().toISOString(),
    command: `${mode === 'controller' ? '' : `BENCH_MODE=${mode} `}BENCH_SIZES="${sizes.join(' ')}" BENCH_IDENTITIES="${identityCounts.join(' ')}" make bench`,
    machine: machine(),
    load: { start: loadAverage(), end: Number.NaN },
    controller: `node ${[...nodeArgs, relative(repoRoot, entry).replace(/^\.cache\/bench\/build\//, '')].join(' ')}`,
    memoryLimitMiB: runtime.memoryLimitMiB,
    workers,
    streamCount,
    streamRate,
    resyncSeconds,
  };
  log(
    `${info.machine.cores} cores, ${info.machine.memoryGiB} GiB, load ${info.load.start}; sizes ${sizes.join(', ')}; identities ${identityCounts.join(', ')}`,
  );

  const aws = await spawnAwsTestServer([]);
  const results: WorkloadResult[] = [];
  let webhook: WebhookBenchResult | undefined;
  const started = Date.now();
  try {
    await aws.control.trust({ users: [controllerKeys] });
    for (const namespaces of sizes) {
      for (const identities of identityCounts) {
        log(`workload: N = ${namespaces}, ${identities} identities`);
        const began = Date.now();
        try {
          results.push(
            await runWorkload({
              namespaces,
              identities,
              mode,
              workers,
              streamCount,
              streamRate,
              resyncSeconds,
              dir: join(dir, 'run'),
              controllerEntry: entry,
              controllerNodeArgs: nodeArgs,
              controllerEnv,
              aws,
              log,
            }),
          );
        } catch (error) {
          log(`workload failed: ${error instanceof Error ? error.message : String(error)}`);
          results.push(failed(namespaces, identities, mode, workers, error));
        }
        log(`workload done in ${Math.round((Date.now() - began) / 1000)} s`);
        writeReports(dir, { ...info, load: { ...info.load, end: loadAverage() } }, results);
      }
    }
    if (process.env['BENCH_WEBHOOK'] !== '0') {
      const [webhookPods = 1000] = numbers('BENCH_WEBHOOK', '1000');
      log(`workload: admission webhook, ${webhookPods} Pods per phase`);
      try {
        webhook = await runWebhookBench({
          dir: join(dir, 'webhook'),
          controllerEntry: entry,
          controllerNodeArgs: nodeArgs,
          controllerEnv,
          aws,
          pods: webhookPods,
          log,
        });
      } catch (error) {
        log(`webhook workload failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exitCode = 1;
      }
    }
  } finally {
    await aws.close();
  }
  const final: RunInfo = { ...info, load: { ...info.load, end: loadAverage() } };
  const markdown = writeReports(dir, final, results) + (webhook === undefined ? '' : `\n${renderWebhookMarkdown(webhook)}`);
  if (webhook !== undefined) writeFileSync(join(dir, 'report.md'), markdown);
  process.stdout.write(`\n${markdown}`);
  log(`done in ${Math.round((Date.now() - started) / 1000)} s; .cache/bench/report.md, report.json, chart.svg`);
  if (process.env['BENCH_PUBLISH'] === '1') publish(dir, renderMarkdown(final, results, { conditions: false }));
  if (results.some((r) => r.coldStartSeconds === null)) process.exitCode = 1;
}

await main();
