// Records every request: a bounded `calls` log and exact counters per API, service, caller ARN,
// region and outcome ("ok", an error code, or "dropped").

import type { Service } from './errors.ts';
import type { Api } from './faults.ts';

export interface Call {
  api: Api;
  /** ecr, ecr-public or sts: GetAuthorizationToken is ECR's or ECR Public's. */
  service: Service;
  /** Caller ARN; absent for unauthenticated calls (web identity, unknown keys). */
  caller?: string | undefined;
  region: string;
  roleArn?: string | undefined;
  sessionName?: string | undefined;
  /** Web identity `sub`. */
  subject?: string | undefined;
  /** Web identity token `aud` claim, and its lifetime (`exp` - `iat`, seconds), as presented. */
  audience?: string[] | undefined;
  tokenLifetimeSeconds?: number | undefined;
  /** "ok", the AWS error code returned, or "dropped". */
  outcome: string;
  /** For some errors, why (e.g. the failed IdP fetch); AWS would not say. */
  detail?: string | undefined;
  /** Injected-clock time (ms) when the request arrived. */
  at: number;
}

export interface Counters {
  total: number;
  byApi: Record<string, number>;
  byService: Record<string, number>;
  byCaller: Record<string, number>;
  byRegion: Record<string, number>;
  byOutcome: Record<string, number>;
  /** Keyed "GetAuthorizationToken:ok", "AssumeRole:Throttling", ... */
  byApiOutcome: Record<string, number>;
}

export type CallFilter = Partial<Pick<Call, 'api' | 'service' | 'caller' | 'region' | 'outcome' | 'roleArn' | 'subject'>>;

const emptyCounters = (): Counters => ({
  total: 0,
  byApi: {},
  byService: {},
  byCaller: {},
  byRegion: {},
  byOutcome: {},
  byApiOutcome: {},
});

const bump = (m: Record<string, number>, k: string): void => {
  m[k] = (m[k] ?? 0) + 1;
};

export class Recorder {
  readonly #limit: number;
  #calls: Call[] = [];
  #counters = emptyCounters();

  /** Keeps at most `limit` calls in the log (oldest dropped); counters stay exact. */
  constructor(limit = 100_000) {
    this.#limit = limit;
  }

  record(call: Call): void {
    this.#calls.push({ ...call });
    if (this.#calls.length > this.#limit) this.#calls.splice(0, this.#calls.length - this.#limit);
    const c = this.#counters;
    c.total++;
    bump(c.byApi, call.api);
    bump(c.byService, call.service);
    bump(c.byCaller, call.caller ?? 'anonymous');
    bump(c.byRegion, call.region);
    bump(c.byOutcome, call.outcome);
    bump(c.byApiOutcome, `${call.api}:${call.outcome}`);
  }

  get calls(): readonly Call[] {
    return this.#calls;
  }

  counters(): Counters {
    return structuredClone(this.#counters);
  }

  /** Calls in the log matching every given field. */
  count(filter: CallFilter = {}): number {
    const entries = Object.entries(filter).filter(([, v]) => v !== undefined);
    return this.#calls.filter((c) => entries.every(([k, v]) => c[k as keyof Call] === v)).length;
  }

  reset(): void {
    this.#calls = [];
    this.#counters = emptyCounters();
  }
}
