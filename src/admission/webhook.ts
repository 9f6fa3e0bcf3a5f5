// The mutating admission webhook for Pods (HTTPS, AdmissionReview admission.k8s.io/v1). For a Pod
// being created it appends the pull Secrets kube-ecrlogin keeps for the Pod's ServiceAccount, decided
// by admitPod() from the informer caches, with a live read of the Namespace or ServiceAccount when the
// cache does not hold it yet: both exist before the Pod is admitted, so the decision is exact even for
// objects applied in the same request as the Pod. It never refuses a Pod: whatever goes wrong is
// answered "allowed, no patch" (and the API server's failurePolicy Ignore covers a webhook that is
// down).

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';
import type { HostPort } from '../config/options.ts';
import type { Settings } from '../config/settings.ts';
import { describeKubeError } from '../kube/api.ts';
import { errorMessage, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Result as ValueOr } from '../result.ts'; // Result here is the metric's result label
import { admitPod } from './decide.ts';

export const webhookPath = '/mutate-pods';

/** An AdmissionReview larger than this is refused (the API server's own request limit is 3 MiB). */
export const maxBodyBytes = 4 * 1024 * 1024;

/** Where the webhook reads Namespaces and ServiceAccounts: the caches, then the API server. */
export interface AdmissionReads {
  cachedNamespace(name: string): V1Namespace | undefined;
  cachedServiceAccounts(namespace: string): readonly V1ServiceAccount[];
  /** A live read of a Namespace this controller serves (undefined when absent or not served). */
  liveNamespace(name: string): Promise<V1Namespace | undefined>;
  liveServiceAccount(namespace: string, name: string): Promise<V1ServiceAccount | undefined>;
}

export interface WebhookOptions {
  readonly address: HostPort;
  readonly reads: AdmissionReads;
  readonly settings: () => Settings;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Longest a live read may take, ms (the API server waits at most timeoutSeconds for the answer). */
  readonly readTimeoutMs?: number;
}

type Result = 'mutated' | 'unchanged' | 'skipped' | 'error' | 'rejected';

/** An HTTP answer; status 0: none (the client went away). */
interface Outcome {
  readonly status: number;
  readonly body: string;
  readonly result: Result;
}

interface Review {
  readonly apiVersion?: unknown;
  readonly kind?: unknown;
  readonly request?: {
    readonly uid?: unknown;
    readonly kind?: { readonly group?: unknown; readonly version?: unknown; readonly kind?: unknown };
    readonly operation?: unknown;
    readonly namespace?: unknown;
    readonly subResource?: unknown;
    readonly object?: {
      readonly spec?: { readonly serviceAccountName?: unknown; readonly imagePullSecrets?: unknown };
    };
  };
}

export class AdmissionWebhook {
  readonly #options: WebhookOptions;
  #server: Server | undefined;
  #listening: Promise<void> | undefined;
  #draining = false;

  constructor(options: WebhookOptions) {
    this.#options = options;
  }

  /** Whether it is listening with a certificate. */
  get serving(): boolean {
    return this.#server?.listening === true;
  }

  /** The port it listens on (tests bind port 0). */
  get port(): number | undefined {
    const address = this.#server?.address() as AddressInfo | null | undefined;
    return address?.port;
  }

