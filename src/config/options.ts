// Command-line flags and environment, parsed once into a validated, frozen Options, or a usage error
// (exit code 2). Pure: argv and env are passed in.

import { parseArgs } from 'node:util';
import { dnsSubdomainProblem } from '../validation.ts';
import { parseRegistryHost, type RegistryHost } from '../registry.ts';
import { parseDuration } from './duration.ts';
import { logLevels, type LogLevel } from './settings.ts';

export type Command = 'run' | 'once' | 'doctor' | 'help' | 'version' | 'uninstall';

/** A fixed target, no annotation needed: the original kube-ecrlogin's CronJob (AWS_ECR_SERVER -> regcred). */
export interface StaticTarget {
  readonly namespace: string;
  readonly registries: readonly RegistryHost[];
  readonly secretName: string;
  readonly serviceAccounts: readonly string[];
  /** Take over a same-named Secret that the original kube-ecrlogin wrote (see secrets.ts isOriginalLogin). */
  readonly adopt: boolean;
}

export interface Options {
  readonly command: Command;
  /** uninstall: act (--yes); without it, a dry run. */
  readonly yes: boolean;
  readonly kubeconfig?: string;
  /** The controller's own namespace: its ConfigMap, Lease and Events live here. */
  readonly namespace: string;
  readonly configMap: string;
  readonly namespaceSelector?: string;
  /** The admission policy's parameter ConfigMap in the controller's namespace, kept by the leader. */
  readonly admissionParams?: string;
  /** The mutating admission webhook for Pods (--webhook), served by every replica. */
  readonly webhook?: WebhookOptions;
  readonly workers: number;
  readonly leaderElect: boolean;
  readonly leaseName: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly metricsAddress?: HostPort;
  readonly healthAddress?: HostPort;
  readonly resyncMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly awsTimeoutMs: number;
  readonly awsRetries: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel?: LogLevel;
  readonly instance: string;
  readonly target?: StaticTarget;
  /** doctor: print JSON instead of a table. */
  readonly json: boolean;
  /** No policy ConfigMap, or one without config.yaml, at start denies every request (fail closed). */
  readonly requirePolicy: boolean;
  /** help: the command whose help was asked for (`run --help`); absent: the whole help. */
  readonly helpTopic?: string;
  /** The ConfigMap in the controller's namespace where the leader publishes its status for the doctor. */
  readonly statusConfigMap: string;
  /** The status is written only when it changed, and at most this often, ms. */
  readonly statusIntervalMs: number;
}

