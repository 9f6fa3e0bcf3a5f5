// When to refresh a token: from its own expiry, minus a margin, minus a jitter; clamped so that a
// token that is already expired, has no expiry, or claims an absurd one never makes anything spin. Pure.

/** The refresh margin: a share of the token's lifetime, or a fixed duration before expiry. */
export type Margin = { readonly fraction: number } | { readonly ms: number };

export interface RefreshSettings {
  /** Refresh this long before the token expires. Default: half of the token's lifetime. */
  readonly margin: Margin;
  /** Refresh up to this share of the margin earlier, at random, so that identities spread out. */
  readonly jitter: number;
  /** Never ask AWS for the same identity's token more often than this, whatever its expiry says. */
  readonly minInterval: number;
}

/** ECR documents a 12-hour token; used when AWS gives no expiry, and as the longest we wait. */
export const documentedLifetimeMs = 12 * 3_600_000;

export interface TokenTimes {
  /** When we received the token, epoch ms. */
  readonly issuedAt: number;
  /** When AWS says it expires, epoch ms (undefined when AWS did not say). */
  readonly expiresAt: number | undefined;
}

/** The expiry to act on: AWS's, or the documented lifetime when AWS gave none. */
export function effectiveExpiry(times: TokenTimes): number {
  return times.expiresAt ?? times.issuedAt + documentedLifetimeMs;
}

/** How long before expiry a token of this lifetime is refreshed (before jitter). */
export function refreshMargin(lifetime: number, settings: Pick<RefreshSettings, 'margin'>): number {
  return 'fraction' in settings.margin ? lifetime * settings.margin.fraction : settings.margin.ms;
}

/**
 * The refresh time of a token. `jitterSeed` in [0, 1) picks how much of the jitter window to take;
 * callers derive it from a stable hash so that the same Secret gets the same time on every pass.
 */
export function refreshTime(times: TokenTimes, settings: RefreshSettings, jitterSeed = 0): number {
  const expiresAt = effectiveExpiry(times);
  const lifetime = expiresAt - times.issuedAt;
  const earliest = times.issuedAt + settings.minInterval;
  if (!(lifetime > 0)) return earliest;
  // An infinite expiry would make the margin infinite too, and the refresh time NaN (a requeue at once).
  if (lifetime === Number.POSITIVE_INFINITY) return times.issuedAt + documentedLifetimeMs;
  const margin = Math.min(refreshMargin(lifetime, settings), lifetime);
  const jitter = margin * settings.jitter * clampSeed(jitterSeed);
  const at = expiresAt - margin - jitter;
  return Math.min(Math.max(at, earliest), times.issuedAt + documentedLifetimeMs);
}

/** A stable seed in [0, 1) from a string (FNV-1a). */
export function seedOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash / 0x1_0000_0000;
}

function clampSeed(seed: number): number {
  return Number.isFinite(seed) ? Math.min(Math.max(seed, 0), 0.999_999) : 0;
}
