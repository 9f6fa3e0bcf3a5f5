// Keeps the webhook's certificates: the TLS Secret in the controller's namespace (created once, by
// whichever replica comes first; renewed well before expiry) and, with self-signed certificates, the
// caBundle of the MutatingWebhookConfiguration. Every replica runs one and loads what the Secret
// holds; writes are guarded by resourceVersion, so two replicas never undo each other.
//
// A CA is replaced in steps, so that the API server never meets a certificate it cannot verify: the
// new CA is trusted beside the old one first (caBundle), and only then does the serving certificate
// change to one the new CA signed.

import { X509Certificate } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { Clock, Timer } from '../clock.ts';

import { describeKubeError, statusOf, type WebhookApi } from '../kube/api.ts';
import { errorMessage, type Logger } from '../log.ts';
import { newBundle, nextRenewal, nextStep, renewLeaf, rotateCa, splitPem, type CertBundle, type Lifetimes, type Step } from './certs.ts';
import { type JsonPatchOp } from '../kube/objects.ts';

export interface KeeperOptions {
  readonly api: WebhookApi;
  readonly namespace: string;
  readonly secret: string;
  /** self-signed: make, rotate and publish the CA here; external: only load what another wrote. */
  readonly certs: 'self-signed' | 'external';
  readonly configuration: string;
  readonly hosts: readonly string[];
  readonly lifetimes: Lifetimes;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called with each certificate and key to serve (a new one on rotation). */
  readonly serve: (cert: string, key: string, expiresAt: number) => void;
}

const keys = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', caKey: 'ca.key' } as const;

export class CertificateKeeper {
  readonly #options: KeeperOptions;
  #timer: Timer | undefined;
  #stopped = false;
  #served: string | undefined;
  #trusted = false;
  #failures = 0;
  #running: Promise<void> | undefined;

  constructor(options: KeeperOptions) {
    this.#options = options;
  }

  /** Whether a certificate is loaded that the API server trusts (as far as this replica knows). */
  get ready(): boolean {
    return this.#served !== undefined && this.#trusted;
  }

