// Flags and environment: every flag, its default, and a UsageError (exit 2) for every bad value.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseOptions, usage, UsageError, type Environment, type Options } from '../../../src/config/options.ts';

const numRuns = 2_000;
const east = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const west = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';

const bare: Environment = { env: {}, hostname: 'node-1' };

function parse(argv: string[], environment: Partial<Environment> = {}): Options {
  return parseOptions(argv, { ...bare, ...environment });
}

function usageError(argv: string[], environment: Partial<Environment> = {}): UsageError {
  try {
    const options = parse(argv, environment);
    assert.fail(`expected a UsageError, got ${JSON.stringify(options)}`);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return error;
  }
}

describe('parseOptions: defaults', () => {
  it('with no flags and no environment, runs the controller with the documented defaults', () => {
    const options = parse([]);
    assert.deepEqual(options, {
      command: 'run',
      namespace: 'kube-ecrlogin',
      configMap: 'kube-ecrlogin-config',
      workers: 4,
      leaderElect: false,
      leaseName: 'kube-ecrlogin',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      resyncMs: 600_000,
      backoffBaseMs: 1_000,
      backoffMaxMs: 300_000,
      awsTimeoutMs: 10_000,
      awsRetries: 3,
      shutdownTimeoutMs: 30_000,
      statusConfigMap: 'kube-ecrlogin-status',
      statusIntervalMs: 10_000,
      instance: 'node-1',
      json: false,
      yes: false,
      requirePolicy: false,
      metricsAddress: { host: '0.0.0.0', port: 8080 },
      healthAddress: { host: '0.0.0.0', port: 8081 },
    });
    assert.ok(Object.isFrozen(options));
  });
});

describe('parseOptions: commands', () => {
  const cases: { name: string; argv: string[]; command: Options['command'] }[] = [
    { name: 'run is the default', argv: [], command: 'run' },
    { name: 'once is a command', argv: ['once'], command: 'once' },
    { name: 'doctor is a command', argv: ['doctor', '--json'], command: 'doctor' },
    { name: 'version is a command', argv: ['version'], command: 'version' },
    { name: 'help is a command', argv: ['help'], command: 'help' },
    { name: '-h asks for help whatever the command', argv: ['once', '-h'], command: 'help' },
    { name: '--version asks for the version', argv: ['--version'], command: 'version' },
    { name: '-v asks for the version', argv: ['-v'], command: 'version' },
    { name: 'a command after -- is still the command', argv: ['--', 'once'], command: 'once' },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(parse(c.argv).command, c.command));
  }
});

