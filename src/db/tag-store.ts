import type { Database, Statement } from 'better-sqlite3';
import { nowIso } from './rows.js';
import { guardWrite, writeTransaction } from './sqlite-errors.js';

/** "In run R, tag T of repository X pointed at digest D." Use tag '' for a digest reached without a tag. */
export interface TagObservation {
  repositoryId: number;
  tag: string;
  /** What the tag points to: an index or a single image manifest. */
  digest: string;
  /** The Hub's `tag_last_pushed` (or null when the registry does not say). */
  pushedAt: string | null;
  seenAt?: string;
  runId: number;
}

export interface TagObservationRow {
  id: number;
  repositoryId: number;
  tag: string;
  digest: string;
  pushedAt: string | null;
  seenAt: string;
  runId: number;
}

const COLUMNS = `id, repository_id AS repositoryId, tag, digest, pushed_at AS pushedAt, seen_at AS seenAt,
                 run_id AS runId`;

/**
 * Tag observations: append-only history, because tags move and research needs the past. A row is only ever
 * completed (a missing push date), never changed.
 */
export class TagStore {
  private readonly insert: Statement;
  private readonly selectLatest: Statement;
  private readonly selectHistory: Statement;
  private readonly observeManyTx: (obs: readonly TagObservation[]) => number;

  constructor(private readonly db: Database) {
    // Unique per (run, repository, tag, digest): observing twice in one run (a resumed run) adds no row.
    // A push date the second observation brings fills the first one's gap: a tag reached by a seed (a HEAD
    // gives no date) and by the Docker Hub listing (which does) keeps the date, whichever came first.
    this.insert = db.prepare(
      `INSERT INTO tag_observations (repository_id, tag, digest, pushed_at, seen_at, run_id)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (run_id, repository_id, tag, digest) DO UPDATE SET pushed_at = excluded.pushed_at
        WHERE tag_observations.pushed_at IS NULL AND excluded.pushed_at IS NOT NULL`,
    );
    this.selectLatest = db.prepare(
      `SELECT ${COLUMNS} FROM tag_observations WHERE repository_id = ? AND tag = ? ORDER BY seen_at DESC, id DESC LIMIT 1`,
    );
    this.selectHistory = db.prepare(
      `SELECT ${COLUMNS} FROM tag_observations WHERE repository_id = ? ORDER BY tag, seen_at, id`,
    );
    this.observeManyTx = writeTransaction(db, (obs: readonly TagObservation[]) => {
      let added = 0;
      for (const o of obs) added += this.insertOne(o);
      return added;
    });
  }

  private insertOne(o: TagObservation): number {
    return this.insert.run(o.repositoryId, o.tag, o.digest, o.pushedAt, o.seenAt ?? nowIso(), o.runId)
      .changes;
  }

  /** Records one observation; false when this run had recorded it already (and it brought no missing push date). */
  observe(o: TagObservation): boolean {
    return guardWrite(this.db, () => this.insertOne(o)) > 0;
  }

  /** Records a page of observations in one transaction; returns how many added or completed a row. */
  observeMany(obs: readonly TagObservation[]): number {
    return this.observeManyTx(obs);
  }

  /** The most recent observation of a tag (for incremental re-crawls: same digest → nothing to fetch). */
  latest(repositoryId: number, tag: string): TagObservationRow | undefined {
    return this.selectLatest.get(repositoryId, tag) as TagObservationRow | undefined;
  }

  /** Every observation of a repository, by tag then time. */
  history(repositoryId: number): TagObservationRow[] {
    return this.selectHistory.all(repositoryId) as TagObservationRow[];
  }
}
