import { describe, expect, it } from 'vitest';
import { filterTags, pushDatesRequired, type TagCandidate } from './filters.js';

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

describe('pushDatesRequired', () => {
  it('is true when either date bound is set, and false for the other filters alone', () => {
    expect(pushDatesRequired({ pushedAfter: '2024-02-24', platforms: [] })).toBe(true);
    expect(pushDatesRequired({ pushedBefore: '2024-04-01', platforms: [] })).toBe(true);
    expect(pushDatesRequired({ tags: '^sid-', maxTagsPerRepository: 5, platforms: [] })).toBe(false);
  });
});
