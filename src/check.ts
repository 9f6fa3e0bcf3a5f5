// One line of the doctor's report. A leaf module: the doctor's parts import it, not each other.

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface Check {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
}
