import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Frontier } from '../db/frontier.js';
import { openDatabase } from '../db/open.js';
import { recordImage } from '../db/test-fixtures/images.js';
import { layerKey, manifestKey } from './keys.js';
import { layerClaimer } from './layer-scope.js';

let dir: string;
let db: Database;
let frontier: Frontier;
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const [OWN, OTHER] = [digest('a'), digest('b')];
const run = (resumed: boolean) => ({
  runId: 7,
  analyzerVersion: '4',
  selection: 'sel',
  maxAttempts: 3,
  resumed,
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hubcrawl-layer-scope-'));
  db = openDatabase(join(dir, 'd.db'));
  frontier = new Frontier(db);
  // Run 7 resolved image 1 (layer OWN); OTHER is a layer an earlier run queued for an image of its own.
  const image = digest('1');
  recordImage(db, image, [OWN]);
  frontier.enqueue('manifest', manifestKey(7, 'r.example', image));
  frontier.complete(frontier.claim(['manifest'], 1)[0]!.id);
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A layer item that failed `attempts` times, its last error retryable or not. */
function failedLayer(layer: string, attempts: number, retryable: boolean): number {
  const id = frontier.enqueue('layer', layerKey(layer, '4', 'sel'));
  db.prepare(`UPDATE frontier SET state = 'failed', attempts = ?, retryable = ? WHERE id = ?`).run(
    attempts,
    retryable ? 1 : 0,
    id,
  );
  return id;
}
const state = (id: number) => frontier.get(id)?.state;

describe("layerClaimer('run')", () => {
  it("claims the run's own pending layers only; 'dataset' claims every pending one", () => {
    const own = frontier.enqueue('layer', layerKey(OWN, '4', 'sel'));
    const other = frontier.enqueue('layer', layerKey(OTHER, '4', 'sel'));
    const scoped = layerClaimer('run', db, frontier, run(false));
    expect(scoped.claim(5).map((i) => i.id)).toEqual([own]);
    scoped.settled();
    expect(scoped.claim(5)).toEqual([]);
    expect(state(other)).toBe('pending');
    expect(
      layerClaimer('dataset', db, frontier, run(false))
        .claim(5)
        .map((i) => i.id),
    ).toEqual([other]);
  });

  it('gives its own failed layers another go once per invocation, as a crawl does at its start', () => {
    // A new run: a retryable failure gets fresh attempts even past the limit; a permanent one does not.
    const own = failedLayer(OWN, 3, true);
    const other = failedLayer(OTHER, 3, true);
    const scoped = layerClaimer('run', db, frontier, run(false));
    const [item] = scoped.claim(5);
    expect(item?.id).toBe(own);
    expect(item?.attempts).toBe(0);
    expect(state(other)).toBe('failed');
    // It fails again for good in this invocation: not revived a second time.
    frontier.fail(own, { message: 'reset' }, { retryable: true, maxAttempts: 1 });
    scoped.settled();
    expect(scoped.claim(5)).toEqual([]);
    expect(state(own)).toBe('failed');
    // The next invocation of the same run (resumed): under maxAttempts only, attempts kept.
    const resumed = layerClaimer('run', db, frontier, run(true));
    expect(resumed.claim(5).map((i) => [i.id, i.attempts])).toEqual([[own, 1]]);
  });

  it('never revives a layer that failed in this invocation: its failures were its retries', () => {
    const own = frontier.enqueue('layer', layerKey(OWN, '4', 'sel'));
    const scoped = layerClaimer('run', db, frontier, run(false));
    let claims = 0;
    for (;;) {
      const [item] = scoped.claim(5);
      if (item === undefined) break;
      claims += 1;
      expect(claims).toBeLessThanOrEqual(3);
      frontier.fail(item.id, { message: 'reset' }, { retryable: true, maxAttempts: 3 });
      scoped.settled();
    }
    expect(claims).toBe(3);
    expect(state(own)).toBe('failed');
  });

  it('counts as open the run’s own items only, not the dataset’s backlog', () => {
    frontier.enqueue('layer', layerKey(OWN, '4', 'sel'));
    frontier.enqueue('layer', layerKey(OTHER, '4', 'sel'));
    frontier.enqueue('reference', '7|r.example/a/b:1@');
    frontier.enqueue('reference', '6|r.example/a/b:1@');
    expect(layerClaimer('run', db, frontier, run(false)).open()).toBe(2);
    expect(layerClaimer('dataset', db, frontier, run(false)).open()).toBe(4);
  });

  it('leaves a permanent failure past the attempt limit failed', () => {
    const own = failedLayer(OWN, 3, false);
    expect(layerClaimer('run', db, frontier, run(false)).claim(5)).toEqual([]);
    expect(state(own)).toBe('failed');
  });

  it('reads the ids again only after an item settled', () => {
    const scoped = layerClaimer('run', db, frontier, run(false));
    expect(scoped.claim(5)).toEqual([]);
    const own = frontier.enqueue('layer', layerKey(OWN, '4', 'sel'));
    expect(scoped.claim(5)).toEqual([]);
    scoped.settled();
    expect(scoped.claim(5).map((i) => i.id)).toEqual([own]);
  });
});
