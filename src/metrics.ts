// Prometheus metrics. Labels are bounded: namespace and Secret names at most, never a token or an
// ARN; AWS APIs, verbs, resources and outcomes come from small fixed sets.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type WriteVerb = 'create' | 'apply' | 'patch' | 'update' | 'delete';

/** Live values read when Prometheus scrapes, so that gauges are never stale. */
export interface MetricSources {
  /** Namespaces waiting to be reconciled. */
  readonly queueDepth: () => number;
  /** Namespaces with a scheduled refresh or retry. */
  readonly queueScheduled: () => number;
  /** Managed Secrets in the namespaces this controller serves. */
  readonly managedSecrets: () => number;
}
export type WriteResource = 'secrets' | 'serviceaccounts' | 'events' | 'leases' | 'serviceaccounts/token' | 'configmaps' | 'mutatingwebhookconfigurations';

/** How often the event loop's delay is sampled for nodejs_eventloop_lag_*, ms. */
const eventLoopSampleMs = 100;

export class Metrics {
  readonly registry = new Registry();
  #sources: MetricSources | undefined;

  readonly secretExpiry = new Gauge({
    name: 'kube_ecrlogin_secret_expiry_timestamp_seconds',
    help: 'When the registry token in a managed Secret expires (Unix time).',
    labelNames: ['namespace', 'secret'] as const,
    registers: [this.registry],
  });

  readonly refreshes = new Counter({
    name: 'kube_ecrlogin_refresh_total',
    help: 'Secret refresh outcomes: issued (created), refreshed (new token written), unchanged, failed.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly lastRefreshFailure = new Gauge({
    name: 'kube_ecrlogin_secret_refresh_failing',
    help: '1 while the last attempt to refresh a managed Secret failed, 0 once it succeeds.',
    labelNames: ['namespace', 'secret'] as const,
    registers: [this.registry],
  });

  readonly awsCalls = new Counter({
    name: 'kube_ecrlogin_aws_requests_total',
    help: 'AWS and token requests by API and result (success, transient, denied, invalid).',
    labelNames: ['api', 'result'] as const,
    registers: [this.registry],
  });

  readonly kubeWrites = new Counter({
    name: 'kube_ecrlogin_kubernetes_writes_total',
    help: 'Writes to the Kubernetes API by verb, resource and result.',
    labelNames: ['verb', 'resource', 'result'] as const,
    registers: [this.registry],
  });

  readonly reconcileDuration = new Histogram({
    name: 'kube_ecrlogin_reconcile_duration_seconds',
    help: 'Time to reconcile one namespace.',
    labelNames: ['result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly queueDepth = new Gauge({
    name: 'kube_ecrlogin_workqueue_depth',
    help: 'Namespaces waiting to be reconciled (not counting scheduled refreshes).',
    registers: [this.registry],
    collect: () => this.#collect('queueDepth'),
  });

  readonly queueScheduled = new Gauge({
    name: 'kube_ecrlogin_workqueue_scheduled',
    help: 'Namespaces with a scheduled refresh or retry.',
    registers: [this.registry],
    collect: () => this.#collect('queueScheduled'),
  });

  readonly leader = new Gauge({
    name: 'kube_ecrlogin_leader',
    help: '1 when this replica is the leader (or leader election is off), 0 on a standby.',
    registers: [this.registry],
  });

  readonly policyDenials = new Counter({
    name: 'kube_ecrlogin_policy_denials_total',
    help: 'Requests denied by the tenant policy, by rule (empty when no rule matched).',
    labelNames: ['rule'] as const,
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: 'kube_ecrlogin_config_reloads_total',
    help: 'Policy ConfigMap reloads by result (success, failure).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly configValid = new Gauge({
    name: 'kube_ecrlogin_config_last_reload_successful',
    help: '1 when the last ConfigMap read was valid, 0 when the last good config is kept in force.',
    registers: [this.registry],
  });

  readonly managedSecrets = new Gauge({
    name: 'kube_ecrlogin_managed_secrets',
    help: 'Managed Secrets in the namespaces this controller serves.',
    registers: [this.registry],
    collect: () => this.#collect('managedSecrets'),
  });

  readonly webhookRequests = new Counter({
    name: 'kube_ecrlogin_webhook_requests_total',
    help: 'Admission webhook requests by result: mutated, unchanged (nothing to add), skipped (not a Pod creation), error (answered without a patch), rejected (not a valid AdmissionReview).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly webhookDuration = new Histogram({
    name: 'kube_ecrlogin_webhook_duration_seconds',
    help: 'Time to answer one admission webhook request.',
    labelNames: ['result'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly webhookCertExpiry = new Gauge({
    name: 'kube_ecrlogin_webhook_certificate_expiry_timestamp_seconds',
    help: 'When the serving certificate this replica answers with expires (Unix time).',
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    // The event loop delay is sampled every 100 ms, not prom-client's 10: its timer woke the process
    // 100 times a second, 0.35 s of CPU a minute on its own (Node 24, this project's bench machine),
    // most of what an idle controller spent. Ten samples a second still show a blocked loop.
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: eventLoopSampleMs });
    this.leader.set(0);
    this.configValid.set(1);
  }

  /** Reads these gauges from live sources at each scrape. */
  bind(sources: MetricSources): void {
    this.#sources = sources;
  }

  #collect(name: keyof MetricSources): void {
    const source = this.#sources?.[name];
    if (source !== undefined) this[name].set(source());
  }

  recordWrite(verb: WriteVerb, resource: WriteResource, ok: boolean): void {
    this.kubeWrites.inc({ verb, resource, result: ok ? 'success' : 'error' });
  }

  /** The Secret names each namespace has series for: what keepSecrets() prunes from. */
  readonly #seriesByNamespace = new Map<string, Set<string>>();

  /** Sets a Secret's expiry series (and remembers it, so that keepSecrets() can remove it). */
  setExpiry(namespace: string, secret: string, expiresAtSeconds: number): void {
    this.#remember(namespace, secret);
    this.secretExpiry.set({ namespace, secret }, expiresAtSeconds);
  }

  /** Sets whether a Secret's last refresh failed (1) or worked (0). */
  setRefreshFailing(namespace: string, secret: string, failing: boolean): void {
    this.#remember(namespace, secret);
    this.lastRefreshFailure.set({ namespace, secret }, failing ? 1 : 0);
  }

  /**
   * Series are state derived from the current objects: after a reconcile, exactly the series of the
   * namespace's current grants exist (none once the namespace or its annotation is gone), so an alert
   * on a Secret that nothing asks for any more clears.
   */
  keepSecrets(namespace: string, secrets: readonly string[]): void {
    const known = this.#seriesByNamespace.get(namespace);
    if (known === undefined) return;
    const keep = new Set(secrets);
    for (const secret of [...known]) {
      if (keep.has(secret)) continue;
      this.secretExpiry.remove({ namespace, secret });
      this.lastRefreshFailure.remove({ namespace, secret });
      known.delete(secret);
    }
    if (known.size === 0) this.#seriesByNamespace.delete(namespace);
  }

  #remember(namespace: string, secret: string): void {
    let known = this.#seriesByNamespace.get(namespace);
    if (known === undefined) {
      known = new Set();
      this.#seriesByNamespace.set(namespace, known);
    }
    known.add(secret);
  }
}
