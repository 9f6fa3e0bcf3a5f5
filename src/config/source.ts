// The live settings: read from the policy ConfigMap at start (an invalid one stops the start), then
// watched; a valid change takes effect at once, an invalid one keeps the last good settings in force
// with a Warning Event on the ConfigMap and a log line naming the errors.

import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { Informer } from '../kube/informer.ts';
import { reasons, type EventRecorder } from '../kube/events.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { defaultSettings, parseSettings, type Settings } from './settings.ts';

export const configKey = 'config.yaml';

export class InvalidConfigError extends Error {
  override readonly name = 'InvalidConfigError';
  readonly errors: readonly string[];

  constructor(where: string, errors: readonly string[]) {
    super(`${where} is invalid:\n  ${errors.join('\n  ')}`);
    this.errors = errors;
  }
}

/** The settings a ConfigMap holds: defaults when it is absent or has no config.yaml. */
export function settingsFromConfigMap(configMap: V1ConfigMap | undefined): { ok: true; settings: Settings } | { ok: false; errors: readonly string[] } {
  const text = configMap?.data?.[configKey];
  if (text === undefined) return { ok: true, settings: defaultSettings };
  return parseSettings(text);
}

export interface SettingsSourceOptions {
  readonly config: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Set once the controller can write Events. */
  events?: EventRecorder;
  /** Called after a valid change took effect. */
  readonly onChange: (settings: Settings) => void;
  /** Longest wait before retrying a failed list or watch of the ConfigMap, ms. */
  readonly maxRestartDelayMs?: number;
}

export class SettingsSource {
  readonly #o: SettingsSourceOptions;
  readonly #informer: Informer<V1ConfigMap>;
  #current: Settings = defaultSettings;
  #lastText: string | undefined;
  /** Changes seen while start() reads the ConfigMap are start()'s to judge. */
  #started = false;

  constructor(options: SettingsSourceOptions) {
    this.#o = options;
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

  set events(recorder: EventRecorder) {
    this.#o.events = recorder;
  }

  /** Reads the ConfigMap once and starts watching it. Throws InvalidConfigError on an invalid one. */
  async start(): Promise<Settings> {
    await this.#informer.start();
    const configMap = this.#informer.get(this.#o.name, this.#o.namespace);
    const result = settingsFromConfigMap(configMap);
    if (!result.ok) {
      await this.#informer.stop();
      throw new InvalidConfigError(`ConfigMap ${this.#o.namespace}/${this.#o.name} key ${configKey}`, result.errors);
    }
    this.#current = result.settings;
    this.#lastText = configMap?.data?.[configKey];
    this.#started = true;
    this.#o.log.info(configMap === undefined ? 'No config ConfigMap, using defaults' : 'Loaded config', {
      namespace: this.#o.namespace,
      name: this.#o.name,
      rules: result.settings.rules.length,
    });
    return result.settings;
  }

  async stop(): Promise<void> {
    await this.#informer.stop();
  }

  #changed(configMap: V1ConfigMap | undefined): void {
    const { log, metrics, namespace, name } = this.#o;
    const text = configMap?.data?.[configKey];
    if (!this.#started || text === this.#lastText) return;
    this.#lastText = text;
    if (configMap === undefined) {
      log.warn('Config ConfigMap deleted, keeping the settings in force', { namespace, name });
      return;
    }
    const result = settingsFromConfigMap(configMap);
    const target = { kind: 'ConfigMap', name, namespace, ...(configMap.metadata?.uid !== undefined ? { uid: configMap.metadata.uid } : {}) } as const;
    if (!result.ok) {
      metrics.configReloads.inc({ result: 'failure' });
      metrics.configValid.set(0);
      log.error('Invalid config, keeping the last good one', { namespace, name, errors: result.errors });
      this.#o.events?.warnOnce(target, reasons.ConfigInvalid, `Invalid ${configKey}, the last good config stays in force: ${result.errors.join('; ')}`);
      return;
    }
    this.#current = result.settings;
    metrics.configReloads.inc({ result: 'success' });
    metrics.configValid.set(1);
    log.info('Reloaded config', { namespace, name, rules: result.settings.rules.length });
    if (this.#o.events?.resolve(target, reasons.ConfigInvalid)) {
      this.#o.events.emit(target, 'Normal', reasons.ConfigReloaded, `Valid ${configKey} loaded`);
    }
    this.#o.onChange(result.settings);
  }
}
