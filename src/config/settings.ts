// The live settings and tenant policy, read from the ConfigMap's `config.yaml`: parsed once into a
// frozen, validated object, or a list of errors that name the offending path. Pure.

import { parse as parseYaml, YAMLParseError } from 'yaml';
import { documentedLifetimeMs, type RefreshSettings } from '../refresh.ts';
import type { Result } from '../result.ts';
import { dnsSubdomainProblem, quote, roleArnProblem } from '../validation.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { parseSelector, type LabelSelector } from './selector.ts';

/** How a request's credentials are obtained, as the policy names it. */
export type IdentityMode = 'controller' | 'assume-role' | 'service-account';
export const identityModes: readonly IdentityMode[] = ['controller', 'assume-role', 'service-account'];

export const logLevels = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof logLevels)[number];

export interface Defaults {
  readonly secretName: string;
  readonly roleArn?: string;
}

export interface AwsSettings {
  /** sts:ExternalId sent with AssumeRole. */
  readonly externalId?: string;
  /** Lifetime asked of STS for assumed roles, seconds. */
  readonly sessionDurationSeconds: number;
  /**
   * Whom an assumed role's STS session is named for: `object` (ecr-login.<namespace>[.<serviceaccount>],
   * so CloudTrail shows whom each token was for; one session and token per object) or `shared`
   * (kube-ecrlogin: one session and token per role and region, shared by every object naming the role).
   */
  readonly sessionScope: 'object' | 'shared';
}

export interface RegistryPattern {
  readonly account: string;
  readonly region: string;
}

export interface NamespaceMatch {
  readonly names?: readonly string[];
  readonly selector?: LabelSelector;
}

export interface Rule {
  readonly name: string;
  readonly namespaces: NamespaceMatch;
  /** Registries the matched namespaces may ask for; absent means any. */
  readonly registries?: readonly RegistryPattern[];
  /** Role ARN patterns the matched namespaces may name; absent means any. */
  readonly roleArns?: readonly string[];
  /** Identity modes the matched namespaces may use; absent means the global ones. */
  readonly identities?: readonly IdentityMode[];
  /**
   * ServiceAccount name globs whose token may be exchanged (service-account mode); absent means any.
   * Who may annotate a ServiceAccount may otherwise borrow its IAM role, whatever it is for.
   */
  readonly identityServiceAccounts?: readonly string[];
}

export interface Settings {
  readonly logLevel: LogLevel;
  readonly refresh: RefreshSettings;
  readonly defaults: Defaults;
  readonly aws: AwsSettings;
  /** Identity modes allowed at all. */
  readonly identities: readonly IdentityMode[];
  /** Evaluated in order; the first rule whose namespaces match decides. No rules: everything allowed. */
  readonly rules: readonly Rule[];
  /**
   * Set when no policy is in force and --require-policy makes that deny everything (no ConfigMap, or
   * none with config.yaml): why every request is denied. Never read from config.yaml.
   */
  readonly denyAll?: string;
}

export const defaultSettings: Settings = deepFreeze({
  logLevel: 'info',
  refresh: { margin: { fraction: 0.5 }, jitter: 0.1, minInterval: 60_000 },
  defaults: { secretName: 'ecr-login' },
  aws: { sessionDurationSeconds: 3600, sessionScope: 'object' },
  identities: [...identityModes],
  rules: [],
});

/** The defaults with every request denied, for the reason given (--require-policy with no policy). */
export function denyAllSettings(reason: string): Settings {
  return deepFreeze({ ...defaultSettings, denyAll: reason });
}

/** Parses config.yaml. An empty document means the defaults. */
export function parseSettings(text: string): Result<Settings, readonly string[]> {
  let doc: unknown;
  try {
    // logLevel: warnings would otherwise go to stderr through process.emitWarning, outside the JSON log.
    doc = parseYaml(text, { strict: true, uniqueKeys: true, maxAliasCount: 100, logLevel: 'error' });
  } catch (error) {
    const message = error instanceof YAMLParseError ? (error.message.split('\n')[0] ?? error.message) : String(error);
    return { ok: false, error: [`config.yaml is not valid YAML: ${message}`] };
  }
  const reader = new Reader();
  const settings = reader.settings(doc ?? {});
  return reader.errors.length === 0 ? { ok: true, value: deepFreeze(settings) } : { ok: false, error: reader.errors };
}

type Obj = Readonly<Record<string, unknown>>;

/** Walks the document, collecting every error with its path instead of stopping at the first. */
class Reader {
  readonly errors: string[] = [];

  settings(doc: unknown): Settings {
    const root = this.object(doc, '');
    if (root === undefined) return defaultSettings;
    this.known(root, '', ['logLevel', 'refresh', 'defaults', 'aws', 'identities', 'rules']);
    return {
      logLevel: this.oneOf(root['logLevel'], 'logLevel', logLevels) ?? defaultSettings.logLevel,
      refresh: this.refresh(root['refresh']),
      defaults: this.defaults(root['defaults']),
      aws: this.aws(root['aws']),
      identities: this.modes(root['identities'], 'identities') ?? defaultSettings.identities,
      rules: this.rules(root['rules']),
    };
  }

