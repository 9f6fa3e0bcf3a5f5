#!/usr/bin/env node
// The kube-ecrlogin command: parses flags and environment once, then runs a command.
// Exit codes: 0 success; 1 failure (a `once` pass with failures, an unhealthy doctor, a start-up
// error such as an invalid ConfigMap, a `run` that lost its Lease to another holder, a Node.js older
// than 24); 2 bad flags or environment.
//
// This is the entry point, and it checks the Node.js version first: on Node 20 a dependency fails
// while it loads (`Cannot read properties of undefined (reading 'bind')`). So it imports statically
// only node: built-ins, leaf modules that import nothing else, and types; everything else is imported
// in main(), after the check.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Running } from './app.ts';
import type { Options } from './config/options.ts';
import { version } from './version.ts';

/** The oldest Node.js major this runs on (package.json `engines`). */
const minimumNodeMajor = 24;

const nodeMajor = Number(process.versions.node.split('.')[0]);
if (!(nodeMajor >= minimumNodeMajor)) {
  process.stderr.write(`kube-ecrlogin needs Node.js ${minimumNodeMajor} or later; this is Node.js ${process.versions.node} (${process.execPath})\n`);
  process.exit(1);
}

function inClusterNamespace(): string | undefined {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const { commandIn, commandUsage, parseOptions, UsageError } = await import('./config/options.ts');
  const { InvalidConfigError } = await import('./config/source.ts');
  const { errorMessage } = await import('./log.ts');
  let options: Options;
  try {
    const ns = inClusterNamespace();
    options = parseOptions(argv, { env: process.env, hostname: hostname(), ...(ns !== undefined ? { inClusterNamespace: ns } : {}) });
  } catch (error) {
    if (error instanceof UsageError) {
      // The error, and where help is: not the whole help, which would bury the error.
      const command = commandIn(argv);
      const help = command === undefined ? 'kube-ecrlogin --help' : `kube-ecrlogin ${command} --help`;
      process.stderr.write(`kube-ecrlogin: ${error.message}\nRun '${help}' for usage.\n`);
      return 2;
    }
    throw error;
  }
  try {
    switch (options.command) {
      case 'help':
        process.stdout.write(commandUsage(options.helpTopic));
        return 0;
      case 'version':
        process.stdout.write(`kube-ecrlogin ${version()}\n`);
        return 0;
      case 'uninstall': {
        const { runUninstall } = await import('./uninstall.ts');
        return await runUninstall(options, process.stdout);
      }
      case 'once': {
        const { once } = await import('./app.ts');
        const summary = await once(options);
        for (const { namespace, error } of summary.failed) process.stderr.write(`kube-ecrlogin: ${namespace}: ${error}\n`);
        return summary.failed.length === 0 ? 0 : 1;
      }
      case 'doctor': {
        const { doctor } = await import('./doctor.ts');
        return await doctor(options, process.stdout);
      }
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
        const { run } = await import('./app.ts');
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
    async (error: unknown) => {
      const { errorMessage } = await import('./log.ts');
      process.stderr.write(`kube-ecrlogin: ${errorMessage(error)}\n`);
      process.exitCode = 1;
    },
  );
}
