import type { Database, Statement } from 'better-sqlite3';
import type { FrontierState } from './frontier-types.js';

/** Where a run's items sit in the frontier's keys (pipeline/keys.ts): the caller's, not this module's, format. */
export interface RunLayerKeys {
  /** The run's run-keyed items are the keys in [low, high): its manifest items among them. */
  runKeys: { low: string; high: string };
  /** A layer item's key is its digest followed by this (the analyzer version and selection of the run). */
  layerKeySuffix: string;
}

/**
 * The layer items that the images one run resolved need: the layers image_layers lists for the digests of
 * the run's done manifest items (keys `<run>|<registry>@<digest>`: the digest follows the first '@', as no
 * registry host holds one), each under the run's own layer key. `hubcrawl scan` works through these and
 * leaves every other layer item of the dataset (an earlier run's pending or failed ones) to a crawl.
 *
 * Driven from the run's manifest items, a range of the frontier's (kind, key) index, then image_layers by
 * its primary key and the layer item by (kind, key) again: the cost grows with the run, not the dataset
 * (the plan is checked in run-layers.test.ts).
 */
export class RunLayerItems {
  private readonly select: Statement;

  constructor(db: Database) {
    this.select = db.prepare(
      `SELECT DISTINCT f.id, f.state FROM frontier m
         JOIN image_layers il ON il.image_digest = substr(m.key, instr(m.key, '@') + 1)
         JOIN frontier f ON f.kind = 'layer' AND f.key = il.layer_digest || @suffix
        WHERE m.kind = 'manifest' AND m.key >= @low AND m.key < @high AND m.state = 'done'
          AND f.state <> 'done'
        ORDER BY f.id`,
    );
  }

  /** The run's layer items that are not done, oldest first, with their states. */
  notDone(keys: RunLayerKeys): Array<{ id: number; state: Exclude<FrontierState, 'done'> }> {
    return this.select.all({
      low: keys.runKeys.low,
      high: keys.runKeys.high,
      suffix: keys.layerKeySuffix,
    }) as Array<{ id: number; state: Exclude<FrontierState, 'done'> }>;
  }
}
