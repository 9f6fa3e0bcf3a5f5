// Durations as people write them, and back.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../../src/config/duration.ts';

describe('parseDuration', () => {
  const cases: { name: string; text: string; ms: number | undefined }[] = [
    { name: 'milliseconds', text: '500ms', ms: 500 },
    { name: 'seconds', text: '90s', ms: 90_000 },
    { name: 'minutes', text: '5m', ms: 300_000 },
    { name: 'hours', text: '6h', ms: 21_600_000 },
    { name: 'days', text: '1d', ms: 86_400_000 },
    { name: 'hours and minutes together', text: '1h30m', ms: 5_400_000 },
    { name: 'every unit together', text: '1d1h1m1s1ms', ms: 90_061_001 },
    { name: 'a fraction', text: '1.5h', ms: 5_400_000 },
    { name: 'zero', text: '0s', ms: 0 },
    { name: 'surrounding whitespace', text: ' 10s\n', ms: 10_000 },
    { name: 'a fraction of a millisecond is rounded', text: '0.4ms', ms: 0 },
    { name: 'a bare number has no unit and is refused', text: '30', ms: undefined },
    { name: 'an empty string is refused', text: '', ms: undefined },
    { name: 'a negative duration is refused', text: '-5s', ms: undefined },
    { name: 'an unknown unit is refused', text: '5w', ms: undefined },
    { name: 'an upper-case unit is refused', text: '5S', ms: undefined },
    { name: 'a space inside is refused', text: '1h 30m', ms: undefined },
    { name: 'trailing text is refused', text: '5sx', ms: undefined },
    { name: 'a number with two dots is refused', text: '1.5.5s', ms: undefined },
    { name: 'a leading dot is refused', text: '.5s', ms: undefined },
    { name: 'an exponent is refused', text: '1e3s', ms: undefined },
    { name: 'an overflowing duration is refused', text: `${'9'.repeat(400)}d`, ms: undefined },
  ];
  for (const c of cases) {
    it(`${c.name}: ${JSON.stringify(c.text)}`, () => assert.equal(parseDuration(c.text), c.ms));
  }

  it('never throws and gives a finite whole number of ms or undefined', () => {
    const text = fc.oneof(fc.string(), fc.stringMatching(/^(\d{1,4}(\.\d{1,3})?(ms|s|m|h|d)){1,4}$/), fc.string({ unit: 'binary' }));
    fc.assert(
      fc.property(text, (t) => {
        const ms = parseDuration(t);
        if (ms !== undefined) assert.ok(Number.isInteger(ms) && ms >= 0, `${ms}`);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('formatDuration', () => {
  const cases: { ms: number; text: string }[] = [
    { ms: 250, text: '250ms' },
    { ms: 45_000, text: '45s' },
    { ms: 5_400_000, text: '1h30m' },
    { ms: 21_600_000, text: '6h' },
    { ms: 3_661_000, text: '1h1m1s' },
    { ms: Number.POSITIVE_INFINITY, text: 'Infinity' },
  ];
  for (const c of cases) {
    it(`${c.ms} ms reads ${c.text}`, () => assert.equal(formatDuration(c.ms), c.text));
  }

  it('whole seconds read back as the same duration', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), (seconds) => {
        assert.equal(parseDuration(formatDuration(seconds * 1_000)), seconds * 1_000);
      }),
      { numRuns: 2_000 },
    );
  });
});
