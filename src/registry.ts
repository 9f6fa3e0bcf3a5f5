// Private ECR registry hosts: the pattern amazon-ecr-credential-helper (ecr-login/api/client.go) and the
// kubelet's ecr-credential-provider accept, anchored at both ends, so that a host such as
// 123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example is rejected.

export interface RegistryHost {
  /** The host as written, lower-cased: the key of the Secret's `auths` entry. */
  readonly host: string;
  readonly account: string;
  readonly region: string;
  readonly fips: boolean;
  /** The domain after the region, e.g. amazonaws.com, amazonaws.com.cn, on.aws. */
  readonly domain: string;
}

const ecrHost =
  /^(\d{12})\.dkr[.-]ecr(-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;

export type HostResult = { readonly ok: true; readonly value: RegistryHost } | { readonly ok: false; readonly error: string };

/**
 * Parses one registry host. Accepts a bare host, or one written with an https:// scheme and no path
 * (as `docker login` and ECR's proxyEndpoint print it); anything else is an error that says why.
 */
export function parseRegistryHost(input: string): HostResult {
  let host = input.trim();
  if (host === '') return { ok: false, error: 'empty registry host' };
  host = host.replace(/^https:\/\//i, '').replace(/\/$/, '');
  const shown = quote(input);
  if (host.length > 253) return { ok: false, error: `registry host ${shown} is longer than 253 characters` };
  const match = ecrHost.exec(host);
  if (match === null) {
    return {
      ok: false,
      error: `${shown} is not a private ECR registry host (expected <12-digit account>.dkr.ecr.<region>.amazonaws.com or another ECR partition's domain)`,
    };
  }
  const [, account = '', fips, region = '', domain = ''] = match;
  return { ok: true, value: { host: host.toLowerCase(), account, region: region.toLowerCase(), fips: fips !== undefined, domain } };
}

/** Quotes a user-supplied value for an error message: JSON-escaped and cut to a readable length. */
export function quote(value: string, max = 80): string {
  const cut = value.length > max ? `${value.slice(0, max)}…` : value;
  return JSON.stringify(cut);
}