  refresh(value: unknown): RefreshSettings {
    const base = defaultSettings.refresh;
    if (value === undefined) return base;
    const obj = this.object(value, 'refresh');
    if (obj === undefined) return base;
    this.known(obj, 'refresh', ['margin', 'jitter', 'minInterval']);
    let margin = base.margin;
    if (obj['margin'] !== undefined) {
      const text = this.string(obj['margin'], 'refresh.margin');
      if (text !== undefined) {
        const percent = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
        const fraction = percent ? Number(percent[1]) / 100 : undefined;
        const ms = percent ? undefined : parseDuration(text);
        if (fraction !== undefined && fraction > 0 && fraction < 1) margin = { fraction };
        else if (ms !== undefined && ms > 0) margin = { ms };
        else this.error('refresh.margin', `${quote(text)} is neither a share of the lifetime between 0% and 100% (e.g. 50%) nor a duration (e.g. 6h)`);
      }
    }
    let jitter = base.jitter;
    if (obj['jitter'] !== undefined) {
      const text = this.string(obj['jitter'], 'refresh.jitter');
      const percent = text === undefined ? null : /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
      const share = percent ? Number(percent[1]) / 100 : Number.NaN;
      if (share >= 0 && share <= 0.5) jitter = share;
      else if (text !== undefined) this.error('refresh.jitter', `${quote(text)} is not a share between 0% and 50% of the margin`);
    }
    // Under the token lifetime: the broker will not fetch a new token sooner, so a longer one lets tokens expire.
    const minInterval = this.duration(obj['minInterval'], 'refresh.minInterval', 1_000, documentedLifetimeMs) ?? base.minInterval;
    return { margin, jitter, minInterval };
  }

  defaults(value: unknown): Defaults {
    const base = defaultSettings.defaults;
    if (value === undefined) return base;
    const obj = this.object(value, 'defaults');
    if (obj === undefined) return base;
    this.known(obj, 'defaults', ['secretName', 'roleArn']);
    let secretName = base.secretName;
    if (obj['secretName'] !== undefined) {
      const name = this.string(obj['secretName'], 'defaults.secretName');
      const problem = name === undefined ? undefined : dnsSubdomainProblem(name);
      if (problem !== undefined) this.error('defaults.secretName', problem);
      // Leave room for "-<serviceaccount>" suffixes.
      else if (name !== undefined && name.length > 200) this.error('defaults.secretName', 'is longer than 200 characters');
      else if (name !== undefined) secretName = name;
    }
    const roleArn = obj['roleArn'] === undefined ? undefined : this.roleArn(obj['roleArn'], 'defaults.roleArn');
    return { secretName, ...(roleArn !== undefined ? { roleArn } : {}) };
  }

  aws(value: unknown): AwsSettings {
    const base = defaultSettings.aws;
    if (value === undefined) return base;
    const obj = this.object(value, 'aws');
    if (obj === undefined) return base;
    this.known(obj, 'aws', ['externalId', 'sessionDurationSeconds', 'sessionScope']);
    let externalId: string | undefined;
    if (obj['externalId'] !== undefined) {
      externalId = this.string(obj['externalId'], 'aws.externalId');
      if (externalId !== undefined && !/^[\w+=,.@:/-]{2,1224}$/.test(externalId)) {
        this.error('aws.externalId', 'must be 2 to 1224 characters of letters, digits and +=,.@:/-');
        externalId = undefined;
      }
    }
    let sessionDurationSeconds = base.sessionDurationSeconds;
    if (obj['sessionDurationSeconds'] !== undefined) {
      const n = obj['sessionDurationSeconds'];
      if (typeof n === 'number' && Number.isInteger(n) && n >= 900 && n <= 43_200) sessionDurationSeconds = n;
      else this.error('aws.sessionDurationSeconds', 'must be a whole number of seconds from 900 to 43200');
    }
    const sessionScope = this.oneOf(obj['sessionScope'], 'aws.sessionScope', ['object', 'shared'] as const) ?? base.sessionScope;
    return { sessionDurationSeconds, sessionScope, ...(externalId !== undefined ? { externalId } : {}) };
  }