describe('parseOptions: flags and environment', () => {
  const cases: { name: string; argv: string[]; environment?: Partial<Environment>; expect: Partial<Options> }[] = [
    { name: '--kubeconfig names the kubeconfig', argv: ['--kubeconfig', '/etc/kube/config'], expect: { kubeconfig: '/etc/kube/config' } },
    {
      name: 'KUBECONFIG is read when the flag is absent',
      argv: [],
      environment: { env: { KUBECONFIG: '/home/u/.kube/config' } },
      expect: { kubeconfig: '/home/u/.kube/config' },
    },
    { name: 'the flag wins over KUBECONFIG', argv: ['--kubeconfig=/a'], environment: { env: { KUBECONFIG: '/b' } }, expect: { kubeconfig: '/a' } },
    {
      name: '--namespace sets the controller namespace',
      argv: ['--namespace', 'ops'],
      environment: { env: { POD_NAMESPACE: 'pod-ns' }, inClusterNamespace: 'in-cluster' },
      expect: { namespace: 'ops' },
    },
    {
      name: 'POD_NAMESPACE is next',
      argv: [],
      environment: { env: { POD_NAMESPACE: 'pod-ns' }, inClusterNamespace: 'in-cluster' },
      expect: { namespace: 'pod-ns' },
    },
    { name: 'then the in-cluster namespace', argv: [], environment: { inClusterNamespace: 'in-cluster' }, expect: { namespace: 'in-cluster' } },
    { name: '--config-map names the policy ConfigMap', argv: ['--config-map', 'policy'], expect: { configMap: 'policy' } },
    {
      name: '--namespace-selector is kept',
      argv: ['--namespace-selector', 'env=prod,team!=x,tier in (a, b)'],
      expect: { namespaceSelector: 'env=prod,team!=x,tier in (a, b)' },
    },
    { name: '--workers sets the worker count', argv: ['--workers', '16'], expect: { workers: 16 } },
    { name: '--workers 1 and 64 are the bounds', argv: ['--workers=64'], expect: { workers: 64 } },
    { name: '--leader-elect turns on leader election', argv: ['--leader-elect'], expect: { leaderElect: true } },
    {
      name: 'lease timings are read',
      argv: ['--lease-name', 'kel', '--lease-duration', '60s', '--renew-deadline', '40s', '--retry-period', '5s'],
      expect: { leaseName: 'kel', leaseDurationMs: 60_000, renewDeadlineMs: 40_000, retryPeriodMs: 5_000 },
    },
    {
      name: '--metrics-bind-address with a host',
      argv: ['--metrics-bind-address', '127.0.0.1:9090'],
      expect: { metricsAddress: { host: '127.0.0.1', port: 9090 } },
    },
    {
      name: '--health-probe-bind-address with an IPv6 host',
      argv: ['--health-probe-bind-address', '[::1]:9091'],
      expect: { healthAddress: { host: '::1', port: 9091 } },
    },
    { name: '--resync-period is read', argv: ['--resync-period', '1h'], expect: { resyncMs: 3_600_000 } },
    { name: 'backoff bounds are read', argv: ['--backoff-base', '500ms', '--backoff-max', '1m'], expect: { backoffBaseMs: 500, backoffMaxMs: 60_000 } },
    { name: 'backoff base may equal max', argv: ['--backoff-base', '5s', '--backoff-max', '5s'], expect: { backoffBaseMs: 5_000, backoffMaxMs: 5_000 } },
    { name: 'AWS timeout and retries are read', argv: ['--aws-timeout', '2s', '--aws-retries', '0'], expect: { awsTimeoutMs: 2_000, awsRetries: 0 } },
    { name: '--shutdown-timeout may be zero', argv: ['--shutdown-timeout', '0s'], expect: { shutdownTimeoutMs: 0 } },
    { name: '--log-level is read', argv: ['--log-level', 'debug'], expect: { logLevel: 'debug' } },
    { name: 'LOG_LEVEL is read when the flag is absent', argv: [], environment: { env: { LOG_LEVEL: 'warn' } }, expect: { logLevel: 'warn' } },
    { name: 'the flag wins over LOG_LEVEL', argv: ['--log-level=error'], environment: { env: { LOG_LEVEL: 'bogus' } }, expect: { logLevel: 'error' } },
    { name: 'POD_NAME names the instance', argv: [], environment: { env: { POD_NAME: 'kube-ecrlogin-7d9f' } }, expect: { instance: 'kube-ecrlogin-7d9f' } },
    { name: '--json is read', argv: ['doctor', '--json'], expect: { json: true } },
    { name: '--require-policy makes a missing policy deny everything', argv: ['--require-policy'], expect: { requirePolicy: true } },
    { name: 'doctor reads --require-policy as the controller does', argv: ['doctor', '--require-policy'], expect: { requirePolicy: true } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const options = parse(c.argv, c.environment);
      for (const [key, value] of Object.entries(c.expect)) assert.deepEqual(options[key as keyof Options], value, key);
    });
  }

  it('--help says what --require-policy does', () => {
    assert.match(usage, /^ {2}--require-policy +a missing policy ConfigMap, or one without config\.yaml, denies every\n +request/m);
  });
  it('an empty KUBECONFIG means in-cluster', () => assert.equal('kubeconfig' in parse([], { env: { KUBECONFIG: '' } }), false));
  it('0 disables the metrics and health servers', () => {
    const options = parse(['--metrics-bind-address', '0', '--health-probe-bind-address', '0']);
    assert.equal('metricsAddress' in options, false);
    assert.equal('healthAddress' in options, false);
  });
});

