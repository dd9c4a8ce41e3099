import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { layerKey, layerKeySuffix, manifestKey, runKeyRange } from '../pipeline/keys.js';
import { Frontier } from './frontier.js';
import type { FrontierState } from './frontier-types.js';
import { RunLayerItems } from './run-layers.js';
import { recordImage } from './test-fixtures/images.js';
import { openTempDataset, type TempDataset } from './test-fixtures/temp-dataset.js';

let dataset: TempDataset;
let db: Database;
let frontier: Frontier;
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const keys = (runId: number) => ({ runKeys: runKeyRange(runId), layerKeySuffix: layerKeySuffix('4', 'sel') });

beforeEach(() => {
  dataset = openTempDataset('hubcrawl-run-layers-');
  db = dataset.db;
  frontier = new Frontier(db);
});
afterEach(() => dataset.remove());

/** Image `c` with these layers, and its manifest item of `runId` in `state`. */
function image(c: string, layers: readonly string[], runId: number, state: FrontierState = 'done'): void {
  const d = digest(c);
  recordImage(db, d, layers);
  const id = frontier.enqueue('manifest', manifestKey(runId, 'r.example:5000', d));
  db.prepare('UPDATE frontier SET state = ? WHERE id = ?').run(state, id);
}

function layerItem(layer: string, state: FrontierState, selection = 'sel'): number {
  const id = frontier.enqueue('layer', layerKey(layer, '4', selection));
  db.prepare('UPDATE frontier SET state = ? WHERE id = ?').run(state, id);
  return id;
}

describe('RunLayerItems', () => {
  it("lists the layer items of the run's resolved images under the run's key, and no other", () => {
    const [a, b, c, shared] = ['a', 'b', 'c', 'd'].map(digest) as [string, string, string, string];
    image('1', [shared, a], 7);
    image('2', [shared, b], 6); // another run's image
    image('3', [c], 7, 'pending'); // not resolved yet: its layers are not known to be this run's
    const ownA = layerItem(a, 'pending');
    const ownShared = layerItem(shared, 'pending');
    layerItem(b, 'pending');
    layerItem(c, 'pending');
    layerItem(a, 'pending', 'other-selection'); // an earlier selection's item of the same layer
    const items = new RunLayerItems(db);
    const pending = (id: number) => ({ id, state: 'pending' });
    expect(items.notDone(keys(7))).toEqual([pending(ownA), pending(ownShared)]);
    // Run 6 ends where run 7 begins ('6|' .. '6}'); run 70's keys ('70|') are not run 7's.
    image('4', [b], 70);
    expect(items.notDone(keys(7))).toEqual([pending(ownA), pending(ownShared)]);
    expect(items.notDone(keys(6))).toHaveLength(2);
    // Done items are left out, the others say their state.
    db.prepare(`UPDATE frontier SET state = 'done' WHERE id = ?`).run(ownA);
    db.prepare(`UPDATE frontier SET state = 'failed' WHERE id = ?`).run(ownShared);
    expect(items.notDone(keys(7))).toEqual([{ id: ownShared, state: 'failed' }]);
  });

  it('reaches the frontier through its (kind, key) index, never scanning it', () => {
    const source = (new RunLayerItems(db) as unknown as { select: { source: string } }).select.source;
    const plan = (
      db.prepare(`EXPLAIN QUERY PLAN ${source}`).all({ low: '7|', high: '7}', suffix: '|4|sel' }) as Array<{
        detail: string;
      }>
    ).map((r) => r.detail);
    expect(plan).toContain('SEARCH m USING INDEX sqlite_autoindex_frontier_1 (kind=? AND key>? AND key<?)');
    expect(plan).toContain('SEARCH f USING INDEX sqlite_autoindex_frontier_1 (kind=? AND key=?)');
    expect(plan.some((d) => /^SCAN (f|m|frontier)\b/.test(d))).toBe(false);
  });
});
