// What the controller's process costs before it does any work: the peak resident memory and the time of
// `node` doing nothing, of `node` loading the built-in modules the bundle imports, and of the bundle
// loaded whole (`--version` evaluates every module in it, then exits), without and with Node's compile
// cache (NODE_COMPILE_CACHE, filled by one earlier run). Each with the image's Node flags, 5 runs each,
// the median. Run: `node test/bench/baseline.ts` (Node 24: node_modules/.bin/node).

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '../cluster/controlplane.ts';
import { buildImageApp, imageRuntime } from './image-runtime.ts';

const dir = join(repoRoot, '.cache', 'bench', 'baseline');
rmSync(dir, { recursive: true, force: true });
const meta = join(dir, 'meta.json');
const bundle = buildImageApp(join(dir, 'app'), repoRoot, [`--metafile=${meta}`]);
const cache = join(dir, 'compile-cache');
const { nodeArgs } = imageRuntime();

// The built-in modules the bundle imports (esbuild's record of its external imports).
const outputs = (JSON.parse(readFileSync(meta, 'utf8')) as { outputs: Record<string, { imports: { path: string; external?: boolean }[] }> }).outputs;
const output = Object.entries(outputs).find(([path]) => path.endsWith('.mjs'))?.[1];
const builtins = [...new Set((output?.imports ?? []).filter((i) => i.external === true).map((i) => i.path.replace(/^node:/, '')))].filter((name) =>
  isBuiltin(name),
);

/** Peak RSS (MiB) and wall time (s) of one `node` run, read by the process itself as it exits. */
function measure(args: readonly string[], env: Record<string, string> = {}): { rssMiB: number; seconds: number } {
  const report = "process.on('exit',()=>process.stderr.write('\\nmaxrss '+process.resourceUsage().maxRSS+'\\n'))";
  const started = process.hrtime.bigint();
  const { stderr } = spawnSync(process.execPath, [...nodeArgs, '--import', `data:text/javascript,${encodeURIComponent(report)}`, ...args], {
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const kib = Number(/maxrss (\d+)/.exec(stderr)?.[1]);
  return { rssMiB: kib / 1024, seconds };
}

function median(runs: readonly number[]): number {
  const sorted = [...runs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const cases: { name: string; args: string[]; env?: Record<string, string>; prepare?: () => void }[] = [
  { name: 'node, nothing loaded', args: ['-e', ''] },
  {
    name: `node, the ${builtins.length} built-in modules the bundle imports`,
    args: ['-e', builtins.map((b) => `require(${JSON.stringify(`node:${b}`)})`).join(';')],
  },
  { name: 'the bundle loaded (--version)', args: [bundle, '--version'] },
  {
    name: 'the bundle loaded, with a compile cache',
    args: [bundle, '--version'],
    env: { NODE_COMPILE_CACHE: cache },
    prepare: () => {
      mkdirSync(cache, { recursive: true });
      measure([bundle, '--version'], { NODE_COMPILE_CACHE: cache });
    },
  },
];

console.log(`Node ${process.version}, flags ${nodeArgs.join(' ')}; median of 5 runs\n`);
console.log('| process | peak RSS MiB | wall s |\n| --- | ---: | ---: |');
for (const c of cases) {
  c.prepare?.();
  const runs = Array.from({ length: 5 }, () => measure(c.args, c.env));
  console.log(`| ${c.name} | ${median(runs.map((r) => r.rssMiB)).toFixed(1)} | ${median(runs.map((r) => r.seconds)).toFixed(2)} |`);
}
