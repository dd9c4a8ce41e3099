import type { Database } from 'better-sqlite3';
import { nowIso } from './rows.js';
import { guardWrite, writeTransaction } from './sqlite-errors.js';
import { parseStoredJson } from './stored-json.js';

/**
 * The durable work queue. Every unit of crawl work is a row keyed by (kind, key); its state moves
 *
 *   pending ──claim──► in-progress ──complete──► done
 *      ▲                    │  └──fail──► failed ──retryFailed──► pending
 *      └──fail(retryable)───┘  └──requeue / resetInProgress──► pending
 *
 * Crash-safety invariants (a SIGKILL may land between any two statements of the process):
 *
 * 1. Every transition is one SQLite transaction, so after a crash each row is in exactly one state.
 * 2. `complete(id, children)` marks the item done and inserts its children in ONE transaction: either
 *    both happened or neither did. Children are unique on (kind, key), so re-running a parent whose
 *    completion was lost re-enqueues nothing twice. Nothing is lost: an item is only ever `done` together
 *    with its children.
 * 3. `in-progress` means "a process claimed it". Only one crawl holds a database (lock.ts), so at start-up
 *    every in-progress row belongs to a dead process: `resetInProgress()` returns them to pending
 *    (without counting an attempt: being killed is not the item's fault).
 * 4. The work an item does before `complete` must be idempotent (upserts by digest, INSERT OR IGNORE on
 *    unique observations) or be written in the same transaction as `complete`: better-sqlite3
 *    transactions nest, so `db.transaction(() => { store.put(…); frontier.complete(id, kids); })()` commits
 *    the dataset rows and the completion atomically. Then a re-run after a crash writes the same rows.
 * 5. Re-enqueueing a done item is a no-op unless `force` (an incremental re-crawl of a tag list), so a
 *    resumed run never redoes finished work by accident.
 */

import type {
  EnqueueOptions,
  FailOptions,
  FrontierCount,
  FrontierError,
  FrontierItem,
  FrontierKind,
  FrontierState,
  NewFrontierItem,
  RetryFailedOptions,
} from './frontier-types.js';

interface RawItem {
  id: number;
  kind: FrontierKind;
  key: string;
  payload_json: string;
  parent_id: number | null;
  state: FrontierState;
  attempts: number;
  last_error: string | null;
  last_error_code: string | null;
  updated_at: string;
}

/**
 * A frontier row's payload, parsed; a damaged one stops the caller naming the row (parseStoredJson). Some
 * kinds store none (`null`); a caller that needs an object says so with `expected`.
 */
export function parsePayload(
  r: Pick<RawItem, 'id' | 'kind' | 'key' | 'payload_json'>,
  expected?: Parameters<typeof parseStoredJson>[2],
): unknown {
  const where = { row: `frontier row ${r.id} (${r.kind} ${r.key})`, column: 'payload_json' };
  return parseStoredJson(r.payload_json, where, expected);
}

function toItem<P>(r: RawItem): FrontierItem<P> {
  return {
    id: r.id,
    kind: r.kind,
    key: r.key,
    payload: parsePayload(r) as P,
    parentId: r.parent_id,
    state: r.state,
    attempts: r.attempts,
    lastError: r.last_error,
    lastErrorCode: r.last_error_code,
    updatedAt: r.updated_at,
  };
}

export interface FrontierOptions {
  /** Recorded with every failure in the `failures` log. */
  runId?: number | null;
  /** Clock for updated_at (tests pass a fixed one). */
  now?: () => string;
}

