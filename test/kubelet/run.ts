// `make test-kubelet`: real Pods pulling real images with kube-ecrlogin's Secrets (scenarios.ts).
//
// Skips itself, with one line and exit 0, where it cannot run: not root, not Linux, no overlay
// filesystem, or containerd and runc neither installed nor installable from the distribution (apt).
// Otherwise it builds the kubelet beside the other Kubernetes binaries (cached by version), runs the
// scenarios with node:test, and then sweeps whatever the run recorded in its ledger, whether the
// scenarios passed, failed, crashed or were interrupted (Ctrl-C).
//
//   node test/kubelet/run.ts [node --test options, e.g. --test-name-pattern=rotation]

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ensureBinaries, kubeMinor, repoRoot } from '../cluster/controlplane.ts';
import { Ledger, sweep } from './machine.ts';
import { ledgerFile } from './node.ts';
import { cannotRun } from './preflight.ts';

const started = Date.now();
const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(0)} s`;
const log = (message: string): void => {
  process.stderr.write(`test-kubelet: ${message}\n`);
};

function skip(reason: string): never {
  process.stdout.write(`test-kubelet: skipped: ${reason}\n`);
  process.exit(0);
}

const readable = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

const has = (command: string): boolean => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;

/** Commands the run needs, and the Debian package of each. */
const packages: Record<string, string> = {
  containerd: 'containerd',
  ctr: 'containerd',
  'containerd-shim-runc-v2': 'containerd',
  runc: 'runc',
  openssl: 'openssl',
};

function install(): void {
  const wanted = [
    ...new Set(
      Object.entries(packages)
        .filter(([command]) => !has(command))
        .map(([, pkg]) => pkg),
    ),
  ];
  if (wanted.length === 0) return;
  if (!has('apt-get')) skip(`${wanted.join(', ')} missing and no apt-get to install them`);
  log(`installing ${wanted.join(', ')} from the distribution`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const aptInstall = (): boolean =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...wanted], { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
  if (!aptInstall()) {
    spawnSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (!aptInstall()) skip(`containerd and runc cannot be installed (apt-get install ${wanted.join(' ')} failed)`);
  }
  const still = Object.keys(packages).filter((command) => !has(command));
  if (still.length > 0) skip(`containerd and runc cannot be installed (${still.join(', ')} still missing)`);
}

/** Fails (not skips) when 127.0.0.1:443 is taken: the registry must listen there. */
async function checkPort443(): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        new Error(
          `127.0.0.1:443 is not free (${error.code ?? error.message}): the registry must listen there, since an auths key without a port matches no image reference with one`,
        ),
      );
    });
    server.listen(443, '127.0.0.1', () => {
      server.close(() => resolve());
    });
  });
}

async function main(): Promise<number> {
  const reason = cannotRun({ platform: process.platform, uid: process.getuid?.(), filesystems: readable('/proc/filesystems') });
  if (reason !== undefined) skip(reason);
  install();

  const stale = Ledger.load(ledgerFile);
  if (stale !== undefined) {
    log('sweeping what an earlier run left');
    await sweep(stale);
  }
  await checkPort443();

  const minor = kubeMinor();
  const building = Date.now();
  ensureBinaries(minor, ['kubelet']);
  log(`Kubernetes ${minor} binaries with the kubelet ready in ${seconds(building)}`);

  const testing = Date.now();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true; // the scenarios get the signal too (same process group); the sweep follows their exit
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const child = spawn(
    process.execPath,
    [
      '--enable-source-maps',
      '--disable-warning=ExperimentalWarning',
      '--test',
      '--test-timeout=600000',
      ...process.argv.slice(2),
      join('test', 'kubelet', 'scenarios.ts'),
    ],
    { cwd: repoRoot, stdio: 'inherit', env: { ...process.env, KUBE_VERSION: minor } },
  );
  const code = await new Promise<number>((resolve) => child.on('exit', (status, signal) => resolve(status ?? (signal !== null ? 1 : 0))));

  const ledger = Ledger.load(ledgerFile);
  if (ledger !== undefined) {
    log('sweeping what the scenarios left');
    const problems = await sweep(ledger);
    if (problems.length > 0) {
      log(`cleanup problems: ${problems.join('; ')}`);
      return 1;
    }
    rmSync(ledgerFile, { force: true });
  }
  log(`${code === 0 ? 'passed' : interrupted ? 'interrupted' : 'FAILED'}: scenarios ${seconds(testing)}, total ${seconds(started)}`);
  return interrupted ? 130 : code;
}

process.exitCode = await main();
