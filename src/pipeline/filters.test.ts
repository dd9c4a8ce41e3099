import { describe, expect, it } from 'vitest';
import { compareTagNames, filterTags, pushDatesRequired, type TagCandidate } from './filters.js';

const tags: TagCandidate[] = [
  { name: 'sid-20240311', digest: null, pushedAt: '2024-03-12T01:28:23Z' },
  { name: 'sid-20240330', digest: null, pushedAt: '2024-03-31T00:00:00Z' },
  { name: 'sid-20240211', digest: null, pushedAt: '2024-02-12T00:00:00Z' },
  { name: 'latest', digest: null, pushedAt: null },
];

describe('tag filters', () => {
  it('keeps tags whose name matches the regex', () => {
    expect(filterTags(tags, { tags: '^sid-2024031', platforms: [] }).map((t) => t.name)).toEqual([
      'sid-20240311',
    ]);
  });

  it('keeps tags pushed in [after, before) and tags without a push date', () => {
    const out = filterTags(tags, { pushedAfter: '2024-03-01', pushedBefore: '2024-03-31', platforms: [] });
    expect(out.map((t) => t.name)).toEqual(['sid-20240311', 'latest']);
  });

  it('takes the newest tags first when capped', () => {
    expect(filterTags(tags, { maxTagsPerRepository: 2, platforms: [] }).map((t) => t.name)).toEqual([
      'sid-20240330',
      'sid-20240311',
    ]);
  });
});

describe('--max-tags order', () => {
  const undated = (...names: string[]): TagCandidate[] =>
    names.map((name) => ({ name, digest: null, pushedAt: null }));
  const capped = (list: TagCandidate[], n: number) =>
    filterTags(list, { maxTagsPerRepository: n, platforms: [] }).map((t) => t.name);

  it('keeps the highest names where push dates are unknown, numbers compared as numbers', () => {
    const list = undated('v1', 'v2', 'v9', 'v10', 'latest', '1.0', '1.9', '1.10');
    expect(capped(list, 4)).toEqual(['v10', 'v9', 'v2', 'v1']);
    expect(capped(list, 7)).toEqual(['v10', 'v9', 'v2', 'v1', 'latest', '1.10', '1.9']);
    expect(capped(undated('1.0', '1.9', '1.10', '1.2'), 2)).toEqual(['1.10', '1.9']);
    expect(capped(undated('sid-20240211', 'sid-20240311', 'sid-9'), 1)).toEqual(['sid-20240311']);
  });

  it('puts dated tags first, newest push first, then undated ones by name', () => {
    const list: TagCandidate[] = [
      ...undated('v10', 'v9'),
      { name: 'a', digest: null, pushedAt: '2024-03-01T00:00:00Z' },
      // Fractional seconds: compared as times, not as strings.
      { name: 'b', digest: null, pushedAt: '2024-03-01T00:00:00.5Z' },
      { name: 'c', digest: null, pushedAt: '2023-01-01T00:00:00Z' },
    ];
    expect(capped(list, 4)).toEqual(['b', 'a', 'c', 'v10']);
  });

  it('orders names totally and the same on every machine', () => {
    expect(compareTagNames('v9', 'v10')).toBeLessThan(0);
    expect(compareTagNames('1.10', '1.9')).toBeGreaterThan(0);
    expect(compareTagNames('01', '1')).not.toBe(0);
    expect(compareTagNames('a', 'a')).toBe(0);
    expect(compareTagNames('1', '1a')).toBeLessThan(0);
    expect(compareTagNames('99999999999999999999', '100000000000000000000')).toBeLessThan(0);
  });
});

describe('pushDatesRequired', () => {
  it('is true when either date bound is set, and false for the other filters alone', () => {
    expect(pushDatesRequired({ pushedAfter: '2024-02-24', platforms: [] })).toBe(true);
    expect(pushDatesRequired({ pushedBefore: '2024-04-01', platforms: [] })).toBe(true);
    expect(pushDatesRequired({ tags: '^sid-', maxTagsPerRepository: 5, platforms: [] })).toBe(false);
  });
});
