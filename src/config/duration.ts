// Durations as people write them in flags and YAML: 90s, 5m, 6h, 1h30m, 500ms.

const unitMs: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/;

/** Milliseconds, or undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  let rest = text.trim();
  if (rest === '') return undefined;
  let total = 0;
  while (rest !== '') {
    const match = durationPattern.exec(rest);
    if (match === null) return undefined;
    const [whole, amount = '', unit = ''] = match;
    total += Number(amount) * (unitMs[unit] ?? Number.NaN);
    rest = rest.slice(whole.length);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** A readable duration for logs and messages: 6h, 1h30m, 45s, 250ms. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  let seconds = Math.round(ms / 1_000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const amount = Math.floor(seconds / size);
    if (amount > 0) parts.push(`${amount}${unit}`);
    seconds -= amount * size;
  }
  return parts.join('');
}
