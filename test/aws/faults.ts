// Fault injection, per API or for all: throttling, 5xx, latency, dropped connections and
// AccessDenied, each for the next `count` matching calls or until cleared. Latency faults
// add up and combine with at most one failing fault (the oldest that matches).

import type { Service } from './errors.ts';
import { globMatch } from './policy.ts';

/** GetAuthorizationToken is ECR's and ECR Public's: a fault for it hits both unless scoped by service. */
export const apis = ['GetAuthorizationToken', 'AssumeRole', 'AssumeRoleWithWebIdentity', 'GetCallerIdentity'] as const;
export const services: readonly Service[] = ['ecr', 'ecr-public', 'sts'];
export type Api = (typeof apis)[number];

export const failureKinds = ['throttle', 'unavailable', 'internal', 'drop', 'accessDenied'] as const;
/**
 * throttle: ECR ThrottlingException / STS Throttling (400). unavailable: 503.
 * internal: 500 (ECR ServerException, STS InternalFailure). drop: the socket is destroyed
 * without an answer. accessDenied: ECR AccessDeniedException / STS AccessDenied.
 */
export type FailureKind = (typeof failureKinds)[number];

interface FaultScope {
  /** One API, or every API when absent or '*'. */
  api?: Api | '*';
  /** Only calls to this service (ecr, ecr-public, sts). */
  service?: Service;
  /** Only calls signed for this region. */
  region?: string;
  /** Only calls from callers whose ARN matches this glob. */
  caller?: string;
  /** For the next `count` matching calls; until cleared when absent. */
  count?: number;
}

export type FaultSpec = FaultScope & ({ kind: 'latency'; ms: number } | { kind: FailureKind });

export interface ActiveFault {
  id: string;
  spec: FaultSpec;
  /** Calls left; null: until cleared. */
  remaining: number | null;
}

export interface FaultDecision {
  delayMs: number;
  failure?: FailureKind;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a fault spec from JSON (the control plane) or from code. */
export function parseFaultSpec(v: unknown): FaultSpec {
  if (!isRecord(v)) throw new TypeError('fault must be an object');
  const { api, kind, count, ms, region, caller, service } = v;
  if (api !== undefined && api !== '*' && !apis.includes(api as Api)) throw new TypeError(`unknown api: ${JSON.stringify(api)}`);
  if (service !== undefined && !services.includes(service as Service)) throw new TypeError(`unknown service: ${JSON.stringify(service)}`);
  if (count !== undefined && (typeof count !== 'number' || !Number.isInteger(count) || count < 1)) {
    throw new TypeError('count must be a positive integer');
  }
  if (region !== undefined && typeof region !== 'string') throw new TypeError('region must be a string');
  if (caller !== undefined && typeof caller !== 'string') throw new TypeError('caller must be a string');
  const scope: FaultScope = {};
  if (api !== undefined) scope.api = api as Api | '*';
  if (service !== undefined) scope.service = service as Service;
  if (count !== undefined) scope.count = count;
  if (region !== undefined) scope.region = region;
  if (caller !== undefined) scope.caller = caller;
  if (kind === 'latency') {
    if (typeof ms !== 'number' || !(ms >= 0)) throw new TypeError('latency needs ms >= 0');
    return { ...scope, kind, ms };
  }
  if (!failureKinds.includes(kind as FailureKind)) throw new TypeError(`unknown fault kind: ${JSON.stringify(kind)}`);
  return { ...scope, kind: kind as FailureKind };
}

export class Faults {
  #next = 1;
  #active: ActiveFault[] = [];

  /** Adds a fault; returns its id (for `clear({ id })`). */
  set(spec: FaultSpec): string {
    const parsed = parseFaultSpec(spec);
    const id = `fault-${this.#next++}`;
    this.#active.push({ id, spec: parsed, remaining: parsed.count ?? null });
    return id;
  }

  /** Clears every fault, or those of one API (faults for '*' stay), or one by id. */
  clear(filter: { api?: Api; id?: string } = {}): void {
    this.#active = this.#active.filter((f) => (filter.id !== undefined && f.id !== filter.id) || (filter.api !== undefined && f.spec.api !== filter.api));
  }

  list(): ActiveFault[] {
    return this.#active.map((f) => ({ ...f, spec: { ...f.spec } }));
  }

  /** Decides the faults for one call and uses them up. */
  take(api: Api, call: { service?: Service; region: string; caller?: string | undefined }): FaultDecision {
    const decision: FaultDecision = { delayMs: 0 };
    for (const f of this.#active) {
      const s = f.spec;
      if (s.api !== undefined && s.api !== '*' && s.api !== api) continue;
      if (s.service !== undefined && s.service !== call.service) continue;
      if (s.region !== undefined && s.region !== call.region) continue;
      if (s.caller !== undefined && (call.caller === undefined || !globMatch(s.caller, call.caller))) continue;
      if (s.kind === 'latency') decision.delayMs += s.ms;
      else if (decision.failure === undefined) decision.failure = s.kind;
      else continue;
      if (f.remaining !== null) f.remaining--;
    }
    this.#active = this.#active.filter((f) => f.remaining !== 0);
    return decision;
  }
}
