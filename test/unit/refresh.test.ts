// When a token is refreshed: its own expiry minus a margin (a share of its lifetime or a duration),
// minus jitter; clamped so that no expiry, however odd, makes a refresh too early or too late.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { RefreshSettings } from '../../src/refresh.ts';
import { documentedLifetimeMs, effectiveExpiry, refreshTime, seedOf } from '../../src/refresh.ts';

const hour = 3_600_000;
const minute = 60_000;
const t0 = Date.UTC(2025, 0, 1);

const half: RefreshSettings = { margin: { fraction: 0.5 }, jitter: 0, minInterval: minute };

describe('refreshTime', () => {
  const cases: { name: string; expiresAt: number | undefined; settings: RefreshSettings; seed?: number; at: number }[] = [
    { name: 'a 12-hour token with a 50% margin is refreshed after 6 hours', expiresAt: t0 + 12 * hour, settings: half, at: t0 + 6 * hour },
    {
      name: 'a 12-hour token with a 25% margin is refreshed after 9 hours',
      expiresAt: t0 + 12 * hour,
      settings: { ...half, margin: { fraction: 0.25 } },
      at: t0 + 9 * hour,
    },
    {
      name: 'a 12-hour token with a 2-hour margin is refreshed after 10 hours',
      expiresAt: t0 + 12 * hour,
      settings: { ...half, margin: { ms: 2 * hour } },
      at: t0 + 10 * hour,
    },
    { name: 'a 1-hour token with a 50% margin is refreshed after 30 minutes', expiresAt: t0 + hour, settings: half, at: t0 + 30 * minute },
    {
      name: 'a margin longer than the lifetime is cut to the lifetime, and the minimum interval applies',
      expiresAt: t0 + hour,
      settings: { ...half, margin: { ms: 6 * hour } },
      at: t0 + minute,
    },
    { name: 'a token without an expiry is taken to live the documented 12 hours', expiresAt: undefined, settings: half, at: t0 + 6 * hour },
    { name: 'an already expired token is refreshed after the minimum interval, not at once', expiresAt: t0 - hour, settings: half, at: t0 + minute },
    { name: 'a token expiring the moment it is issued is refreshed after the minimum interval', expiresAt: t0, settings: half, at: t0 + minute },
    { name: 'a token expiring in 30 seconds is refreshed after the minimum interval', expiresAt: t0 + 30_000, settings: half, at: t0 + minute },
    {
      name: 'a token that claims to live 10 years is refreshed within the documented 12 hours',
      expiresAt: t0 + 10 * 365 * 24 * hour,
      settings: half,
      at: t0 + documentedLifetimeMs,
    },
    {
      name: 'a token that claims to live 10 years with a duration margin is refreshed within 12 hours',
      expiresAt: t0 + 10 * 365 * 24 * hour,
      settings: { ...half, margin: { ms: 6 * hour } },
      at: t0 + documentedLifetimeMs,
    },
    { name: 'a token with the largest finite expiry is refreshed within 12 hours', expiresAt: Number.MAX_VALUE, settings: half, at: t0 + documentedLifetimeMs },
    {
      name: 'a token with an infinite expiry is refreshed within 12 hours',
      expiresAt: Number.POSITIVE_INFINITY,
      settings: half,
      at: t0 + documentedLifetimeMs,
    },
    {
      name: 'a token with an infinite expiry and a duration margin is refreshed within 12 hours',
      expiresAt: Number.POSITIVE_INFINITY,
      settings: { ...half, margin: { ms: hour } },
      at: t0 + documentedLifetimeMs,
    },
    { name: 'a token with a NaN expiry is refreshed after the minimum interval', expiresAt: Number.NaN, settings: half, at: t0 + minute },
    {
      name: 'full jitter at a 50% margin and 10% jitter takes 10% of the margin earlier',
      expiresAt: t0 + 12 * hour,
      settings: { ...half, jitter: 0.1 },
      seed: 0.999_999_9,
      at: t0 + 6 * hour - 0.1 * 6 * hour * 0.999_999,
    },
    {
      name: 'half jitter takes half the jitter window',
      expiresAt: t0 + 12 * hour,
      settings: { ...half, jitter: 0.5 },
      seed: 0.5,
      at: t0 + 6 * hour - 6 * hour * 0.5 * 0.5,
    },
    {
      name: 'a seed above 1 is clamped below 1',
      expiresAt: t0 + 12 * hour,
      settings: { ...half, jitter: 0.5 },
      seed: 7,
      at: t0 + 6 * hour - 6 * hour * 0.5 * 0.999_999,
    },
    { name: 'a negative seed takes no jitter', expiresAt: t0 + 12 * hour, settings: { ...half, jitter: 0.5 }, seed: -1, at: t0 + 6 * hour },
    { name: 'a NaN seed takes no jitter', expiresAt: t0 + 12 * hour, settings: { ...half, jitter: 0.5 }, seed: Number.NaN, at: t0 + 6 * hour },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(refreshTime({ issuedAt: t0, expiresAt: c.expiresAt }, c.settings, c.seed), c.at);
    });
  }

  it("the effective expiry is the token's own, or 12 hours after issue when it has none", () => {
    assert.equal(effectiveExpiry({ issuedAt: t0, expiresAt: t0 + hour }), t0 + hour);
    assert.equal(effectiveExpiry({ issuedAt: t0, expiresAt: undefined }), t0 + 12 * hour);
  });
});

