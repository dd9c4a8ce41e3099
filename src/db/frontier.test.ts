import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RetryableError } from '../core/errors.js';
import { Frontier } from './frontier.js';
import { RunStore } from './run-store.js';
import { openTempDataset, type TempDataset } from './test-fixtures/temp-dataset.js';

let dataset: TempDataset;
let db: Database;
let f: Frontier;
beforeEach(() => {
  dataset = openTempDataset('hubcrawl-frontier-');
  db = dataset.db;
  f = new Frontier(db);
});
afterEach(() => dataset.remove());

describe('Frontier', () => {
  it('enqueues an item once per kind and key and keeps the first payload', () => {
    const id = f.enqueue('repository', 'docker.io/library/debian', { n: 1 });
    expect(f.enqueue('repository', 'docker.io/library/debian', { n: 2 })).toBe(id);
    expect(f.enqueue('reference', 'docker.io/library/debian')).not.toBe(id);
    expect(f.get(id)).toMatchObject({ kind: 'repository', state: 'pending', payload: { n: 1 }, attempts: 0 });
  });

  it('claims pending items of the asked kinds, oldest first, and marks them in-progress', () => {
    f.enqueue('layer', 'l1');
    f.enqueue('manifest', 'm1');
    f.enqueue('layer', 'l2');
    f.enqueue('layer', 'l3');
    const got = f.claim(['layer'], 2);
    expect(got.map((i) => [i.key, i.state])).toEqual([
      ['l1', 'in-progress'],
      ['l2', 'in-progress'],
    ]);
    expect(f.claim(['layer', 'manifest'], 10).map((i) => i.key)).toEqual(['m1', 'l3']);
    expect(f.claim(['layer', 'manifest'], 10)).toEqual([]);
  });

  it('completes an item and enqueues its children in the same step, skipping children that exist', () => {
    const parent = f.enqueue('repository', 'repo');
    f.enqueue('manifest', 'sha256:old');
    f.claim(['repository'], 1);
    f.complete(parent, [
      { kind: 'manifest', key: 'sha256:old', payload: { again: true } },
      { kind: 'manifest', key: 'sha256:new', payload: { tag: 'latest' } },
    ]);
    expect(f.get(parent)?.state).toBe('done');
    expect(f.find('manifest', 'sha256:new')).toMatchObject({
      parentId: parent,
      payload: { tag: 'latest' },
      state: 'pending',
    });
    expect(f.find('manifest', 'sha256:old')?.payload).toBeNull();
    expect(f.counts()).toEqual([
      { kind: 'manifest', state: 'pending', count: 2 },
      { kind: 'repository', state: 'done', count: 1 },
    ]);
  });

  it('refuses to complete an item that was not claimed', () => {
    const id = f.enqueue('layer', 'l');
    expect(() => f.complete(id)).toThrow(/not in-progress; claim it first/);
  });

  it('does not re-open a done item unless forced', () => {
    const id = f.enqueue('repository', 'repo', { page: 1 });
    f.claim(['repository'], 1);
    f.complete(id);
    f.enqueue('repository', 'repo', { page: 1 });
    expect(f.get(id)?.state).toBe('done');
    f.enqueue('repository', 'repo', { page: 2 }, null, { force: true });
    expect(f.get(id)).toMatchObject({ state: 'pending', payload: { page: 2 }, attempts: 0 });
  });

  it('puts a retryable failure back to pending until the attempt limit, then marks it failed and logs each try', () => {
    const id = f.enqueue('layer', 'l');
    const err = new RetryableError('connection reset');
    for (let i = 1; i <= 2; i++) {
      f.claim(['layer'], 1);
      expect(f.fail(id, err, { retryable: true, maxAttempts: 3 })).toBe('pending');
    }
    f.claim(['layer'], 1);
    expect(f.fail(id, err, { retryable: true, maxAttempts: 3 })).toBe('failed');
    expect(f.get(id)).toMatchObject({
      state: 'failed',
      attempts: 3,
      lastError: 'connection reset',
      lastErrorCode: 'RETRYABLE',
    });
    expect(db.prepare('SELECT count(*) FROM failures WHERE frontier_id = ?').pluck().get(id)).toBe(3);
  });

  it('marks a permanent failure failed at once', () => {
    const id = f.enqueue('manifest', 'm');
    f.claim(['manifest'], 1);
    expect(f.fail(id, { code: 'PERMANENT', message: '404' }, { retryable: false, maxAttempts: 5 })).toBe(
      'failed',
    );
    expect(f.failed().map((i) => i.key)).toEqual(['m']);
  });

  it('retries failed items on a later run up to the attempt limit', () => {
    const a = f.enqueue('layer', 'a');
    const b = f.enqueue('layer', 'b');
    const p = f.enqueue('layer', 'p');
    f.claim(['layer'], 3);
    f.fail(a, { message: 'x' }, { retryable: false, maxAttempts: 1 });
    f.fail(p, { message: 'gone' }, { retryable: false, maxAttempts: 1 });
    f.fail(b, { message: 'y' }, { retryable: true, maxAttempts: 1 });
    db.prepare('UPDATE frontier SET attempts = 5 WHERE id = ?').run(a);
    expect(f.retryFailed(3, { onlyRetryable: true })).toBe(1);
    expect(f.get(b)?.state).toBe('pending');
    expect(f.get(p)?.state).toBe('failed');
    expect(f.retryFailed(3)).toBe(1);
    expect(f.get(p)?.state).toBe('pending');
    expect(f.get(a)?.state).toBe('failed');
  });

  it("closes an earlier run's pending items of the given kinds as failed, logged under that run", () => {
    new RunStore(db).start({ config: {}, toolVersion: 't', analyzerVersion: '2' });
    const earlier = f.enqueue('reference', '1|r/a:1@');
    const unkeyed = f.enqueue('repository', 'r/b');
    const done = f.enqueue('manifest', '1|m');
    f.claim(['manifest'], 1);
    f.complete(done, []);
    const layer = f.enqueue('layer', 'sha256:aa|x');
    const mine = f.enqueue('reference', '2|r/c:1@');
    const error = { code: 'SUPERSEDED', message: 'run 2 started a new study' };
    expect(f.supersede(['reference', 'repository', 'manifest'], '2|', error)).toBe(2);
    expect([earlier, unkeyed, done, layer, mine].map((id) => f.get(id)?.state)).toEqual([
      'failed',
      'failed',
      'done',
      'pending',
      'pending',
    ]);
    expect(f.get(earlier)).toMatchObject({ lastErrorCode: 'SUPERSEDED', lastError: error.message });
    const logged = db.prepare('SELECT key, run_id, error_code, retryable FROM failures ORDER BY id').all();
    expect(logged).toEqual([
      { key: '1|r/a:1@', run_id: 1, error_code: 'SUPERSEDED', retryable: 0 },
      { key: 'r/b', run_id: null, error_code: 'SUPERSEDED', retryable: 0 },
    ]);
    // Superseded items are not retryable, so no later run brings them back.
    expect(f.retryFailed(5, { onlyRetryable: true })).toBe(0);
  });

  it('retries only the failed items of the given kinds whose key starts with the given prefix', () => {
    const mine = f.enqueue('reference', '7|docker.io/library/debian:sid');
    const other = f.enqueue('reference', '17|docker.io/library/debian:sid');
    const layer = f.enqueue('layer', 'sha256:aa');
    const literal = f.enqueue('repository', '7|%');
    f.claim(['reference', 'layer', 'repository'], 4);
    for (const id of [mine, other, layer, literal]) {
      f.fail(id, { message: 'gone' }, { retryable: false, maxAttempts: 1 });
    }
    // `%` and `_` in a prefix are characters, not LIKE patterns; kinds narrow the prefix's matches.
    expect(f.retryFailed(3, { keyPrefix: '7|_' })).toBe(0);
    expect(f.retryFailed(3, { kinds: ['reference'], keyPrefix: '7|' })).toBe(1);
    expect([mine, other, layer, literal].map((id) => f.get(id)?.state)).toEqual([
      'pending',
      'failed',
      'failed',
      'failed',
    ]);
    expect(f.retryFailed(3, { kinds: ['layer', 'repository'] })).toBe(2);
    expect(f.get(other)?.state).toBe('failed');
  });

  it('gives failed items of one kind a fresh attempt budget only when their last error was retryable', () => {
    const net = f.enqueue('layer', 'net');
    const bad = f.enqueue('layer', 'bad');
    const ref = f.enqueue('reference', 'r');
    f.claim(['layer', 'reference'], 3);
    f.fail(net, { message: 'reset' }, { retryable: true, maxAttempts: 1 });
    f.fail(bad, { message: 'digest mismatch' }, { retryable: false, maxAttempts: 1 });
    f.fail(ref, { message: 'reset' }, { retryable: true, maxAttempts: 1 });
    expect(f.reviveRetryable('layer')).toBe(1);
    expect(f.get(net)).toMatchObject({ state: 'pending', attempts: 0 });
    expect(f.get(bad)?.state).toBe('failed');
    expect(f.get(ref)?.state).toBe('failed');
  });

  it('returns items a killed run had claimed to pending without counting an attempt', () => {
    f.enqueue('layer', 'a');
    f.enqueue('layer', 'b');
    f.claim(['layer'], 2);
    const fresh = new Frontier(db);
    expect(fresh.resetInProgress()).toBe(2);
    expect(fresh.claim(['layer'], 5).map((i) => [i.key, i.attempts])).toEqual([
      ['a', 0],
      ['b', 0],
    ]);
  });

  it('requeues a claimed item without counting an attempt', () => {
    const id = f.enqueue('layer', 'a');
    f.claim(['layer'], 1);
    f.requeue(id);
    expect(f.get(id)).toMatchObject({ state: 'pending', attempts: 0 });
    expect(f.openCount()).toBe(1);
  });
});
