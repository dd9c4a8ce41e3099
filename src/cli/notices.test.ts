import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Frontier, failedInRunFirst } from '../db/frontier.js';
import { RunStore } from '../db/run-store.js';
import { openTempDataset, type TempDataset } from '../db/test-fixtures/temp-dataset.js';
import { FAILED_ITEMS_NAMED, tellFailedItems } from './notices.js';

let dataset: TempDataset;
beforeEach(() => {
  dataset = openTempDataset('hubcrawl-notices-');
});
afterEach(() => {
  vi.restoreAllMocks();
  dataset.remove();
});

/** What tellFailedItems writes on stderr for run `runId`, given the items as a crawl reads them. */
function told(runId: number): string {
  const written: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    written.push(String(chunk));
    return true;
  });
  tellFailedItems(failedInRunFirst(dataset.db, runId, FAILED_ITEMS_NAMED), runId, dataset.path);
  vi.restoreAllMocks();
  return written.join('');
}

/** Run `runId`'s repository items, each failed once in that run with `message`. */
function failRepositories(runId: number, names: string[], message: (name: string) => string): void {
  const frontier = new Frontier(dataset.db, { runId });
  for (const name of names) {
    const id = frontier.enqueue('repository', `${runId}|registry.test/${name}`);
    frontier.claim(['repository'], 1);
    frontier.fail(id, { code: 'PERMANENT', message: message(name) }, { retryable: false, maxAttempts: 3 });
  }
}

describe('tellFailedItems', () => {
  it("names the first five of the run's failed items with their error, and how to list them all", () => {
    const runs = new RunStore(dataset.db);
    const earlier = runs.start({ config: {}, toolVersion: 't', analyzerVersion: 'a' });
    failRepositories(earlier, ['old'], () => 'an earlier run failed it');
    const runId = runs.start({ config: {}, toolVersion: 't', analyzerVersion: 'a' });
    failRepositories(runId, ['a', 'b', 'c', 'd', 'e', 'f', 'g'], (n) => `${n} answered 404`);
    const text = told(runId);
    expect(text.split('\n')).toEqual([
      `hubcrawl: 7 failed items in run ${runId} (every attempt is in the failures table):`,
      ...['a', 'b', 'c', 'd', 'e'].map((n) => `  repository registry.test/${n}: PERMANENT ${n} answered 404`),
      `  … and 2 more: hubcrawl query --db ${dataset.path} 'SELECT kind, key, last_error_code, last_error FROM frontier fr ` +
        `WHERE state = '\\''failed'\\'' AND EXISTS (SELECT 1 FROM failures f WHERE f.frontier_id = fr.id AND f.run_id = ${runId})'`,
      '',
    ]);
  });

  it('escapes what a registry said, so that it cannot drive the terminal or pass for a line of its own', () => {
    const runId = new RunStore(dataset.db).start({ config: {}, toolVersion: 't', analyzerVersion: 'a' });
    failRepositories(runId, ['x\u001b[2Ky'], () => '\u001b]0;owned\u0007\nhubcrawl: 0 failed items');
    expect(told(runId)).toBe(
      `hubcrawl: 1 failed item in run ${runId} (every attempt is in the failures table):\n` +
        '  repository registry.test/x\\x1b[2Ky: PERMANENT \\x1b]0;owned\\x07\\x0ahubcrawl: 0 failed items\n',
    );
  });

  it('says nothing when no item failed', () => {
    expect(told(1)).toBe('');
  });
});
