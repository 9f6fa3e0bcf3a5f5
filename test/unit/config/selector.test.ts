// Label selectors and globs, as the policy's namespace rules use them.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { globMatches, parseSelector, selectorMatches, type LabelSelector } from '../../../src/config/selector.ts';

function selector(value: unknown): LabelSelector {
  const parsed = parseSelector(value);
  if (!parsed.ok) assert.fail(parsed.error);
  return parsed.value;
}

describe('parseSelector', () => {
  it('turns matchLabels into In requirements', () => {
    assert.deepEqual(selector({ matchLabels: { team: 'a', env: 'prod' } }), {
      requirements: [
        { key: 'team', operator: 'In', values: ['a'] },
        { key: 'env', operator: 'In', values: ['prod'] },
      ],
    });
  });

  it('keeps matchExpressions, with Exists taking no values', () => {
    assert.deepEqual(
      selector({
        matchExpressions: [
          { key: 'tier', operator: 'NotIn', values: ['dev'] },
          { key: 'owner', operator: 'Exists' },
        ],
      }),
      {
        requirements: [
          { key: 'tier', operator: 'NotIn', values: ['dev'] },
          { key: 'owner', operator: 'Exists', values: [] },
        ],
      },
    );
  });

  it('an empty mapping selects everything', () => assert.deepEqual(selector({}), { requirements: [] }));

  const refused: { name: string; value: unknown; says: RegExp }[] = [
    { name: 'a string is not a selector', value: 'team=a', says: /must be a mapping/ },
    { name: 'a list is not a selector', value: [], says: /must be a mapping/ },
    { name: 'null is not a selector', value: null, says: /must be a mapping/ },
    { name: 'an unknown field is named', value: { matchLabel: {} }, says: /unknown field matchLabel/ },
    { name: 'matchLabels as a list is refused', value: { matchLabels: ['a'] }, says: /matchLabels must be a mapping/ },
    { name: 'a matchLabels value that is a number is refused', value: { matchLabels: { team: 1 } }, says: /matchLabels\.team must be a string/ },
    { name: 'matchExpressions as a mapping is refused', value: { matchExpressions: {} }, says: /matchExpressions must be a list/ },
    { name: 'an expression that is a string is refused', value: { matchExpressions: ['x'] }, says: /matchExpressions\[0\] must be a mapping/ },
    { name: 'an expression without a key is refused', value: { matchExpressions: [{ operator: 'Exists' }] }, says: /key must be a non-empty string/ },
    {
      name: 'an unknown operator is refused',
      value: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] },
      says: /operator must be one of In, NotIn, Exists, DoesNotExist/,
    },
    { name: 'In without values is refused', value: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, says: /with In needs values/ },
    {
      name: 'Exists with values is refused',
      value: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
      says: /with Exists takes no values/,
    },
    {
      name: 'values that are not strings are refused',
      value: { matchExpressions: [{ key: 'a', operator: 'In', values: [1] }] },
      says: /values must be a list of strings/,
    },
  ];
  for (const c of refused) {
    it(c.name, () => {
      const parsed = parseSelector(c.value);
      assert.ok(!parsed.ok);
      assert.match(parsed.error, c.says);
    });
  }
});

describe('selectorMatches', () => {
  const cases: { name: string; selector: unknown; labels: Record<string, string> | undefined; matches: boolean }[] = [
    { name: 'matching labels match', selector: { matchLabels: { team: 'a' } }, labels: { team: 'a', x: 'y' }, matches: true },
    { name: 'a different value does not match', selector: { matchLabels: { team: 'a' } }, labels: { team: 'b' }, matches: false },
    { name: 'a missing label does not match In', selector: { matchLabels: { team: 'a' } }, labels: {}, matches: false },
    { name: 'no labels at all do not match In', selector: { matchLabels: { team: 'a' } }, labels: undefined, matches: false },
    { name: 'NotIn matches a missing label', selector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] }, labels: {}, matches: true },
    {
      name: 'NotIn does not match a listed value',
      selector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
      labels: { env: 'dev' },
      matches: false,
    },
    { name: 'Exists matches an empty value', selector: { matchExpressions: [{ key: 'owner', operator: 'Exists' }] }, labels: { owner: '' }, matches: true },
    {
      name: 'DoesNotExist does not match a present label',
      selector: { matchExpressions: [{ key: 'owner', operator: 'DoesNotExist' }] },
      labels: { owner: 'x' },
      matches: false,
    },
    {
      name: 'every requirement must match',
      selector: { matchLabels: { team: 'a' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
      labels: { team: 'a', env: 'dev' },
      matches: false,
    },
    { name: 'the empty selector matches anything', selector: {}, labels: undefined, matches: true },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(selectorMatches(selector(c.selector), c.labels), c.matches));
  }
});

describe('globMatches', () => {
  const cases: { glob: string; text: string; matches: boolean }[] = [
    { glob: 'team-*', text: 'team-a', matches: true },
    { glob: 'team-*', text: 'team-', matches: true },
    { glob: 'team-*', text: 'xteam-a', matches: false },
    { glob: 'team-?', text: 'team-ab', matches: false },
    { glob: 'team-?', text: 'team-b', matches: true },
    { glob: '*', text: '', matches: true },
    { glob: 'a.b', text: 'axb', matches: false },
    { glob: 'arn:aws:iam::111122223333:role/team-a-*', text: 'arn:aws:iam::111122223333:role/team-a-puller', matches: true },
    { glob: 'arn:aws:iam::111122223333:role/team-a-*', text: 'arn:aws:iam::111122223333:role/team-b-puller', matches: false },
    { glob: 'arn:aws:iam::*:role/puller', text: 'arn:aws:iam::111122223333:role/puller', matches: true },
    { glob: 'arn:aws:iam::*:role/puller', text: 'arn:aws:iam::111122223333:role/path/puller', matches: false },
    { glob: 'arn:aws:iam::*:role/*', text: 'arn:aws:iam::111122223333:role/path/puller', matches: true },
    { glob: '(a|b)', text: 'a', matches: false },
    { glob: '[ab]', text: 'a', matches: false },
    { glob: 'a+', text: 'aa', matches: false },
    { glob: '^a$', text: '^a$', matches: true },
    { glob: '\\d', text: '\\d', matches: true },
    { glob: 'a*', text: 'a\nb', matches: true },
    { glob: '12345678901?', text: '123456789012', matches: true },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.glob)} ${c.matches ? 'matches' : 'does not match'} ${JSON.stringify(c.text)}`, () => {
      assert.equal(globMatches(c.glob, c.text), c.matches);
    });
  }
});