describe('parseOptions: bad values are usage errors', () => {
  const cases: { name: string; argv: string[]; environment?: Partial<Environment>; says: RegExp }[] = [
    { name: 'an unknown flag', argv: ['--wokers', '4'], says: /wokers/ },
    { name: 'a flag without its value', argv: ['--workers'], says: /workers/ },
    { name: 'a value for a boolean flag', argv: ['--leader-elect=yes'], says: /leader-elect/ },
    { name: 'a value for --require-policy', argv: ['--require-policy=false'], says: /require-policy/ },
    { name: 'an unknown command', argv: ['start'], says: /unknown command "start"/ },
    { name: 'two commands', argv: ['run', 'once'], says: /unexpected arguments: once/ },
    { name: 'an invalid --namespace', argv: ['--namespace', 'Kube_ECR'], says: /^--namespace: "Kube_ECR" is not a valid name/ },
    { name: 'an empty POD_NAMESPACE', argv: [], environment: { env: { POD_NAMESPACE: '' } }, says: /^--namespace: is empty/ },
    { name: 'an invalid --config-map', argv: ['--config-map', 'a b'], says: /^--config-map: / },
    { name: 'zero workers', argv: ['--workers', '0'], says: /--workers "0" is not a whole number from 1 to 64/ },
    { name: '65 workers', argv: ['--workers', '65'], says: /from 1 to 64/ },
    { name: 'a fractional worker count', argv: ['--workers', '1.5'], says: /--workers "1.5"/ },
    { name: 'a negative worker count', argv: ['--workers=-1'], says: /--workers "-1"/ },
    { name: 'a worker count in hex', argv: ['--workers', '0x4'], says: /--workers "0x4"/ },
    { name: 'an empty worker count', argv: ['--workers='], says: /--workers ""/ },
    { name: 'eleven AWS retries', argv: ['--aws-retries', '11'], says: /--aws-retries "11" is not a whole number from 0 to 10/ },
    { name: 'a duration without a unit', argv: ['--resync-period', '600'], says: /--resync-period "600" is not a duration/ },
    { name: 'a resync period under a second', argv: ['--resync-period', '999ms'], says: /--resync-period must be at least 1000 ms/ },
    { name: 'an AWS timeout under 100 ms', argv: ['--aws-timeout', '50ms'], says: /--aws-timeout must be at least 100 ms/ },
    { name: 'a zero backoff base', argv: ['--backoff-base', '0s'], says: /--backoff-base must be at least 1 ms/ },
    { name: 'a backoff max below the base', argv: ['--backoff-base', '10s', '--backoff-max', '5s'], says: /--backoff-max is shorter than --backoff-base/ },
    {
      name: 'a renew deadline not under the lease duration',
      argv: ['--lease-duration', '10s', '--renew-deadline', '10s'],
      says: /need --retry-period < --renew-deadline < --lease-duration/,
    },
    { name: 'a retry period not under the renew deadline', argv: ['--retry-period', '10s'], says: /need --retry-period < --renew-deadline/ },
    { name: 'a lease duration under a second', argv: ['--lease-duration', '500ms'], says: /--lease-duration must be at least 1000 ms/ },
    { name: 'an unknown log level', argv: ['--log-level', 'trace'], says: /--log-level "trace" is not one of error, warn, info, debug/ },
    { name: 'an unknown LOG_LEVEL', argv: [], environment: { env: { LOG_LEVEL: 'verbose' } }, says: /"verbose" is not one of/ },
    { name: 'an address without a port', argv: ['--metrics-bind-address', 'localhost'], says: /--metrics-bind-address "localhost" is not \[host\]:port or 0/ },
    { name: 'a port above 65535', argv: ['--health-probe-bind-address', ':65536'], says: /--health-probe-bind-address ":65536"/ },
    { name: 'a port of six digits', argv: ['--metrics-bind-address', ':808080'], says: /is not \[host\]:port/ },
    { name: 'an IPv6 address without brackets', argv: ['--metrics-bind-address', '::1:8080'], says: /is not \[host\]:port/ },
    { name: 'a label selector with a semicolon', argv: ['--namespace-selector', 'a=b;rm'], says: /--namespace-selector "a=b;rm" is not a label selector/ },
    { name: 'an empty label selector', argv: ['--namespace-selector', ''], says: /is not a label selector/ },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}`, () => assert.match(usageError(c.argv, c.environment).message, c.says));
  }
});

describe('parseOptions: the static target (AWS_ECR_SERVER)', () => {
  it('AWS_ECR_SERVER alone gives the original regcred Secret in the controller namespace, patching no ServiceAccount', () => {
    const options = parse([], { env: { AWS_ECR_SERVER: east, POD_NAMESPACE: 'jobs' } });
    assert.deepEqual(
      { ...options.target, registries: options.target?.registries.map((r) => r.host) },
      { namespace: 'jobs', registries: [east], secretName: 'regcred', serviceAccounts: [], adopt: false },
    );
  });

  it("--target-adopt asks to take over the original kube-ecrlogin's Secret, and needs a target", () => {
    assert.equal(parse(['--target-adopt'], { env: { AWS_ECR_SERVER: east } }).target?.adopt, true);
    assert.throws(() => parse(['--target-adopt']), /--target-adopt needs --target-registries/);
  });

  it('the flags set every part of the target', () => {
    const options = parse([
      '--target-registries',
      ` ${east} , https://${west}/ `,
      '--target-namespace',
      'apps',
      '--target-secret-name',
      'ecr',
      '--target-service-accounts',
      'default, builder',
    ]);
    assert.deepEqual(
      options.target?.registries.map((r) => r.host),
      [east, west],
    );
    assert.deepEqual(
      options.target?.registries.map((r) => r.region),
      ['us-east-1', 'eu-west-1'],
    );
    assert.equal(options.target?.namespace, 'apps');
    assert.equal(options.target?.secretName, 'ecr');
    assert.deepEqual(options.target?.serviceAccounts, ['default', 'builder']);
  });

  it('--target-registries wins over AWS_ECR_SERVER', () => {
    const options = parse(['--target-registries', west], { env: { AWS_ECR_SERVER: east } });
    assert.deepEqual(
      options.target?.registries.map((r) => r.host),
      [west],
    );
  });

  it('an empty or blank AWS_ECR_SERVER means no target', () => {
    assert.equal(parse([], { env: { AWS_ECR_SERVER: '' } }).target, undefined);
    assert.equal(parse([], { env: { AWS_ECR_SERVER: '  ' } }).target, undefined);
  });

  const refused: { name: string; argv: string[]; env?: Record<string, string>; says: RegExp }[] = [
    {
      name: 'a registry that is not ECR',
      argv: [],
      env: { AWS_ECR_SERVER: 'quay.io' },
      says: /^--target-registries \/ AWS_ECR_SERVER: "quay\.io" is not a private ECR registry host/,
    },
    { name: 'the suffix attack', argv: ['--target-registries', `${east}.evil.example`], says: /is not a private ECR registry host/ },
    {
      name: 'a list of only commas (a target with no registry)',
      argv: [],
      env: { AWS_ECR_SERVER: ' , ,' },
      says: /--target-registries \/ AWS_ECR_SERVER: names no registry host/,
    },
    { name: 'the same host twice', argv: ['--target-registries', `${east},https://${east}`], says: /--target-registries \/ AWS_ECR_SERVER: lists ".*" twice/ },
    { name: 'a target namespace that is not a name', argv: ['--target-registries', east, '--target-namespace', 'Apps'], says: /^--target-namespace: / },
    {
      name: 'a target Secret name that is not a name',
      argv: ['--target-registries', east, '--target-secret-name', 'reg cred'],
      says: /^--target-secret-name: /,
    },
    {
      name: 'a target ServiceAccount that is not a name',
      argv: ['--target-registries', east, '--target-service-accounts', 'default,Builder'],
      says: /^--target-service-accounts: "Builder"/,
    },
    {
      name: '--target-namespace without registries',
      argv: ['--target-namespace', 'apps'],
      says: /--target-namespace needs --target-registries \(or AWS_ECR_SERVER\)/,
    },
    { name: '--target-secret-name without registries', argv: ['--target-secret-name', 'x'], says: /--target-secret-name needs --target-registries/ },
    {
      name: '--target-service-accounts without registries',
      argv: ['--target-service-accounts', 'default'],
      says: /--target-service-accounts needs --target-registries/,
    },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}`, () => assert.match(usageError(c.argv, { env: c.env ?? {} }).message, c.says));
  }
});

// Properties.

const flagNames = [
  'kubeconfig',
  'namespace',
  'config-map',
  'namespace-selector',
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
  'target-registries',
  'target-namespace',
  'target-secret-name',
  'target-service-accounts',
  'json',
  'require-policy',
  'help',
  'version',
  'bogus',
];
const values = fc.oneof(
  fc.constantFrom(
    '4',
    '0',
    '64',
    '65',
    '1s',
    '30s',
    '5m',
    '500ms',
    '0',
    ':8080',
    '[::1]:1',
    'debug',
    'trace',
    east,
    `${east},${west}`,
    'public.ecr.aws',
    'default',
    'Bad',
    '',
    '-1',
    'env=prod',
  ),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.nat({ max: 100 }).map((n) => 'x'.repeat(65_536 + n)),
);
const arg = fc.oneof(
  fc.tuple(fc.constantFrom(...flagNames), values).map(([flag, value]) => [`--${flag}`, value]),
  fc.tuple(fc.constantFrom(...flagNames), values).map(([flag, value]) => [`--${flag}=${value}`]),
  fc.constantFrom(['-h'], ['-v'], ['--leader-elect'], ['--json'], ['run'], ['once'], ['doctor'], ['version'], ['nope'], ['--']),
  fc.string().map((s) => [s]),
);
const argv = fc.array(arg, { maxLength: 8 }).map((args) => args.flat());
const environment: fc.Arbitrary<Environment> = fc
  .record({
    env: fc.record(
      {
        POD_NAMESPACE: fc.oneof(fc.constantFrom('ops', '', 'Bad'), fc.string()),
        KUBECONFIG: fc.string(),
        LOG_LEVEL: fc.oneof(fc.constantFrom('info', 'debug', 'loud'), fc.string()),
        POD_NAME: fc.string({ minLength: 1 }),
        AWS_ECR_SERVER: fc.oneof(fc.constantFrom(east, `${east},${west}`, ',', 'public.ecr.aws'), fc.string()),
      },
      { requiredKeys: [] },
    ),
    hostname: fc.constant('node-1'),
  })
  .map((e) => ({ env: { ...e.env }, hostname: e.hostname }));

describe('parseOptions properties', () => {
  it('never throws anything but a UsageError with a message, and returns frozen, consistent options', () => {
    fc.assert(
      fc.property(argv, environment, (args, env) => {
        let options: Options;
        try {
          options = parseOptions(args, env);
        } catch (error) {
          assert.ok(error instanceof UsageError, `threw ${String(error)}`);
          assert.ok(error.message.trim().length > 0);
          return;
        }
        assert.ok(Object.isFrozen(options));
        assert.ok(options.workers >= 1 && options.workers <= 64);
        assert.ok(options.retryPeriodMs < options.renewDeadlineMs && options.renewDeadlineMs < options.leaseDurationMs);
        assert.ok(options.backoffBaseMs <= options.backoffMaxMs);
        if (options.target !== undefined) {
          assert.ok(options.target.registries.length > 0, 'a target names at least one registry');
          assert.equal(new Set(options.target.registries.map((r) => r.host)).size, options.target.registries.length);
        }
      }),
      { numRuns },
    );
  });
});