export interface WebhookOptions {
  readonly address: HostPort;
  /** DNS names and IP addresses the serving certificate names. */
  readonly hosts: readonly string[];
  /** The Secret in the controller's namespace holding the CA and serving certificate. */
  readonly secret: string;
  /** self-signed: the controller makes and rotates them; external: another (cert-manager) does. */
  readonly certs: 'self-signed' | 'external';
  /** The MutatingWebhookConfiguration whose caBundle the controller keeps (self-signed). */
  readonly configuration: string;
  readonly certLifetimeMs: number;
  /** On shutdown, keep answering admissions this long after readiness turned off. */
  readonly shutdownDelayMs: number;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** The original kube-ecrlogin's static target, read by `run`, `once` and `doctor`. */
const staticTargetFlags = ['target-registries', 'target-namespace', 'target-secret-name', 'target-service-accounts', 'target-adopt'];

/** What each command is for, and the flags it reads (the rest of the help is about other commands). */
const commandHelp: Readonly<Record<string, { readonly summary: string; readonly flags: readonly string[] }>> = {
  run: {
    summary: 'Runs the controller: keeps a pull Secret fresh for every annotated Namespace and ServiceAccount.',
    flags: [
      'kubeconfig',
      'namespace',
      'config-map',
      'require-policy',
      'namespace-selector',
      'admission-params',
      'workers',
      'leader-elect',
      'lease-name',
      'lease-duration',
      'renew-deadline',
      'retry-period',
      'metrics-bind-address',
      'health-probe-bind-address',
      'resync-period',
      'backoff-base',
      'backoff-max',
      'aws-timeout',
      'aws-retries',
      'shutdown-timeout',
      'log-level',
      'status-config-map',
      'status-interval',
      'webhook',
      'webhook-bind-address',
      'webhook-service',
      'webhook-cert-hosts',
      'webhook-cert-secret',
      'webhook-certs',
      'webhook-configuration',
      'webhook-cert-lifetime',
      'webhook-shutdown-delay',
      ...staticTargetFlags,
    ],
  },
  once: {
    summary: 'One pass over every annotated object, then exit; non-zero if any failed (the CronJob mode).',
    flags: [
      'kubeconfig',
      'namespace',
      'config-map',
      'require-policy',
      'namespace-selector',
      'workers',
      'aws-timeout',
      'aws-retries',
      'shutdown-timeout',
      'log-level',
      ...staticTargetFlags,
    ],
  },
  doctor: {
    summary:
      'Checks the running controller (Deployment, Pods, Lease, version, config in force, last errors), RBAC,\n' +
      'the AWS identity, ECR and the policy ConfigMap, and lists every annotated object. Reads only.\n' +
      'Pass the flags the controller runs with, so that it checks what that controller needs.',
    flags: [
      'kubeconfig',
      'namespace',
      'config-map',
      'require-policy',
      'namespace-selector',
      'admission-params',
      'leader-elect',
      'lease-name',
      'status-config-map',
      'aws-timeout',
      'aws-retries',
      'json',
      'webhook',
      'webhook-cert-secret',
      'webhook-certs',
      'webhook-configuration',
      ...staticTargetFlags,
    ],
  },
  version: { summary: 'Prints the version.', flags: [] },
  uninstall: {
    summary: 'Removes every Secret and imagePullSecrets entry kube-ecrlogin made, and nothing else; a dry run\n' + 'unless --yes. Stop the controller first.',
    flags: ['kubeconfig', 'namespace', 'namespace-selector', 'yes'],
  },
};

/** The command named in argv, if any (for a usage error's pointer to that command's help). */
export function commandIn(argv: readonly string[]): string | undefined {
  return argv.find((arg) => Object.hasOwn(commandHelp, arg));
}

/**
 * The help of one command: what it does and the lines of `usage` for the flags it reads, under the
 * same headings. Without a command (or for one not described here), the whole help.
 */
export function commandUsage(command?: string): string {
  const help = command === undefined ? undefined : commandHelp[command];
  if (command === undefined || help === undefined) return usage;
  const out = [`Usage: kube-ecrlogin ${command}${help.flags.length > 0 ? ' [flags]' : ''}`, '', help.summary];
  // usage's flag sections: a heading line ("Flags (...):"), then "  --flag ..." lines, each followed by
  // its indented continuation lines; a blank line ends a section.
  let heading: string | undefined;
  let section: string[] = [];
  let keep = false;
  const flush = (): void => {
    if (section.length > 0) out.push('', ...(heading !== undefined ? [heading] : []), ...section);
    section = [];
  };
  for (const line of usage.split('\n').slice(usage.split('\n').findIndex((l) => l.startsWith('Flags')))) {
    if (line === '') {
      flush();
      heading = undefined;
      continue;
    }
    if (!line.startsWith(' ')) {
      heading = line;
      continue;
    }
    const flag = /^ {2}(?:-\w, )?--([\w-]+)/.exec(line)?.[1];
    if (flag !== undefined) keep = flag === 'help' || help.flags.includes(flag);
    if (keep) section.push(line);
  }
  flush();
  return `${out.join('\n')}\n`;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const usage = `Usage: kube-ecrlogin <command> [flags]

Keeps AWS ECR pull Secrets fresh for annotated Namespaces and ServiceAccounts.

Commands:
  run       run the controller (default)
  once      one pass over every annotated object, then exit; non-zero if any failed (CronJob mode)
  doctor    check the running controller, AWS identity, ECR, RBAC and config; list annotated objects
  version   print the version
  uninstall remove every Secret and imagePullSecrets entry kube-ecrlogin made, and nothing else;
            a dry run unless --yes (stop the controller first)

Run 'kube-ecrlogin <command> --help' for the flags of one command.

Flags (environment variable in brackets):
  --kubeconfig PATH                 kubeconfig file; default in-cluster [KUBECONFIG]
  --namespace NAME                  the controller's namespace [POD_NAMESPACE] (default: in-cluster namespace, else kube-ecrlogin)
  --config-map NAME                 policy ConfigMap in that namespace (default kube-ecrlogin-config)
  --require-policy                  a missing policy ConfigMap, or one without config.yaml, denies every
                                    request (at start and after a restart) instead of meaning the
                                    defaults (no rules: allow all); serving starts once a valid one appears
  --namespace-selector SELECTOR     only serve namespaces with these labels, e.g. env=prod
  --admission-params NAME           keep the admission policy's parameter ConfigMap NAME in the
                                    controller's namespace (the admission-policy component sets it)
  --workers N                       concurrent reconciles (default 4)
  --leader-elect                    elect a leader on a Lease; only the leader writes
  --lease-name NAME                 (default kube-ecrlogin)
  --lease-duration DURATION         (default 15s)
  --renew-deadline DURATION         (default 10s)
  --retry-period DURATION           (default 2s)
  --metrics-bind-address ADDR       Prometheus metrics on ADDR/metrics; 0 disables (default :8080)
  --health-probe-bind-address ADDR  /healthz and /readyz on ADDR; 0 disables (default :8081)
  --resync-period DURATION          reconcile every namespace at least this often (default 10m)
  --backoff-base DURATION           first retry delay after a failure (default 1s)
  --backoff-max DURATION            longest retry delay (default 5m)
  --aws-timeout DURATION            timeout of one AWS request (default 10s)
  --aws-retries N                   retries of a throttled or failed AWS request (default 3)
  --shutdown-timeout DURATION       wait this long for in-flight work on SIGTERM (default 30s)
  --log-level LEVEL                 error, warn, info, debug; overrides the ConfigMap's logLevel [LOG_LEVEL]
  --status-config-map NAME          ConfigMap in the controller's namespace where the leader publishes its
                                    status for the doctor (default kube-ecrlogin-status)
  --status-interval DURATION        write that status only when it changed, at most this often (default 10s)
  --json                            doctor: print JSON
  --yes                             uninstall: do it (without it, only say what would be done)

Admission webhook (the admission-webhook component sets these):
  --webhook                         serve the mutating admission webhook for Pods (every replica)
  --webhook-bind-address ADDR       (default :9443)
  --webhook-service NAME            its Service, named in the certificate (default kube-ecrlogin-webhook)
  --webhook-cert-hosts HOSTS        more DNS names or IP addresses for the certificate, comma-separated
  --webhook-cert-secret NAME        Secret holding the CA and certificate (default kube-ecrlogin-webhook-tls)
  --webhook-certs MODE              self-signed (default: made and rotated here) or external (cert-manager)
  --webhook-configuration NAME      MutatingWebhookConfiguration whose caBundle is kept (default kube-ecrlogin)
  --webhook-cert-lifetime DURATION  serving certificate lifetime; the CA lives 4 times as long (default 8760h)
  --webhook-shutdown-delay DURATION keep answering this long after readiness turns off (default 5s)

Static target (the original kube-ecrlogin's mode, no annotation needed):
  --target-registries HOSTS         ECR hosts, comma-separated [AWS_ECR_SERVER]
  --target-namespace NAME           where the Secret goes (default: the controller's namespace)
  --target-secret-name NAME         (default regcred)
  --target-service-accounts NAMES   ServiceAccounts to patch, comma-separated (default none)
  --target-adopt                    take over a same-named Secret the original kube-ecrlogin wrote
                                    (a docker-registry Secret for these hosts only, user AWS)

  -h, --help                        show this help
  -v, --version                     print the version
`;

const flags = {
  kubeconfig: { type: 'string' },
  namespace: { type: 'string' },
  'config-map': { type: 'string' },
  'require-policy': { type: 'boolean' },
  'namespace-selector': { type: 'string' },
  'admission-params': { type: 'string' },
  webhook: { type: 'boolean' },
  'webhook-bind-address': { type: 'string' },
  'webhook-service': { type: 'string' },
  'webhook-cert-hosts': { type: 'string' },
  'webhook-cert-secret': { type: 'string' },
  'webhook-certs': { type: 'string' },
  'webhook-configuration': { type: 'string' },
  'webhook-cert-lifetime': { type: 'string' },
  'webhook-shutdown-delay': { type: 'string' },
  workers: { type: 'string' },
  'leader-elect': { type: 'boolean' },
  'lease-name': { type: 'string' },
  'lease-duration': { type: 'string' },
  'renew-deadline': { type: 'string' },
  'retry-period': { type: 'string' },
  'metrics-bind-address': { type: 'string' },
  'health-probe-bind-address': { type: 'string' },
  'resync-period': { type: 'string' },
  'backoff-base': { type: 'string' },
  'backoff-max': { type: 'string' },
  'aws-timeout': { type: 'string' },
  'aws-retries': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  'log-level': { type: 'string' },
  'status-config-map': { type: 'string' },
  'status-interval': { type: 'string' },
  'target-registries': { type: 'string' },
  'target-namespace': { type: 'string' },
  'target-secret-name': { type: 'string' },
  'target-service-accounts': { type: 'string' },
  'target-adopt': { type: 'boolean' },
  json: { type: 'boolean' },
  yes: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export interface Environment {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The namespace of an in-cluster pod, if known. */
  readonly inClusterNamespace?: string;
  readonly hostname: string;
}

export function parseOptions(argv: readonly string[], environment: Environment): Options {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: flags, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const env = environment.env;
  if (positionals.length > 1) throw new UsageError(`unexpected arguments: ${positionals.slice(1).join(' ')}`);
  let command: Command = 'run';
  const positional = positionals[0];
  if (positional !== undefined) {
    if (!['run', 'once', 'doctor', 'version', 'help', 'uninstall'].includes(positional)) {
      throw new UsageError(`unknown command ${JSON.stringify(positional)} (commands: run, once, doctor, version, uninstall)`);
    }
    command = positional as Command;
  }
  const helpTopic = values.help === true ? positional : undefined;
  if (values.help) command = 'help';
  else if (values.version) command = 'version';
  if (values.yes === true && command !== 'uninstall') throw new UsageError('--yes is for uninstall only');

  const namespace = values.namespace ?? env['POD_NAMESPACE'] ?? environment.inClusterNamespace ?? 'kube-ecrlogin';
  name('--namespace', namespace);
  const configMap = values['config-map'] ?? 'kube-ecrlogin-config';
  name('--config-map', configMap);

  const leaseDurationMs = duration('--lease-duration', values['lease-duration'] ?? '15s', 1_000);
  const renewDeadlineMs = duration('--renew-deadline', values['renew-deadline'] ?? '10s', 500);
  const retryPeriodMs = duration('--retry-period', values['retry-period'] ?? '2s', 100);
  if (!(retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs)) {
    throw new UsageError('need --retry-period < --renew-deadline < --lease-duration');
  }
  const backoffBaseMs = duration('--backoff-base', values['backoff-base'] ?? '1s', 1);
  const backoffMaxMs = duration('--backoff-max', values['backoff-max'] ?? '5m', 1);
  if (backoffMaxMs < backoffBaseMs) throw new UsageError('--backoff-max is shorter than --backoff-base');

  const logLevelValue = values['log-level'] ?? env['LOG_LEVEL'];
  let logLevel: LogLevel | undefined;
  if (logLevelValue !== undefined) {
    logLevel = logLevels.find((level) => level === logLevelValue);
    if (logLevel === undefined) throw new UsageError(`--log-level ${JSON.stringify(logLevelValue)} is not one of ${logLevels.join(', ')}`);
  }

  const metricsAddress = address('--metrics-bind-address', values['metrics-bind-address'] ?? ':8080');
  const healthAddress = address('--health-probe-bind-address', values['health-probe-bind-address'] ?? ':8081');
  const kubeconfig = values.kubeconfig ?? env['KUBECONFIG'];
  const namespaceSelector = values['namespace-selector'];
  if (namespaceSelector !== undefined && !/^[\w./!=,() -]+$/.test(namespaceSelector)) {
    throw new UsageError(`--namespace-selector ${JSON.stringify(namespaceSelector)} is not a label selector`);
  }
  const target = staticTarget(values, env, namespace);
  const admissionParams = values['admission-params'];
  if (admissionParams !== undefined) name('--admission-params', admissionParams);
  const statusConfigMap = values['status-config-map'] ?? 'kube-ecrlogin-status';
  name('--status-config-map', statusConfigMap);
  // The status is written over whatever it names: never the policy or the admission parameters.
  for (const [flag, other] of [
    ['--config-map', configMap],
    ['--admission-params', admissionParams],
  ] as const) {
    if (statusConfigMap === other)
      throw new UsageError(`--status-config-map ${JSON.stringify(statusConfigMap)} is the ${flag} ConfigMap: give the status its own`);
  }
  const webhook = webhookOptions(values, namespace);

  return Object.freeze({
    command,
    namespace,
    configMap,
    workers: integer('--workers', values.workers ?? '4', 1, 64),
    leaderElect: values['leader-elect'] ?? false,
    leaseName: values['lease-name'] ?? 'kube-ecrlogin',
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    resyncMs: duration('--resync-period', values['resync-period'] ?? '10m', 1_000),
    backoffBaseMs,
    backoffMaxMs,
    awsTimeoutMs: duration('--aws-timeout', values['aws-timeout'] ?? '10s', 100),
    awsRetries: integer('--aws-retries', values['aws-retries'] ?? '3', 0, 10),
    shutdownTimeoutMs: duration('--shutdown-timeout', values['shutdown-timeout'] ?? '30s', 0),
    instance: env['POD_NAME'] ?? environment.hostname,
    json: values.json ?? false,
    yes: values.yes ?? false,
    requirePolicy: values['require-policy'] ?? false,
    statusConfigMap,
    statusIntervalMs: duration('--status-interval', values['status-interval'] ?? '10s', 1_000),
    ...(helpTopic !== undefined ? { helpTopic } : {}),
    ...(kubeconfig !== undefined && kubeconfig !== '' ? { kubeconfig } : {}),
    ...(namespaceSelector !== undefined ? { namespaceSelector } : {}),
    ...(admissionParams !== undefined ? { admissionParams } : {}),
    ...(webhook !== undefined ? { webhook } : {}),
    ...(metricsAddress !== undefined ? { metricsAddress } : {}),
    ...(healthAddress !== undefined ? { healthAddress } : {}),
    ...(logLevel !== undefined ? { logLevel } : {}),
    ...(target !== undefined ? { target } : {}),
  });
}

function staticTarget(
  values: {
    'target-registries'?: string | undefined;
    'target-namespace'?: string | undefined;
    'target-secret-name'?: string | undefined;
    'target-service-accounts'?: string | undefined;
    'target-adopt'?: boolean | undefined;
  },
  env: Readonly<Record<string, string | undefined>>,
  ownNamespace: string,
): StaticTarget | undefined {
  const hostsText = values['target-registries'] ?? env['AWS_ECR_SERVER'];
  if (hostsText === undefined || hostsText.trim() === '') {
    for (const flag of ['target-namespace', 'target-secret-name', 'target-service-accounts', 'target-adopt'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} needs --target-registries (or AWS_ECR_SERVER)`);
    }
    return undefined;
  }
  const registries = hostsText
    .split(',')
    .map((host) => host.trim())
    .filter((host) => host !== '')
    .map((host) => {
      const parsed = parseRegistryHost(host);
      if (!parsed.ok) throw new UsageError(`--target-registries / AWS_ECR_SERVER: ${parsed.error}`);
      return parsed.value;
    });
  // As for the ecr-login/server annotation: a target with no registry, or one twice, is a mistake.
  if (registries.length === 0) throw new UsageError('--target-registries / AWS_ECR_SERVER: names no registry host');
  const twice = registries.find((registry, index) => registries.findIndex((r) => r.host === registry.host) !== index);
  if (twice !== undefined) throw new UsageError(`--target-registries / AWS_ECR_SERVER: lists ${JSON.stringify(twice.host)} twice`);
  const namespace = values['target-namespace'] ?? ownNamespace;
  name('--target-namespace', namespace);
  const secretName = values['target-secret-name'] ?? 'regcred';
  name('--target-secret-name', secretName);
  const serviceAccounts = (values['target-service-accounts'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const sa of serviceAccounts) name('--target-service-accounts', sa);
  return { namespace, registries, secretName, serviceAccounts, adopt: values['target-adopt'] ?? false };
}

function webhookOptions(
  values: {
    webhook?: boolean | undefined;
    'webhook-bind-address'?: string | undefined;
    'webhook-service'?: string | undefined;
    'webhook-cert-hosts'?: string | undefined;
    'webhook-cert-secret'?: string | undefined;
    'webhook-certs'?: string | undefined;
    'webhook-configuration'?: string | undefined;
    'webhook-cert-lifetime'?: string | undefined;
    'webhook-shutdown-delay'?: string | undefined;
  },
  namespace: string,
): WebhookOptions | undefined {
  if (values.webhook !== true) {
    const stray = (Object.keys(values) as (keyof typeof values)[]).find((key) => key.startsWith('webhook-') && values[key] !== undefined);
    if (stray !== undefined) throw new UsageError(`--${stray} needs --webhook`);
    return undefined;
  }
  const address_ = address('--webhook-bind-address', values['webhook-bind-address'] ?? ':9443');
  if (address_ === undefined) throw new UsageError('--webhook-bind-address cannot be 0 with --webhook');
  const service = values['webhook-service'] ?? 'kube-ecrlogin-webhook';
  name('--webhook-service', service);
  const extra = (values['webhook-cert-hosts'] ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  for (const host of extra) {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/i.test(host) && !/^[0-9a-f:]+$/i.test(host)) {
      throw new UsageError(`--webhook-cert-hosts: ${JSON.stringify(host)} is not a DNS name or IP address`);
    }
  }
  const secret = values['webhook-cert-secret'] ?? 'kube-ecrlogin-webhook-tls';
  name('--webhook-cert-secret', secret);
  const certs = values['webhook-certs'] ?? 'self-signed';
  if (certs !== 'self-signed' && certs !== 'external') throw new UsageError(`--webhook-certs ${JSON.stringify(certs)} is not one of self-signed, external`);
  const configuration = values['webhook-configuration'] ?? 'kube-ecrlogin';
  name('--webhook-configuration', configuration);
  return {
    address: address_,
    hosts: [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, ...extra],
    secret,
    certs,
    configuration,
    certLifetimeMs: duration('--webhook-cert-lifetime', values['webhook-cert-lifetime'] ?? '8760h', 10_000),
    shutdownDelayMs: duration('--webhook-shutdown-delay', values['webhook-shutdown-delay'] ?? '5s', 0),
  };
}

function name(flag: string, value: string): void {
  const problem = dnsSubdomainProblem(value);
  if (problem !== undefined) throw new UsageError(`${flag}: ${problem}`);
}

function duration(flag: string, text: string, minimumMs: number): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`${flag} ${JSON.stringify(text)} is not a duration (e.g. 500ms, 30s, 5m, 1h)`);
  if (ms < minimumMs) throw new UsageError(`${flag} must be at least ${minimumMs} ms`);
  return ms;
}

function integer(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new UsageError(`${flag} ${JSON.stringify(text)} is not a whole number from ${min} to ${max}`);
  return n;
}

/** ":8080", "127.0.0.1:8080", "[::1]:8080", or "0" (disabled). */
function address(flag: string, text: string): HostPort | undefined {
  if (text === '0') return undefined;
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([\w.-]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port > 65_535) throw new UsageError(`${flag} ${JSON.stringify(text)} is not [host]:port or 0`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}
