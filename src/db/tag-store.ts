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
 * completed (a missing push date), never changed. Beside them, the tags a complete listing no longer held
 * (tag_absences), so that the views can tell a tag still pointing at an image from one that moved or went.
 */
export class TagStore {
  private readonly insert: Statement;
  private readonly selectLatest: Statement;
  private readonly selectHistory: Statement;
  private readonly selectPresent: Statement;
  private readonly insertAbsence: Statement;
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
    // The repository's tags whose latest state is present: observed, and no complete listing since lacked
    // them. Written out rather than read from the tag_heads view so that it stays on this repository's rows.
    this.selectPresent = db
      .prepare(
        `SELECT s.tag FROM (SELECT tag, max(seen_at) AS last_seen FROM tag_observations
                             WHERE repository_id = @repositoryId AND tag <> '' GROUP BY tag) s
          WHERE NOT EXISTS (SELECT 1 FROM tag_absences a
                             WHERE a.repository_id = @repositoryId AND a.tag = s.tag AND a.seen_at > s.last_seen)
          ORDER BY s.tag`,
      )
      .pluck();
    this.insertAbsence = db.prepare(
      `INSERT OR IGNORE INTO tag_absences (repository_id, tag, seen_at, run_id) VALUES (?, ?, ?, ?)`,
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

  /**
   * The tags a listing of a repository's tags lacks that the dataset saw present in it: what a complete
   * listing would prove gone (migrations/0006_tag_currency.sql). The tag filters act after the listing, so
   * pass every name it listed, filtered out or not. A listing can lack a tag that still exists (Docker Hub's
   * offset paging skips a tag re-pushed while it walks), so each is to be confirmed gone by the registry
   * before recordAbsences records it (handleRepository in pipeline/handlers/discovery.ts).
   */
  absentFrom(repositoryId: number, listed: Iterable<string>): string[] {
    const names = new Set(listed);
    return (this.selectPresent.all({ repositoryId }) as string[]).filter((t) => !names.has(t));
  }

  /**
   * Records that a complete listing of a repository's tags, begun at `listingStartedAt`, lacked `tags` and
   * the registry confirmed them gone. The time is when the listing began, not now: a tag another item
   * observed while the listing ran was seen after that and stays present (tag_heads: later wins). Only for
   * a listing that was not cut short. A tag not present as of now (recorded absent since its last
   * observation, or never observed) gets no row, so a tag that stays deleted adds none per run. Returns the
   * tags recorded absent.
   */
  recordAbsences(
    repositoryId: number,
    tags: Iterable<string>,
    runId: number,
    listingStartedAt: string,
  ): string[] {
    // One transaction (a savepoint inside an item's): a repository found gone records them outside one.
    return writeTransaction(this.db, () => {
      const present = new Set(this.selectPresent.all({ repositoryId }) as string[]);
      const gone = [...new Set(tags)].filter((t) => present.has(t)).sort();
      for (const tag of gone) this.insertAbsence.run(repositoryId, tag, listingStartedAt, runId);
      return gone;
    })();
  }

  /**
   * absentFrom and recordAbsences in one, with no confirmation in between: every tag the listing lacks is
   * recorded gone, at `seenAt`. The crawl does not use it (a listing can miss a tag that exists, see
   * absentFrom); it states what the views make of an absence, for tests and tools that build a dataset.
   */
  recordCompleteListing(
    repositoryId: number,
    listed: Iterable<string>,
    runId: number,
    seenAt: string = nowIso(),
  ): string[] {
    return this.recordAbsences(repositoryId, this.absentFrom(repositoryId, listed), runId, seenAt);
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