  /** The first sync; later ones follow on a timer. Never throws: failures are retried. */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.#sync();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#running;
  }

  /** Syncs now (tests, and the timer). */
  async sync(): Promise<void> {
    await this.#sync();
  }

  async #sync(): Promise<void> {
    if (this.#running !== undefined) return this.#running;
    this.#running = (async () => {
      let wait: number;
      try {
        wait = await this.#once();
        this.#failures = 0;
      } catch (error) {
        this.#failures++;
        wait = Math.min(30_000, 500 * 2 ** Math.min(this.#failures, 6));
        this.#options.log.warn('Webhook certificates not in order, retrying', { error: describeKubeError(error), retryInMs: wait });
      }
      this.#schedule(wait);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer?.cancel();
    this.#timer = this.#options.clock.after(ms, () => void this.#sync());
  }

  /** One look: read, take the next step if any, load. Returns how long to wait before the next look. */
  async #once(): Promise<number> {
    const { api, namespace, secret: name, clock, lifetimes } = this.#options;
    const check = Math.min(60_000, Math.max(1_000, lifetimes.certMs / 10));
    const now = clock.now();
    const secret = await api.readSecret(namespace, name);
    let bundle = secret === undefined ? undefined : bundleOf(secret);
    if (this.#options.certs === 'external') {
      if (bundle === undefined) {
        this.#options.log.warn('Webhook certificate Secret missing or incomplete: waiting for it (external certificates)', { namespace, name });
        return Math.min(check, 5_000);
      }
      this.#load(bundle);
      // cert-manager's CA injector keeps the caBundle: trust is not ours to check.
      this.#trusted = true;
      return check;
    }

    if (secret === undefined || bundle === undefined) {
      const created = newBundle(this.#options.hosts, lifetimes, now, bundle?.caBundle);
      const written = await this.#write(secret, created);
      if (written === undefined) return 200; // another replica wrote first: look again
      bundle = created;
    }
    const trusted = await this.#trustedBundle();
    let step: Step = nextStep(bundle, this.#options.hosts, lifetimes, now, trusted);
    if (step === 'new' || step === 'ca' || step === 'leaf') {
      const next =
        step === 'new'
          ? newBundle(this.#options.hosts, lifetimes, now, bundle.caBundle)
          : step === 'ca'
            ? rotateCa(bundle, lifetimes, now)
            : renewLeaf(bundle, this.#options.hosts, lifetimes, now);
      const written = await this.#write(secret, next);
      if (written === undefined) return 200;
      this.#options.log.info(step === 'leaf' ? 'Renewed webhook serving certificate' : 'Made a new webhook CA', { namespace, name });
      bundle = next;
      step = nextStep(bundle, this.#options.hosts, lifetimes, now, trusted);
    }
    if (step === 'trust') await this.#trust(bundle.caBundle);
    this.#load(bundle);
    const after = step === 'trust' ? nextStep(bundle, this.#options.hosts, lifetimes, now, await this.#trustedBundle()) : step;
    this.#trusted = after !== 'trust';
    // A CA just trusted lets its serving certificate be made next; a step not done (a patch that lost
    // a race) is looked at again soon, never in a tight loop.
    if (after !== 'none') return 1_000;
    return Math.max(1_000, Math.min(check, nextRenewal(bundle, now) - now));
  }

  /** Creates or replaces the Secret; undefined when another replica got there first. */
  async #write(existing: V1Secret | undefined, bundle: CertBundle): Promise<V1Secret | undefined> {
    const { api, namespace, secret: name } = this.#options;
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name,
        namespace,
        // Not the managed-by label of pull Secrets: the reconciler must never take this one for its own.
        labels: { 'app.kubernetes.io/part-of': 'kube-ecrlogin', 'app.kubernetes.io/component': 'webhook' },
        ...(existing?.metadata?.resourceVersion !== undefined ? { resourceVersion: existing.metadata.resourceVersion } : {}),
      },
      data: {
        [keys.cert]: b64(bundle.cert),
        [keys.key]: b64(bundle.key),
        [keys.ca]: b64(bundle.caBundle),
        [keys.caKey]: b64(bundle.caKey),
      },
    };
    try {
      return existing === undefined ? await api.createSecret(body) : await api.replaceSecret(body);
    } catch (error) {
      if (statusOf(error) === 409) return undefined;
      throw error;
    }
  }

  /** The caBundle the webhook configuration holds (of its first webhook), '' when unknown. */
  async #trustedBundle(): Promise<string> {
    const configuration = await this.#options.api.readWebhookConfiguration(this.#options.configuration);
    const encoded = configuration?.webhooks?.[0]?.clientConfig.caBundle;
    if (configuration === undefined) {
      throw new Error(`MutatingWebhookConfiguration ${this.#options.configuration} does not exist (install the admission-webhook component)`);
    }
    return encoded === undefined ? '' : Buffer.from(encoded, 'base64').toString('utf8');
  }

  /** Sets caBundle on every webhook of the configuration, guarded by the resourceVersion read. */
  async #trust(caBundle: string): Promise<void> {
    const { api, configuration: name, log } = this.#options;
    const configuration = await api.readWebhookConfiguration(name);
    if (configuration === undefined) throw new Error(`MutatingWebhookConfiguration ${name} does not exist`);
    const encoded = b64(caBundle);
    const ops: JsonPatchOp[] = [{ op: 'test', path: '/metadata/resourceVersion', value: configuration.metadata?.resourceVersion ?? '' }];
    (configuration.webhooks ?? []).forEach((webhook, index) => {
      if (webhook.clientConfig.caBundle !== encoded) ops.push({ op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: encoded });
    });
    if (ops.length === 1) return;
    try {
      await api.patchWebhookConfiguration(name, ops);
      log.info('Updated webhook caBundle', { name, cas: splitPem(caBundle).length });
    } catch (error) {
      // 409 or 422: it changed since we read it (another replica); the next look sees the result.
      if (statusOf(error) !== 409 && statusOf(error) !== 422) throw error;
    }
  }

  #load(bundle: CertBundle): void {
    if (this.#served === bundle.cert) return;
    let expiresAt: number;
    try {
      expiresAt = Date.parse(new X509Certificate(bundle.cert).validTo);
    } catch (error) {
      throw new Error(`webhook certificate in Secret ${this.#options.namespace}/${this.#options.secret} is unreadable: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    this.#options.serve(bundle.cert, bundle.key, expiresAt);
    this.#served = bundle.cert;
  }
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** The bundle a Secret holds, or undefined when a part is missing. */
function bundleOf(secret: V1Secret): CertBundle | undefined {
  const text = (key: string): string | undefined => {
    const value = secret.data?.[key];
    return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
  };
  const cert = text(keys.cert);
  const key = text(keys.key);
  const caBundle = text(keys.ca);
  if (cert === undefined || key === undefined || caBundle === undefined) return undefined;
  return { cert, key, caBundle, caCert: splitPem(caBundle)[0] ?? '', caKey: text(keys.caKey) ?? '' };
}
