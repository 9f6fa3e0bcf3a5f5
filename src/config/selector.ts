// Kubernetes label selectors (matchLabels, matchExpressions) and globs, evaluated in memory. Pure.

import type { Result } from '../result.ts';

export interface Requirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  readonly values: readonly string[];
}

export interface LabelSelector {
  readonly requirements: readonly Requirement[];
}

const operators: readonly Requirement['operator'][] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/** Parses a metav1.LabelSelector-shaped value, or says why it is not one. */
export function parseSelector(value: unknown): Result<LabelSelector> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, error: 'must be a mapping with matchLabels and/or matchExpressions' };
  const obj = value as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((key) => key !== 'matchLabels' && key !== 'matchExpressions');
  if (unknown.length > 0) return { ok: false, error: `unknown field ${unknown.join(', ')} (known: matchLabels, matchExpressions)` };
  const requirements: Requirement[] = [];
  const labels = obj['matchLabels'];
  if (labels !== undefined) {
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return { ok: false, error: 'matchLabels must be a mapping' };
    for (const [key, v] of Object.entries(labels)) {
      if (typeof v !== 'string') return { ok: false, error: `matchLabels.${key} must be a string` };
      requirements.push({ key, operator: 'In', values: [v] });
    }
  }
  const expressions = obj['matchExpressions'];
  if (expressions !== undefined) {
    if (!Array.isArray(expressions)) return { ok: false, error: 'matchExpressions must be a list' };
    for (const [index, entry] of expressions.entries()) {
      if (typeof entry !== 'object' || entry === null) return { ok: false, error: `matchExpressions[${index}] must be a mapping` };
      const { key, operator, values } = entry as Record<string, unknown>;
      if (typeof key !== 'string' || key === '') return { ok: false, error: `matchExpressions[${index}].key must be a non-empty string` };
      if (!operators.includes(operator as Requirement['operator'])) {
        return { ok: false, error: `matchExpressions[${index}].operator must be one of ${operators.join(', ')}` };
      }
      const op = operator as Requirement['operator'];
      const list = values ?? [];
      if (!Array.isArray(list) || list.some((v) => typeof v !== 'string'))
        return { ok: false, error: `matchExpressions[${index}].values must be a list of strings` };
      if ((op === 'In' || op === 'NotIn') && list.length === 0) return { ok: false, error: `matchExpressions[${index}] with ${op} needs values` };
      if ((op === 'Exists' || op === 'DoesNotExist') && list.length > 0) return { ok: false, error: `matchExpressions[${index}] with ${op} takes no values` };
      requirements.push({ key, operator: op, values: list as string[] });
    }
  }
  return { ok: true, value: { requirements } };
}

export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  return selector.requirements.every((requirement) => {
    const value = labels?.[requirement.key];
    switch (requirement.operator) {
      case 'In':
        return value !== undefined && requirement.values.includes(value);
      case 'NotIn':
        return value === undefined || !requirement.values.includes(value);
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
    }
  });
}

const globCache = new Map<string, RegExp>();

/** Matches text against a glob where `*` is any run of characters and `?` one character. */
export function globMatches(glob: string, text: string): boolean {
  let pattern = globCache.get(glob);
  if (pattern === undefined) {
    const source = glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    pattern = new RegExp(`^${source}$`, 's');
    if (globCache.size > 1000) globCache.clear();
    globCache.set(glob, pattern);
  }
  return pattern.test(text);
}
