// The `.dockerconfigjson` of a pull Secret: one `auths` entry per registry host (the bare host as the
// key, as the kubelet matches it), with username, password and `auth` = base64(username:password). Pure.

import type { Result } from './result.ts';

export interface RegistryLogin {
  readonly host: string;
  readonly username: string;
  readonly password: string;
}

interface AuthEntry {
  readonly username: string;
  readonly password: string;
  readonly auth: string;
}

/** Serializes logins, sorted by host so that equal inputs give equal bytes. */
export function buildDockerConfig(logins: readonly RegistryLogin[]): string {
  // No prototype: a host named __proto__ is then an entry like any other, not a prototype change.
  const auths = Object.create(null) as Record<string, AuthEntry>;
  // Code-unit order, not localeCompare: that depends on the locale and calls some distinct hosts equal.
  for (const login of [...logins].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0))) {
    if (login.host === '' || login.username === '' || login.password === '') {
      throw new Error(`refusing to write an empty credential for ${login.host || 'an unnamed registry'}`);
    }
    if (login.username.includes(':')) throw new Error(`username for ${login.host} contains ':'`);
    auths[login.host] = {
      username: login.username,
      password: login.password,
      auth: Buffer.from(`${login.username}:${login.password}`).toString('base64'),
    };
  }
  return JSON.stringify({ auths });
}

/** Reads the logins back from a Secret's `.dockerconfigjson`, or says why it is not well-formed. */
export function parseDockerConfig(json: string): Result<RegistryLogin[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return { ok: false, error: '.dockerconfigjson is not JSON' };
  }
  const auths = (doc as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) {
    return { ok: false, error: '.dockerconfigjson has no auths object' };
  }
  const logins: RegistryLogin[] = [];
  for (const [host, entry] of Object.entries(auths as Record<string, unknown>)) {
    const { username, password, auth } = (entry ?? {}) as Partial<Record<string, unknown>>;
    if (typeof username !== 'string' || typeof password !== 'string' || username === '' || password === '') {
      return { ok: false, error: `auths entry for ${host} has no username or password` };
    }
    if (auth !== undefined && auth !== Buffer.from(`${username}:${password}`).toString('base64')) {
      return { ok: false, error: `auths entry for ${host} has an auth value that does not match its username and password` };
    }
    logins.push({ host, username, password });
  }
  return { ok: true, value: logins };
}
