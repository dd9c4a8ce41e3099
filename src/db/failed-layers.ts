/**
 * Layers whose analysis failed and that later crawls will not try again: what a scheduled crawl's summary
 * and `stats` must say, since such layers no longer fail a run (docs/cli.md). A layer's frontier items are
 * keyed by digest, analyzer version and IOC selection (pipeline/keys.ts), so a layer has one item per
 * version and selection it was queued under; only its newest item says what the next crawl does with it.
 * An older item that failed for good says nothing once a version or selection change queued a new one.
 */
import type { Database } from 'better-sqlite3';

/** Each layer digest's newest frontier item (the digest is the key up to its first '|'). */
const NEWEST_LAYER_ITEMS = `
  SELECT fr.* FROM frontier fr
    JOIN (SELECT max(id) AS id FROM frontier WHERE kind = 'layer'
           GROUP BY substr(key, 1, instr(key, '|') - 1)) newest ON newest.id = fr.id`;

const DIGEST = `substr(fr.key, 1, instr(fr.key, '|') - 1)`;

/**
 * Failed layers the next crawl will not try again: the newest item failed, not with a network fault (a new
 * run revives those), after `maxAttempts` attempts (the latest run's --max-attempts).
 */
export function countLayersFailedForGood(db: Database, maxAttempts: number): number {
  return db
    .prepare(
      `SELECT count(*) FROM (${NEWEST_LAYER_ITEMS}) fr
        WHERE fr.state = 'failed' AND fr.retryable = 0 AND fr.attempts >= ?
          AND EXISTS (SELECT 1 FROM layers l WHERE l.digest = ${DIGEST} AND l.status = 'failed')`,
    )
    .pluck()
    .get(maxAttempts) as number;
}

/**
 * Layers of run `runId`'s images whose newest item failed in an earlier run and that this run did not try
 * (no failure logged under it): its images are matched without them, and the run's own status does not
 * show them.
 */
export function countLayersFailedBeforeRun(db: Database, runId: number): number {
  return db
    .prepare(
      `SELECT count(*) FROM (${NEWEST_LAYER_ITEMS}) fr
        WHERE fr.state = 'failed'
          AND NOT EXISTS (SELECT 1 FROM failures f WHERE f.frontier_id = fr.id AND f.run_id = @runId)
          AND EXISTS (SELECT 1 FROM layers l WHERE l.digest = ${DIGEST} AND l.status = 'failed')
          AND EXISTS (SELECT 1 FROM image_layers il
                        JOIN image_observations o ON o.image_digest = il.image_digest AND o.run_id = @runId
                       WHERE il.layer_digest = ${DIGEST})`,
    )
    .pluck()
    .get({ runId }) as number;
}