  /** Serves with this certificate: listens on the first call, swaps the certificate afterwards. */
  async useCertificate(cert: string, key: string): Promise<void> {
    if (this.#server !== undefined) {
      this.#server.setSecureContext({ cert, key });
      this.#options.log.info('Webhook serving certificate loaded');
      await this.#listening;
      return;
    }
    const server = createServer({ cert, key, minVersion: 'TLSv1.2' }, (request, response) => void this.#handle(request, response));
    // Headers and body within the API server's own timeout; idle keep-alive connections are kept a while.
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.keepAliveTimeout = 60_000;
    server.on('tlsClientError', (error) => this.#options.log.debug('Webhook TLS handshake failed', { error: errorMessage(error) }));
    this.#server = server;
    const { host, port } = this.#options.address;
    this.#listening = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await this.#listening;
    this.#options.log.info('Serving admission webhook', { address: `${host}:${String(this.port)}`, path: webhookPath });
  }

  /**
   * Shutting down: answers on, but asks clients to close each connection after its answer, so that the
   * API server's next request opens a new one, which the Service sends to a replica still ready.
   */
  drain(): void {
    this.#draining = true;
  }

  /** Stops listening; connections still open after graceMs (a keep-alive the client holds) are closed. */
  async close(graceMs = 1_000): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(force);
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const end = this.#options.metrics.webhookDuration.startTimer();
    const outcome = await this.#answer(request);
    this.#options.metrics.webhookRequests.inc({ result: outcome.result });
    end({ result: outcome.result });
    if (outcome.status === 0) return; // the client went away
    if (outcome.result === 'rejected') this.#options.log.debug('Webhook request refused', { status: outcome.status, message: outcome.body });
    response.writeHead(outcome.status, {
      'content-type': outcome.status === 200 ? 'application/json' : 'text/plain; charset=utf-8',
      ...(outcome.status === 200 && !this.#draining ? {} : { connection: 'close' }),
    });
    response.end(outcome.status === 200 ? outcome.body : `${outcome.body}\n`);
  }

  /** What to answer a request: an AdmissionReview (always allowed), or a plain error for what is not one. */
  async #answer(request: IncomingMessage): Promise<Outcome> {
    const refuse = (status: number, message: string): Outcome => ({ status, body: message, result: 'rejected' });
    if (request.url?.split('?')[0] !== webhookPath) return refuse(404, `not found: the webhook is at ${webhookPath}`);
    if (request.method !== 'POST') return refuse(405, 'method not allowed: POST an AdmissionReview');
    if (!(request.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) {
      return refuse(415, 'unsupported media type: send application/json');
    }
    const body = await readBody(request);
    if (!body.ok)
      return body.error === 'too large' ? refuse(413, `request body larger than ${maxBodyBytes} bytes`) : { status: 0, body: '', result: 'rejected' };
    let review: Review;
    try {
      review = JSON.parse(body.value) as Review;
    } catch {
      return refuse(400, 'bad request: the body is not JSON');
    }
    const uid = review.request?.uid;
    if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview' || typeof uid !== 'string' || uid === '') {
      return refuse(400, 'bad request: not an admission.k8s.io/v1 AdmissionReview with a request uid');
    }
    const allowed = (result: Result, extra: Record<string, unknown> = {}): Outcome => ({
      status: 200,
      body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true, ...extra } }),
      result,
    });
    const req = review.request;
    const kind = req?.kind;
    const namespace = req?.namespace;
    const spec = req?.object?.spec;
    if (
      kind?.group !== '' ||
      kind.version !== 'v1' ||
      kind.kind !== 'Pod' ||
      req?.operation !== 'CREATE' ||
      (req.subResource !== undefined && req.subResource !== '') ||
      typeof namespace !== 'string' ||
      spec === undefined
    ) {
      return allowed('skipped');
    }
    const serviceAccount = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== '' ? spec.serviceAccountName : 'default';
    const listed = Array.isArray(spec.imagePullSecrets) ? spec.imagePullSecrets.map((ref: unknown) => referenceName(ref)) : undefined;
    try {
      const decision = await this.#decide(namespace, serviceAccount, listed);
      if (decision.patch.length === 0) return allowed('unchanged');
      this.#options.log.debug('Admitted Pod with pull Secrets', { namespace, serviceAccount, added: decision.patch.length });
      return allowed('mutated', { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(decision.patch)).toString('base64') });
    } catch (error) {
      this.#options.log.warn('Webhook could not decide; Pod admitted without a patch', { namespace, serviceAccount, error: describeKubeError(error) });
      return allowed('error', { warnings: [`kube-ecrlogin could not add its pull Secret: ${describeKubeError(error)}`] });
    }
  }

  async #decide(namespaceName: string, serviceAccount: string, listed: readonly string[] | undefined): Promise<{ patch: readonly unknown[] }> {
    const { reads } = this.#options;
    const timeout = this.#options.readTimeoutMs ?? 1_500;
    const namespace = reads.cachedNamespace(namespaceName) ?? (await within(timeout, reads.liveNamespace(namespaceName)));
    if (namespace === undefined || namespace.metadata?.deletionTimestamp !== undefined) return { patch: [] };
    let serviceAccounts = reads.cachedServiceAccounts(namespaceName);
    if (!serviceAccounts.some((sa) => sa.metadata?.name === serviceAccount)) {
      const live = await within(timeout, reads.liveServiceAccount(namespaceName, serviceAccount));
      if (live !== undefined) serviceAccounts = [...serviceAccounts, live];
    }
    return admitPod({ serviceAccount, imagePullSecrets: listed }, namespace, serviceAccounts, this.#options.settings());
  }
}

function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`a live read took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

type Body = ValueOr<string, 'too large' | 'aborted'>;

function readBody(request: IncomingMessage): Promise<Body> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const settle = (value: Body): void => {
      if (done) return;
      done = true;
      resolve(value);
    };
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        request.pause();
        settle({ ok: false, error: 'too large' });
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      settle({ ok: true, value: Buffer.concat(chunks).toString('utf8') });
    });
    request.on('error', () => {
      settle({ ok: false, error: 'aborted' });
    });
    request.on('aborted', () => {
      settle({ ok: false, error: 'aborted' });
    });
  });
}

function referenceName(ref: unknown): string {
  if (typeof ref !== 'object' || ref === null) return '';
  const name = (ref as { name?: unknown }).name;
  return typeof name === 'string' ? name : '';
}