  rules(value: unknown): Rule[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.error('rules', 'must be a list');
      return [];
    }
    const names = new Set<string>();
    return value.flatMap((entry: unknown, index) => {
      const path = `rules[${index}]`;
      const obj = this.object(entry, path);
      if (obj === undefined) return [];
      this.known(obj, path, ['name', 'namespaces', 'registries', 'roleArns', 'identities', 'identityServiceAccounts']);
      const name = this.string(obj['name'], `${path}.name`) ?? `#${index}`;
      if (names.has(name)) this.error(`${path}.name`, `${quote(name)} is used by two rules`);
      names.add(name);
      const rule: Rule = {
        name,
        namespaces: this.namespaceMatch(obj['namespaces'], `${path}.namespaces`),
        ...optional('registries', this.registries(obj['registries'], `${path}.registries`)),
        ...optional('roleArns', this.patterns(obj['roleArns'], `${path}.roleArns`)),
        ...optional('identities', this.modes(obj['identities'], `${path}.identities`)),
        ...optional('identityServiceAccounts', this.patterns(obj['identityServiceAccounts'], `${path}.identityServiceAccounts`)),
      };
      return [rule];
    });
  }

  namespaceMatch(value: unknown, path: string): NamespaceMatch {
    const obj = this.object(value, path);
    if (obj === undefined) return {};
    this.known(obj, path, ['names', 'selector']);
    const names = this.patterns(obj['names'], `${path}.names`);
    let selector: LabelSelector | undefined;
    if (obj['selector'] !== undefined) {
      const parsed = parseSelector(obj['selector']);
      if (!parsed.ok) this.error(`${path}.selector`, parsed.error);
      else selector = parsed.value;
    }
    if (names === undefined && selector === undefined) {
      this.error(path, 'needs names, a selector, or both');
    }
    return { ...optional('names', names), ...optional('selector', selector) };
  }

  registries(value: unknown, path: string): RegistryPattern[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) {
      this.error(path, 'must be a list of {account, region} patterns');
      return undefined;
    }
    return value.flatMap((entry: unknown, index) => {
      const at = `${path}[${index}]`;
      const obj = this.object(entry, at);
      if (obj === undefined) return [];
      this.known(obj, at, ['account', 'region']);
      const account = obj['account'] === undefined ? '*' : this.string(obj['account'], `${at}.account`);
      const region = obj['region'] === undefined ? '*' : this.string(obj['region'], `${at}.region`);
      if (account !== undefined && !/^[\d*?]{1,12}$/.test(account)) {
        this.error(`${at}.account`, `${quote(account)} is not a 12-digit account or a glob of one (quote it in YAML)`);
      }
      return account === undefined || region === undefined ? [] : [{ account, region }];
    });
  }

  patterns(value: unknown, path: string): string[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.some((entry) => typeof entry !== 'string' || entry === '')) {
      this.error(path, 'must be a list of non-empty strings (globs: * and ?)');
      return undefined;
    }
    return value as string[];
  }

  modes(value: unknown, path: string): IdentityMode[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) {
      this.error(path, `must be a list of: ${identityModes.join(', ')}`);
      return undefined;
    }
    const modes: IdentityMode[] = [];
    for (const entry of value) {
      const mode = this.oneOf(entry, path, identityModes);
      if (mode !== undefined) modes.push(mode);
    }
    return modes;
  }

  roleArn(value: unknown, path: string): string | undefined {
    const arn = this.string(value, path);
    if (arn === undefined) return undefined;
    const problem = roleArnProblem(arn);
    if (problem !== undefined) {
      this.error(path, problem);
      return undefined;
    }
    return arn;
  }

  /** A duration of at least minimum ms and, when below is given, less than below ms. */
  duration(value: unknown, path: string, minimum: number, below = Number.POSITIVE_INFINITY): number | undefined {
    if (value === undefined) return undefined;
    const text = this.string(value, path);
    if (text === undefined) return undefined;
    const ms = parseDuration(text);
    if (ms === undefined || ms < minimum || ms >= below) {
      const under = Number.isFinite(below) ? ` and under ${formatDuration(below)}` : '';
      this.error(path, `${quote(text)} is not a duration of at least ${minimum} ms${under} (e.g. 30s, 5m, 6h)`);
      return undefined;
    }
    return ms;
  }

  oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T | undefined {
    if (value === undefined) return undefined;
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    this.error(path, `${typeof value === 'string' ? quote(value) : describe(value)} is not one of ${allowed.join(', ')}`);
    return undefined;
  }

  string(value: unknown, path: string): string | undefined {
    if (typeof value === 'string') return value;
    this.error(path, `must be a string, not ${describe(value)}`);
    return undefined;
  }

  object(value: unknown, path: string): Obj | undefined {
    // Plain mappings only: a YAML !!set or !!omap (a Set or Map) has no own keys and would read as empty.
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && isPlainObject(value)) return value as Obj;
    this.error(path || 'config.yaml', `must be a mapping, not ${describe(value)}`);
    return undefined;
  }

  known(obj: Obj, path: string, keys: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (keys.includes(key)) continue;
      const shown = /^[\w.-]{1,80}$/.test(key) ? key : quote(key);
      this.error(path ? `${path}.${shown}` : shown, `unknown setting (known: ${keys.join(', ')})`);
    }
  }

  error(path: string, message: string): void {
    this.errors.push(`${path}: ${message}`);
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return isPlainObject(value) ? 'a mapping' : `a ${value.constructor.name}`;
  return `a ${typeof value}`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
