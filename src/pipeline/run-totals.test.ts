import { describe, expect, it } from 'vitest';
import { addStats, answeredHostsOf, earlierInvocations, wholeRunWith } from './run-totals.js';

describe('addStats', () => {
  it('adds numbers at the same place, level by level, and keeps what only one side has', () => {
    expect(
      addStats(
        { invocations: 1, layerBytes: 10, http: { requests: 3, byMethod: { GET: 2, HEAD: 1 } } },
        { invocations: 1, layerBytes: 5, tags: 2, http: { requests: 4, byMethod: { GET: 4 } } },
      ),
    ).toEqual({
      invocations: 2,
      layerBytes: 15,
      tags: 2,
      http: { requests: 7, byMethod: { GET: 6, HEAD: 1 } },
    });
  });
});

describe('wholeRunWith', () => {
  it("adds an invocation's own counts to the earlier sum, counting the invocation and leaving findings out", () => {
    const earlier = { invocations: 2, layersAnalyzed: 7, http: { requests: 30 } };
    const own = { layersAnalyzed: 3, findings: 5, http: { requests: 4 }, answeredHosts: ['r.example'] };
    expect(wholeRunWith(earlier, own)).toEqual({
      invocations: 3,
      layersAnalyzed: 10,
      http: { requests: 34 },
    });
  });
});

describe('earlierInvocations', () => {
  const counters = ['layersAnalyzed', 'findings'];

  it("takes a first invocation's counters and HTTP counts, not findings (they do not add up) nor other fields", () => {
    const recorded = {
      layersAnalyzed: 4,
      findings: 2,
      imagesMatched: 9,
      frontier: { pending: 3 },
      http: { requests: 12 },
    };
    expect(earlierInvocations(recorded, counters)).toEqual({
      invocations: 1,
      layersAnalyzed: 4,
      http: { requests: 12 },
    });
  });

  it('takes the whole-run sum an earlier resumed invocation recorded, without findings, which do not add up', () => {
    const wholeRun = { invocations: 2, layersAnalyzed: 7, http: { requests: 30 } };
    expect(earlierInvocations({ layersAnalyzed: 3, wholeRun }, counters)).toEqual(wholeRun);
    expect(earlierInvocations({ wholeRun: { ...wholeRun, findings: 9 } }, counters)).toEqual(wholeRun);
  });

  it('counts an invocation killed before its first record, its work unknown', () => {
    expect(earlierInvocations(null, counters)).toEqual({ invocations: 1 });
  });
});

describe('answeredHostsOf', () => {
  it('reads the hosts an earlier invocation recorded, and nothing from a record without them', () => {
    expect(answeredHostsOf({ answeredHosts: ['a.example', 7, 'b.example:5000'] })).toEqual([
      'a.example',
      'b.example:5000',
    ]);
    expect(answeredHostsOf({ layersAnalyzed: 1 })).toEqual([]);
    expect(answeredHostsOf(null)).toEqual([]);
  });
});