function prepareStatements(db: Database) {
  return {
    insert: db.prepare(
      `INSERT INTO frontier (kind, key, payload_json, parent_id, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, key) DO NOTHING`,
    ),
    force: db.prepare(
      `UPDATE frontier SET state = 'pending', attempts = 0, payload_json = ?, updated_at = ?
        WHERE kind = ? AND key = ? AND state IN ('done', 'failed')`,
    ),
    idOf: db.prepare('SELECT id FROM frontier WHERE kind = ? AND key = ?').pluck(),
    byId: db.prepare('SELECT * FROM frontier WHERE id = ?'),
    // json_each lets one prepared statement serve any set of kinds.
    pendingOf: db.prepare(
      `SELECT * FROM frontier WHERE state = 'pending' AND kind IN (SELECT value FROM json_each(?))
        ORDER BY id LIMIT ?`,
    ),
    pendingById: db.prepare(`SELECT * FROM frontier WHERE id = ? AND state = 'pending'`),
    setState: db.prepare('UPDATE frontier SET state = ?, updated_at = ? WHERE id = ? AND state = ?'),
    fail: db.prepare(
      `UPDATE frontier SET state = ?, attempts = ?, last_error = ?, last_error_code = ?, retryable = ?, updated_at = ?
        WHERE id = ?`,
    ),
    logFailure: db.prepare(
      `INSERT INTO failures (frontier_id, kind, key, run_id, error_code, message, retryable, at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    // The run an item belongs to is its key's `<run>|` prefix (pipeline/keys.ts), when that run exists.
    logSuperseded: db.prepare(
      `INSERT INTO failures (frontier_id, kind, key, run_id, error_code, message, retryable, at)
       SELECT id, kind, key,
              (SELECT r.id FROM crawl_runs r WHERE instr(key, '|') > 1
                 AND r.id = CAST(substr(key, 1, instr(key, '|') - 1) AS INTEGER)),
              @code, @message, 0, @at
         FROM frontier
        WHERE state = 'pending' AND kind IN (SELECT value FROM json_each(@kinds))
          AND substr(key, 1, length(@keep)) != @keep`,
    ),
    supersede: db.prepare(
      `UPDATE frontier SET state = 'failed', last_error = @message, last_error_code = @code, retryable = 0,
              updated_at = @at
        WHERE state = 'pending' AND kind IN (SELECT value FROM json_each(@kinds))
          AND substr(key, 1, length(@keep)) != @keep`,
    ),
    resetInProgress: db.prepare(
      `UPDATE frontier SET state = 'pending', updated_at = ? WHERE state = 'in-progress'`,
    ),
    // A NULL filter matches every row.
    retryFailed: db.prepare(
      `UPDATE frontier SET state = 'pending', updated_at = @at
        WHERE state = 'failed' AND attempts < @maxAttempts AND (@onlyRetryable = 0 OR retryable = 1)
          AND (@kinds IS NULL OR kind IN (SELECT value FROM json_each(@kinds)))
          AND (@keyPrefix IS NULL OR substr(key, 1, length(@keyPrefix)) = @keyPrefix)
          AND (@ids IS NULL OR id IN (SELECT value FROM json_each(@ids)))`,
    ),
    reviveRetryable: db.prepare(
      `UPDATE frontier SET state = 'pending', attempts = 0, updated_at = @at
        WHERE state = 'failed' AND retryable = 1 AND kind = @kind
          AND (@ids IS NULL OR id IN (SELECT value FROM json_each(@ids)))`,
    ),
    counts: db.prepare(
      'SELECT kind, state, count(*) AS count FROM frontier GROUP BY kind, state ORDER BY kind, state',
    ),
    open: db.prepare(`SELECT count(*) FROM frontier WHERE state IN ('pending', 'in-progress')`).pluck(),
    openInRange: db
      .prepare(
        `SELECT count(*) FROM frontier WHERE state IN ('pending', 'in-progress') AND key >= ? AND key < ?`,
      )
      .pluck(),
    failedList: db.prepare(`SELECT * FROM frontier WHERE state = 'failed' ORDER BY id`),
    failedInRun: db.prepare(`SELECT count(*) ${FAILED_IN_RUN}`).pluck(),
  };
}

/**
 * The frontier items that failed, and failed at least once in run `run` (Frontier.failedInRun counts them):
 * a FROM clause, `run` a number or a `?` to bind.
 */
const failedInRunFrom = (run: number | '?') => `FROM frontier fr WHERE state = 'failed'
  AND EXISTS (SELECT 1 FROM failures f WHERE f.frontier_id = fr.id AND f.run_id = ${run})`;
const FAILED_IN_RUN = failedInRunFrom('?');

/** A query that lists every item failedInRunFirst counts, with its last error, for a user to run. */
export function failedInRunQuery(runId: number): string {
  return `SELECT kind, key, last_error_code, last_error ${failedInRunFrom(runId).replace(/\s+/g, ' ')}`;
}

/**
 * The items Frontier.failedInRun counts, and the first `limit` of them in the order they were queued with
 * their last error. Only reads: for a dataset opened read-only, after a run.
 */
export function failedInRunFirst<P = unknown>(
  db: Database,
  runId: number,
  limit: number,
): { total: number; first: Array<FrontierItem<P>> } {
  const total = db.prepare(`SELECT count(*) ${FAILED_IN_RUN}`).pluck().get(runId) as number;
  const first = db.prepare(`SELECT * ${FAILED_IN_RUN} ORDER BY fr.id LIMIT ?`).all(runId, limit) as RawItem[];
  return { total, first: first.map((r) => toItem<P>(r)) };
}

/** The frontier of one database; see the invariants above. */
export class Frontier {
  private readonly runId: number | null;
  private readonly now: () => string;
  private readonly s: ReturnType<typeof prepareStatements>;
  private readonly enqueueTx: (item: NewFrontierItem, parentId: number | null, force: boolean) => number;
  private readonly claimTx: (kinds: readonly FrontierKind[], limit: number) => Array<FrontierItem<unknown>>;
  private readonly claimIdsTx: (ids: readonly number[]) => Array<FrontierItem<unknown>>;
  private readonly completeTx: (id: number, children: readonly NewFrontierItem[]) => void;
  private readonly failTx: (id: number, err: FrontierError, opts: FailOptions) => FrontierState;
  private readonly supersedeTx: (params: Record<string, string>) => number;

  constructor(
    private readonly db: Database,
    opts: FrontierOptions = {},
  ) {
    this.runId = opts.runId ?? null;
    this.now = opts.now ?? nowIso;
    this.s = prepareStatements(db);
    const st = this.s;

    this.enqueueTx = writeTransaction(
      db,
      (item: NewFrontierItem, parentId: number | null, force: boolean) => {
        const at = this.now();
        const payload = JSON.stringify(item.payload ?? null);
        const inserted = st.insert.run(item.kind, item.key, payload, parentId, at, at).changes > 0;
        if (!inserted && force) st.force.run(payload, at, item.kind, item.key);
        return st.idOf.get(item.kind, item.key) as number;
      },
    );
    this.claimTx = writeTransaction(db, (kinds: readonly FrontierKind[], limit: number) => {
      const rows = st.pendingOf.all(JSON.stringify(kinds), limit) as RawItem[];
      const at = this.now();
      for (const r of rows) {
        st.setState.run('in-progress', at, r.id, 'pending');
        r.state = 'in-progress';
        r.updated_at = at;
      }
      // Parsed within the claim: a damaged payload (toItem) rolls it back, leaving every item pending.
      return rows.map((r) => toItem(r));
    });
    this.claimIdsTx = writeTransaction(db, (ids: readonly number[]) => {
      const at = this.now();
      const rows: RawItem[] = [];
      for (const id of ids) {
        const r = st.pendingById.get(id) as RawItem | undefined;
        if (!r) continue;
        st.setState.run('in-progress', at, r.id, 'pending');
        rows.push({ ...r, state: 'in-progress', updated_at: at });
      }
      return rows.map((r) => toItem(r));
    });
    this.completeTx = writeTransaction(db, (id: number, children: readonly NewFrontierItem[]) => {
      const at = this.now();
      if (st.setState.run('done', at, id, 'in-progress').changes === 0) {
        const row = st.byId.get(id) as RawItem | undefined;
        // Completing twice is harmless (a retry of the same call); completing an unclaimed item is a bug.
        if (row?.state === 'done') return;
        throw new Error(
          `frontier item ${id} is ${row ? row.state : 'missing'}, not in-progress; claim it first`,
        );
      }
      for (const c of children) {
        st.insert.run(c.kind, c.key, JSON.stringify(c.payload ?? null), id, at, at);
      }
    });
    this.failTx = writeTransaction(db, (id: number, err: FrontierError, opts: FailOptions) => {
      const row = st.byId.get(id) as RawItem | undefined;
      if (!row) throw new Error(`frontier item ${id} does not exist`);
      const attempts = row.attempts + 1;
      const state: FrontierState = opts.retryable && attempts < opts.maxAttempts ? 'pending' : 'failed';
      const code = 'code' in err && typeof err.code === 'string' ? err.code : null;
      const at = this.now();
      st.fail.run(state, attempts, err.message, code, opts.retryable ? 1 : 0, at, id);
      st.logFailure.run(id, row.kind, row.key, this.runId, code, err.message, opts.retryable ? 1 : 0, at);
      return state;
    });
    this.supersedeTx = writeTransaction(db, (params: Record<string, string>) => {
      st.logSuperseded.run(params);
      return st.supersede.run(params).changes;
    });
  }

  /**
   * Adds an item unless (kind, key) exists; returns its id either way. A done item stays done unless
   * `force`. An existing item keeps its first payload and parent.
   */
  enqueue(
    kind: FrontierKind,
    key: string,
    payload: unknown = null,
    parentId: number | null = null,
    opts: EnqueueOptions = {},
  ): number {
    return this.enqueueTx({ kind, key, payload }, parentId, opts.force ?? false);
  }

  /** Marks up to `limit` pending items of these kinds in-progress (oldest first) and returns them. */
  claim<P = unknown>(kinds: readonly FrontierKind[], limit: number): Array<FrontierItem<P>> {
    return this.claimTx(kinds, limit) as Array<FrontierItem<P>>;
  }

  /** Claims those of these items that are still pending (marks them in-progress); returns them in the order given. */
  claimIds<P = unknown>(ids: readonly number[]): Array<FrontierItem<P>> {
    return this.claimIdsTx(ids) as Array<FrontierItem<P>>;
  }

  /** Marks a claimed item done and enqueues its children, atomically (invariant 2). */
  complete(id: number, children: readonly NewFrontierItem[] = []): void {
    this.completeTx(id, children);
  }

  /**
   * Counts a failed attempt and logs it: retryable items under `maxAttempts` go back to pending, the rest
   * become failed (retried on a later run by retryFailed). Returns the new state.
   */
  fail(id: number, error: FrontierError, opts: FailOptions): FrontierState {
    return this.failTx(id, error, opts);
  }

  /** Puts a claimed item back to pending without counting an attempt (budget spent, shutting down). */
  requeue(id: number): void {
    guardWrite(this.db, () => this.s.setState.run('pending', this.now(), id, 'in-progress'));
  }

  /** At start-up, under the crawl lock: items a killed run had claimed go back to pending (invariant 3). */
  resetInProgress(): number {
    return guardWrite(this.db, () => this.s.resetInProgress.run(this.now()).changes);
  }

  /**
   * At start-up: failed items with fewer than `maxAttempts` attempts go back to pending. With
   * `onlyRetryable`, items whose last error was permanent (404, unsupported) stay failed; `kinds` and
   * `keyPrefix` limit it to those kinds and keys (the pipeline retries run-keyed items only in their own run).
   */
  retryFailed(maxAttempts: number, opts: RetryFailedOptions = {}): number {
    const params = {
      at: this.now(),
      maxAttempts,
      onlyRetryable: opts.onlyRetryable ? 1 : 0,
      kinds: opts.kinds ? JSON.stringify(opts.kinds) : null,
      keyPrefix: opts.keyPrefix ?? null,
      ids: opts.ids ? JSON.stringify(opts.ids) : null,
    };
    return guardWrite(this.db, () => this.s.retryFailed.run(params).changes);
  }

  /**
   * For a new run: pending items of `kinds` whose key does not start with `keepKeyPrefix` (an earlier
   * run's own work) become failed, not retryable, with `error`, logged in `failures` under the run their
   * key names. A new study must not crawl, and record as its own, what an earlier one queued. Returns how
   * many items it closed.
   */
  supersede(
    kinds: readonly FrontierKind[],
    keepKeyPrefix: string,
    error: { code: string; message: string },
  ): number {
    return this.supersedeTx({ kinds: JSON.stringify(kinds), keep: keepKeyPrefix, ...error, at: this.now() });
  }

  /**
   * For a new run: failed items of a content-keyed kind (layers, shared by every run) whose last error
   * was retryable get a fresh attempt budget. A new run re-creates its run-keyed items under its own
   * keys, but finds a content-keyed one already there (enqueue is a no-op), so without this a layer that
   * spent its attempts in one run's network outage would never be analyzed by any later run. `ids`:
   * only these items.
   */
  reviveRetryable(kind: FrontierKind, ids?: readonly number[]): number {
    const params = { at: this.now(), kind, ids: ids ? JSON.stringify(ids) : null };
    return guardWrite(this.db, () => this.s.reviveRetryable.run(params).changes);
  }

  /** One item by id. */
  get<P = unknown>(id: number): FrontierItem<P> | undefined {
    const r = this.s.byId.get(id) as RawItem | undefined;
    return r && toItem<P>(r);
  }

  /** One item by (kind, key). */
  find<P = unknown>(kind: FrontierKind, key: string): FrontierItem<P> | undefined {
    const id = this.s.idOf.get(kind, key) as number | undefined;
    return id === undefined ? undefined : this.get<P>(id);
  }

  /** Item counts by kind and state. */
  counts(): FrontierCount[] {
    return this.s.counts.all() as FrontierCount[];
  }

  /**
   * How many items are pending or in-progress (0 means the crawl is finished); with `keys`, only those
   * whose key is in [low, high) (a run's run-keyed items).
   */
  openCount(keys?: { low: string; high: string }): number {
    return (keys ? this.s.openInRange.get(keys.low, keys.high) : this.s.open.get()) as number;
  }

  /** Items that are failed, and failed at least once in run `runId` (not items an earlier run left failed). */
  failedInRun(runId: number): number {
    return this.s.failedInRun.get(runId) as number;
  }

  /** Every failed item, with its last error. */
  failed<P = unknown>(): Array<FrontierItem<P>> {
    return (this.s.failedList.all() as RawItem[]).map((r) => toItem<P>(r));
  }
}
