// The live settings: read from the policy ConfigMap at start (an invalid one stops the start), then
// watched; a valid change takes effect at once, an invalid one (a ConfigMap without config.yaml too)
// keeps the last good settings in force with a Warning Event on the ConfigMap and a log line naming the
// errors. With --require-policy, no policy at start (no ConfigMap, or one without config.yaml) denies
// every request until a valid one appears.

import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { Informer } from '../kube/informer.ts';
import { reasons, type EventRecorder, type Regarding } from '../kube/events.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { shortHash } from '../naming.ts';
import type { Result } from '../result.ts';
import { defaultSettings, denyAllSettings, parseSettings, type Settings } from './settings.ts';

export const configKey = 'config.yaml';

export class InvalidConfigError extends Error {
  override readonly name = 'InvalidConfigError';
  readonly errors: readonly string[];

  constructor(where: string, errors: readonly string[]) {
    super(`${where} is invalid:\n  ${errors.join('\n  ')}`);
    this.errors = errors;
  }
}

/** Where the policy comes from, and whether its absence denies everything (--require-policy). */
export interface PolicySource {
  readonly namespace: string;
  readonly name: string;
  readonly requirePolicy: boolean;
}

/** Why a ConfigMap has no settings: no config.yaml key, or an invalid one. */
export interface ConfigProblem {
  readonly problem: 'no-key' | 'invalid';
  readonly errors: readonly string[];
}

/** A ConfigMap's settings, or why it has none. */
export type ConfigMapSettings = Result<Settings, ConfigProblem>;

/**
 * What a ConfigMap means for the settings. Absent: the defaults, or under --require-policy no policy
 * (every request denied). Present without config.yaml: invalid, naming the keys it has, never a silent
 * fall back to the defaults (a renamed key would otherwise lift every rule).
 */
export function settingsFromConfigMap(configMap: V1ConfigMap | undefined, source: PolicySource): ConfigMapSettings {
  if (configMap === undefined) {
    return { ok: true, value: source.requirePolicy ? noPolicy(source, 'is missing') : defaultSettings };
  }
  const text = configMap.data?.[configKey];
  if (text === undefined) return { ok: false, error: { problem: 'no-key', errors: [`no key ${configKey}: ${keysFound(configMap)}`] } };
  const parsed = parseSettings(text);
  return parsed.ok ? parsed : { ok: false, error: { problem: 'invalid', errors: parsed.error } };
}

/**
 * The settings when no good config is kept from before (at start, or while none has been valid since):
 * under --require-policy a ConfigMap without config.yaml is no policy, denying everything; otherwise
 * (and for an invalid config.yaml) it stays invalid.
 */
export function initialSettings(configMap: V1ConfigMap | undefined, source: PolicySource): ConfigMapSettings {
  const result = settingsFromConfigMap(configMap, source);
  if (result.ok || result.error.problem !== 'no-key' || !source.requirePolicy || configMap === undefined) return result;
  return { ok: true, value: noPolicy(source, `has no key ${configKey} (${keysFound(configMap)})`) };
}

function noPolicy(source: PolicySource, state: string): Settings {
  return denyAllSettings(`no policy in force: --require-policy and ConfigMap ${source.namespace}/${source.name} ${state}`);
}

const maxKeysShown = 10;

/** The keys a ConfigMap has instead of config.yaml, and the one expected. */
function keysFound(configMap: V1ConfigMap): string {
  const keys = [
    ...Object.keys(configMap.data ?? {}).map((key) => JSON.stringify(key)),
    ...Object.keys(configMap.binaryData ?? {}).map((key) => `${JSON.stringify(key)} (in binaryData)`),
  ].sort();
  const shown = keys.length > maxKeysShown ? [...keys.slice(0, maxKeysShown), `and ${keys.length - maxKeysShown} more`] : keys;
  return `found ${keys.length === 0 ? 'no key' : shown.join(', ')}, expected ${JSON.stringify(configKey)}`;
}

/** A short hash of a config.yaml text: what the doctor compares with the ConfigMap it reads. */
export function configHash(text: string): string {
  return shortHash(text, 16);
}

/**
 * Which settings are in force and why, and what the ConfigMap held when last seen: they differ
 * while an invalid ConfigMap is ignored or after a deleted one (the last good config stays).
 */
export interface ConfigInForce {
  /** <namespace>/<name> of the policy ConfigMap. */
  readonly configMap: string;
  /** configmap: its config.yaml; defaults: no ConfigMap at start; no-policy: --require-policy and none. */
  readonly source: 'configmap' | 'defaults' | 'no-policy';
  /** source configmap: the resourceVersion and hash (configHash) of the config.yaml in force. */
  readonly resourceVersion?: string;
  readonly hash?: string;
  /** source no-policy: why every request is denied. */
  readonly denyAll?: string;
  /** The ConfigMap as last seen. */
  readonly configMapState: 'valid' | 'invalid' | 'missing';
  /** configMapState invalid: what is wrong with it. */
  readonly errors?: readonly string[];
}

