import type { Database } from 'better-sqlite3';
import type { Frontier } from '../db/frontier.js';
import type { FrontierItem } from '../db/frontier-types.js';
import { RunLayerItems, type RunLayerKeys } from '../db/run-layers.js';
import { CONTENT_KEYED_KINDS, layerKeySuffix, runKeyRange } from './keys.js';

/**
 * Which layer items a run works through:
 * - 'dataset' (a crawl): every pending one, whichever run queued it. Layers are keyed by content, so a
 *   crawl also finishes what an earlier run left (and prepareFrontier gives failed ones another go).
 * - 'run' (`hubcrawl scan`): only those the images this run resolved need. A scan is asked about a few
 *   images now; the dataset's backlog (a failed run's pending layers, a crawl's layers that failed in an
 *   outage) stays as it is, for the next crawl.
 */
export type LayerScope = 'dataset' | 'run';

/** What decides a run's layer items and how its failed ones are retried. */
export interface LayerRun {
  runId: number;
  analyzerVersion: string;
  selection: string;
  maxAttempts: number;
  resumed: boolean;
}

/** Claims layer items for the run's loop. */
export interface LayerClaimer {
  claim(limit: number): FrontierItem[];
  /** An item of the run reached an outcome: the run may have resolved images, or a layer went back to pending. */
  settled(): void;
  /** The items still to do that the run works through (the progress line's queue). */
  open(): number;
}

const LAYER_KINDS = ['layer'] as const;

export function layerClaimer(
  scope: LayerScope,
  db: Database,
  frontier: Frontier,
  run: LayerRun,
): LayerClaimer {
  if (scope === 'dataset') {
    return {
      claim: (limit) => frontier.claim(LAYER_KINDS, limit),
      settled() {},
      open: () => frontier.openCount(),
    };
  }
  return new RunOwnLayers(db, frontier, run);
}

/**
 * The layer items of the run's own images. Their ids are read again only after an item settled, and only
 * when fewer are known than the loop asks for: the query walks the run's manifest items, so reading it
 * at every turn of the loop would cost a large scan its run size squared.
 *
 * A failed one gets another go, once per invocation, as a crawl gives every failed layer at its start
 * (prepareFrontier): under maxAttempts, and with fresh attempts in a new run when its error was retryable.
 * An item this invocation has claimed is never revived: its failures are its retries' (Frontier.fail).
 */
class RunOwnLayers implements LayerClaimer {
  private readonly items: RunLayerItems;
  private readonly keys: RunLayerKeys;
  private queue: number[] = [];
  private stale = true;
  /** Items this invocation claimed or revived. */
  private readonly reached = new Set<number>();

  constructor(
    db: Database,
    private readonly frontier: Frontier,
    private readonly run: LayerRun,
  ) {
    this.items = new RunLayerItems(db);
    this.keys = {
      runKeys: runKeyRange(run.runId),
      layerKeySuffix: layerKeySuffix(run.analyzerVersion, run.selection),
    };
  }

  claim(limit: number): FrontierItem[] {
    if (limit <= 0) return [];
    if (this.stale && this.queue.length < limit) this.refresh();
    const claimed: FrontierItem[] = [];
    while (claimed.length < limit && this.queue.length > 0) {
      claimed.push(...this.frontier.claimIds(this.queue.splice(0, limit - claimed.length)));
    }
    for (const item of claimed) this.reached.add(item.id);
    return claimed;
  }

  settled(): void {
    this.stale = true;
  }

  /** The run's own open items: its run-keyed ones and its images' layers not yet done or failed. */
  open(): number {
    const layers = this.items.notDone(this.keys).filter((i) => i.state !== 'failed').length;
    return this.frontier.openCount(this.keys.runKeys) + layers;
  }

  private refresh(): void {
    this.stale = false;
    const items = this.items.notDone(this.keys);
    const failed = items.filter((i) => i.state === 'failed' && !this.reached.has(i.id)).map((i) => i.id);
    if (failed.length > 0) {
      for (const id of failed) this.reached.add(id);
      this.frontier.retryFailed(this.run.maxAttempts, { kinds: CONTENT_KEYED_KINDS, ids: failed });
      if (!this.run.resumed) this.frontier.reviveRetryable('layer', failed);
    }
    const revived = new Set(failed);
    this.queue = items.filter((i) => i.state === 'pending' || revived.has(i.id)).map((i) => i.id);
  }
}