describe('seedOf', () => {
  it('is stable for the same text', () => assert.equal(seedOf('team-a/ecr-login'), seedOf('team-a/ecr-login')));
  it('differs for different texts', () => assert.notEqual(seedOf('team-a/ecr-login'), seedOf('team-b/ecr-login')));
  it('lies in [0, 1)', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const seed = seedOf(text);
        assert.ok(seed >= 0 && seed < 1);
      }),
      { numRuns: 2_000 },
    );
  });
});

const settingsArb: fc.Arbitrary<RefreshSettings> = fc.record({
  margin: fc.oneof(fc.record({ fraction: fc.double({ min: 0.001, max: 0.999, noNaN: true }) }), fc.record({ ms: fc.integer({ min: 1, max: 48 * hour }) })),
  jitter: fc.double({ min: 0, max: 0.5, noNaN: true }),
  minInterval: fc.integer({ min: 1_000, max: 6 * hour }),
});

const expiryArb = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: -24 * hour, max: 24 * hour }).map((offset) => t0 + offset),
  fc.double({ noNaN: false }),
  fc.constantFrom(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, Number.MAX_VALUE, 0),
);

describe('refreshTime properties', () => {
  it('is never earlier than issue + minimum interval nor later than issue + 12 hours, and always a number', () => {
    fc.assert(
      fc.property(settingsArb, expiryArb, fc.double(), (settings, expiresAt, seed) => {
        const at = refreshTime({ issuedAt: t0, expiresAt }, settings, seed);
        assert.ok(Number.isFinite(at), `refresh time ${at}`);
        assert.ok(at >= t0 + settings.minInterval, 'not before the minimum interval');
        assert.ok(at <= t0 + documentedLifetimeMs, 'not after the documented lifetime');
      }),
      { numRuns: 5_000 },
    );
  });

  it('for a sound expiry, is never after the expiry unless the minimum interval says so', () => {
    fc.assert(
      fc.property(settingsArb, fc.integer({ min: 1, max: 12 * hour }), fc.double({ min: 0, max: 1, noNaN: true }), (settings, lifetime, seed) => {
        const at = refreshTime({ issuedAt: t0, expiresAt: t0 + lifetime }, settings, seed);
        assert.ok(at <= Math.max(t0 + lifetime, t0 + settings.minInterval));
      }),
      { numRuns: 2_000 },
    );
  });

  it('jitter only ever moves the refresh earlier, by at most the jitter share of the margin', () => {
    fc.assert(
      fc.property(settingsArb, fc.integer({ min: 1, max: 12 * hour }), fc.double({ min: 0, max: 1, noNaN: true }), (settings, lifetime, seed) => {
        const times = { issuedAt: t0, expiresAt: t0 + lifetime };
        const without = refreshTime(times, settings, 0);
        const withJitter = refreshTime(times, settings, seed);
        const margin = Math.min('fraction' in settings.margin ? lifetime * settings.margin.fraction : settings.margin.ms, lifetime);
        assert.ok(withJitter <= without);
        assert.ok(without - withJitter <= margin * settings.jitter + 0.01, 'within float rounding of epoch milliseconds');
      }),
      { numRuns: 2_000 },
    );
  });
});
