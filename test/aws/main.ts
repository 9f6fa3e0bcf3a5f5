// Runs the AWS test server as its own process, for benchmarks and chaos runs:
//   node test/aws/main.ts [--port N] [--token-lifetime-seconds S] [--trust-file trust.json]
// (or AWS_TEST_PORT, AWS_TEST_TOKEN_LIFETIME_SECONDS, AWS_TEST_TRUST_FILE). Prints one JSON
// line {"endpoint","pid"} on stdout once listening; other processes then use the /_test/
// control plane (see control.ts). Stops on SIGTERM or SIGINT.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { applyTestConfig, parseTestConfig } from './config.ts';
import { start } from './server.ts';
import type { StartOptions } from './server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env['AWS_TEST_PORT'] ?? '0' },
    'token-lifetime-seconds': { type: 'string', default: process.env['AWS_TEST_TOKEN_LIFETIME_SECONDS'] ?? '43200' },
    'trust-file': { type: 'string', default: process.env['AWS_TEST_TRUST_FILE'] ?? '' },
  },
  strict: true,
});

function positive(name: string, raw: string, allowZero = false): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    console.error(`--${name}: not a valid number: ${raw}`);
    process.exit(2);
  }
  return n;
}

const options: StartOptions = {
  port: positive('port', values.port, true),
  tokenLifetimeSeconds: positive('token-lifetime-seconds', values['token-lifetime-seconds']),
};
const trustFile = values['trust-file'];
const config = trustFile === '' ? undefined : parseTestConfig(JSON.parse(readFileSync(trustFile, 'utf8')) as unknown, dirname(resolve(trustFile)));

const server = await start(options);
if (config !== undefined) applyTestConfig(server, config);
process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint, pid: process.pid })}\n`);

const stop = (): void => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
