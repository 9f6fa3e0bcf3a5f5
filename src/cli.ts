#!/usr/bin/env node
// The kube-ecrlogin command: parses flags and environment once, then runs a command.
// Exit codes: 0 success; 1 failure (a `once` pass with failures, an unhealthy doctor, a start-up
// error such as an invalid ConfigMap, a `run` that lost its Lease to another holder); 2 bad flags
// or environment.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { once, run, type Running } from './app.ts';
import { doctor } from './doctor.ts';
import { parseOptions, usage, UsageError, type Options } from './config/options.ts';
import { InvalidConfigError } from './config/source.ts';
import { errorMessage } from './log.ts';

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function inClusterNamespace(): string | undefined {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  let options: Options;
  try {
    const ns = inClusterNamespace();
    options = parseOptions(argv, { env: process.env, hostname: hostname(), ...(ns !== undefined ? { inClusterNamespace: ns } : {}) });
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`kube-ecrlogin: ${error.message}\n\n${usage}`);
      return 2;
    }
    throw error;
  }
  try {
    switch (options.command) {
      case 'help':
        process.stdout.write(usage);
        return 0;
      case 'version':
        process.stdout.write(`kube-ecrlogin ${version()}\n`);
        return 0;
      case 'uninstall': {
        const { runUninstall } = await import('./uninstall.ts');
        return await runUninstall(options, process.stdout);
      }
      case 'once': {
        const summary = await once(options);
        for (const { namespace, error } of summary.failed) process.stderr.write(`kube-ecrlogin: ${namespace}: ${error}\n`);
        return summary.failed.length === 0 ? 0 : 1;
      }
      case 'doctor':
        return await doctor(options, process.stdout);
      case 'run': {
        const started: { running?: Running } = {};
        const shutdown = (signal: string): void => {
          // Before the caches have synced nothing is in flight and no Lease is held: just leave.
          if (started.running === undefined) process.exit(0);
          started.running.parts.log.info('Received signal', { signal });
          void started.running.stop();
        };
        process.once('SIGTERM', () => shutdown('SIGTERM'));
        process.once('SIGINT', () => shutdown('SIGINT'));
        started.running = await run(options);
        const reason = await started.running.done;
        // Work abandoned at --shutdown-timeout (an AWS call that never answers) must not keep the process alive.
        setTimeout(() => process.exit(), 1_000).unref();
        return reason === 'lost-leadership' ? 1 : 0;
      }
    }
  } catch (error) {
    if (error instanceof InvalidConfigError) {
      process.stderr.write(`kube-ecrlogin: refusing to start: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`kube-ecrlogin: ${errorMessage(error)}\n`);
    return 1;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`kube-ecrlogin: ${errorMessage(error)}\n`);
      process.exitCode = 1;
    },
  );
}