export interface SettingsSourceOptions {
  readonly config: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  /** --require-policy: no ConfigMap, or none with config.yaml, at start denies every request. */
  readonly requirePolicy: boolean;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Where the Events about the ConfigMap go. */
  readonly events?: EventRecorder;
  /** Longest wait before retrying a failed list or watch of the ConfigMap, ms. */
  readonly maxRestartDelayMs?: number;
}

export class SettingsSource {
  readonly #options: SettingsSourceOptions;
  readonly #source: PolicySource;
  readonly #informer: Informer<V1ConfigMap>;
  #current: Settings = defaultSettings;
  /** What the ConfigMap last held (its config.yaml, or the keys it had instead); undefined when absent. */
  #lastSeen: string | undefined;
  /** Changes seen while start() reads the ConfigMap are start()'s to judge. */
  #started = false;
  #inForce: ConfigInForce;
  readonly #listeners: ((settings: Settings) => void)[] = [];

  constructor(options: SettingsSourceOptions) {
    this.#options = options;
    this.#source = { namespace: options.namespace, name: options.name, requirePolicy: options.requirePolicy };
    this.#inForce = { configMap: `${options.namespace}/${options.name}`, source: 'defaults', configMapState: 'missing' };
    const core = options.config.makeApiClient(CoreV1Api);
    const fieldSelector = `metadata.name=${options.name}`;
    this.#informer = new Informer<V1ConfigMap>({
      name: 'configmap',
      config: options.config,
      path: `/api/v1/namespaces/${options.namespace}/configmaps`,
      list: (page) => core.listNamespacedConfigMap({ ...page, namespace: options.namespace, fieldSelector }),
      fieldSelector,
      log: options.log,
      ...(options.maxRestartDelayMs !== undefined ? { maxRestartDelayMs: options.maxRestartDelayMs } : {}),
    });
    this.#informer.on((configMap, kind) => this.#changed(kind === 'delete' ? undefined : configMap));
  }

  get current(): Settings {
    return this.#current;
  }

  /** Which settings are in force and why (for the status the doctor reads). */
  get inForce(): ConfigInForce {
    return this.#inForce;
  }

  /**
   * Reads the ConfigMap once and starts watching it. Throws InvalidConfigError on an invalid one;
   * under --require-policy, no policy (no ConfigMap, or none with config.yaml) starts denying everything.
   */
  async start(): Promise<Settings> {
    const { log, metrics, namespace, name } = this.#options;
    await this.#informer.start();
    const configMap = this.#informer.get(name, namespace);
    const result = initialSettings(configMap, this.#source);
    if (!result.ok) {
      await this.#informer.stop();
      throw new InvalidConfigError(`ConfigMap ${namespace}/${name}${result.error.problem === 'invalid' ? ` key ${configKey}` : ''}`, result.error.errors);
    }
    this.#current = result.value;
    this.#lastSeen = seen(configMap);
    this.#started = true;
    this.#record(configMap, settingsFromConfigMap(configMap, this.#source));
    const reason = result.value.denyAll;
    if (reason !== undefined) {
      metrics.configValid.set(0);
      log.warn('No policy in force, every request is denied until a valid ConfigMap appears', { namespace, name, reason });
      // A ConfigMap without config.yaml: say on it which key it has instead.
      const invalid = settingsFromConfigMap(configMap, this.#source);
      if (configMap !== undefined && !invalid.ok) this.#warnInvalid(configMap, invalid.error);
    } else {
      log.info(configMap === undefined ? 'No config ConfigMap, using defaults' : 'Loaded config', { namespace, name, rules: result.value.rules.length });
    }
    return result.value;
  }

  async stop(): Promise<void> {
    await this.#informer.stop();
  }

  #changed(configMap: V1ConfigMap | undefined): void {
    const { log, metrics, namespace, name } = this.#options;
    if (!this.#started) return;
    const now = seen(configMap);
    if (now === this.#lastSeen) return;
    this.#lastSeen = now;
    // Under --require-policy with no policy in force there is no good config to keep: what the
    // ConfigMap now says without one (missing, or no config.yaml) is the reason every request is denied.
    const noneInForce = this.#current.denyAll !== undefined;
    const denial = noneInForce ? initialSettings(configMap, this.#source) : undefined;
    const result = settingsFromConfigMap(configMap, this.#source);
    if (configMap === undefined) {
      this.#record(configMap, result);
      if (denial?.ok === true) this.#deny(denial.value);
      else {
        const afterRestart = this.#source.requirePolicy ? 'every request is denied (--require-policy)' : 'the defaults apply';
        log.warn('Config ConfigMap deleted, keeping the settings in force', { namespace, name, afterRestart });
      }
      return;
    }
    if (!result.ok) {
      this.#record(configMap, result);
      metrics.configReloads.inc({ result: 'failure' });
      metrics.configValid.set(0);
      log.error(noneInForce ? 'Invalid config, every request stays denied' : 'Invalid config, keeping the last good one', {
        namespace,
        name,
        errors: result.error.errors,
      });
      this.#warnInvalid(configMap, result.error);
      if (denial?.ok === true) this.#deny(denial.value);
      return;
    }
    this.#current = result.value;
    this.#record(configMap, result);
    metrics.configReloads.inc({ result: 'success' });
    metrics.configValid.set(1);
    log.info('Reloaded config', { namespace, name, rules: result.value.rules.length });
    const regarding = regardingOf(configMap, this.#source);
    if (this.#options.events?.resolve(regarding, reasons.ConfigInvalid)) {
      this.#options.events.emit(regarding, 'Normal', reasons.ConfigReloaded, `Valid ${configKey} loaded`);
    }
    this.#notify(result.value);
  }

  /** Calls `listener` after each change of the settings in force; the settings current at start() are `current`. */
  subscribe(listener: (settings: Settings) => void): void {
    this.#listeners.push(listener);
  }

  #notify(settings: Settings): void {
    for (const listener of this.#listeners) listener(settings);
  }

  /** No policy in force, for a new reason. */
  #deny(settings: Settings): void {
    if (settings.denyAll === this.#current.denyAll) return;
    this.#current = settings;
    this.#inForce = { ...this.#inForce, source: 'no-policy', ...(settings.denyAll !== undefined ? { denyAll: settings.denyAll } : {}) };
    this.#options.log.warn('No policy in force, every request is denied until a valid ConfigMap appears', {
      namespace: this.#options.namespace,
      name: this.#options.name,
      reason: settings.denyAll,
    });
    this.#notify(settings);
  }

  /**
   * What is in force after the ConfigMap was seen as `result`: a valid one is taken; an invalid or
   * deleted one leaves the settings in force as they were (under --require-policy with none, no policy).
   */
  #record(configMap: V1ConfigMap | undefined, result: ConfigMapSettings): void {
    const base = { configMap: this.#inForce.configMap };
    const state = configMap === undefined ? 'missing' : result.ok ? 'valid' : 'invalid';
    const seenAs = { configMapState: state, ...(!result.ok ? { errors: result.error.errors } : {}) } as const;
    const denyAll = this.#current.denyAll;
    if (denyAll !== undefined) {
      this.#inForce = { ...base, source: 'no-policy', denyAll, ...seenAs };
    } else if (configMap !== undefined && result.ok) {
      const text = configMap.data?.[configKey] ?? '';
      const resourceVersion = configMap.metadata?.resourceVersion;
      this.#inForce = { ...base, source: 'configmap', ...(resourceVersion !== undefined ? { resourceVersion } : {}), hash: configHash(text), ...seenAs };
    } else {
      // Kept: what was in force (the defaults at start, or the last good ConfigMap), now seen as `state`.
      const { configMapState: _state, errors: _errors, ...kept } = this.#inForce;
      this.#inForce = { ...kept, ...seenAs };
    }
  }

  #warnInvalid(configMap: V1ConfigMap, invalid: ConfigProblem): void {
    const what = invalid.problem === 'no-key' ? 'ConfigMap' : configKey;
    const kept = this.#current.denyAll !== undefined ? 'every request stays denied (--require-policy)' : 'the last good config stays in force';
    this.#options.events?.warnOnce(regardingOf(configMap, this.#source), reasons.ConfigInvalid, `Invalid ${what}, ${kept}: ${invalid.errors.join('; ')}`);
  }
}

function regardingOf(configMap: V1ConfigMap, source: PolicySource): Regarding {
  const uid = configMap.metadata?.uid;
  return { kind: 'ConfigMap', name: source.name, namespace: source.namespace, ...(uid !== undefined ? { uid } : {}) };
}

/** What a change must differ in to be judged: the config.yaml text, or the keys held instead of it. */
function seen(configMap: V1ConfigMap | undefined): string | undefined {
  if (configMap === undefined) return undefined;
  const text = configMap.data?.[configKey];
  return text === undefined ? keysFound(configMap) : `${configKey}\n${text}`;
}
