import type { Database, Statement } from 'better-sqlite3';
import { type IocSetRef, nowIso } from './rows.js';
import { guardWrite, writeTransaction } from './sqlite-errors.js';
import { AN_OBJECT, parseStoredJson } from './stored-json.js';

/** How a run ended. */
export type RunStatus = 'running' | 'completed' | 'completed-with-failures' | 'aborted' | 'failed';

export interface RunStartInput {
  /** The effective config; the caller strips secrets first (keys that look secret are redacted again here). */
  config: unknown;
  toolVersion: string;
  analyzerVersion: string;
  /** IOC set versions this run matches with. */
  iocSets?: readonly IocSetRef[];
  startedAt?: string;
}

export interface RunRow {
  id: number;
  startedAt: string;
  finishedAt: string | null;
  status: RunStatus;
  config: unknown;
  toolVersion: string;
  analyzerVersion: string;
  stats: unknown;
  iocSets: IocSetRef[];
}

interface RawRun {
  id: number;
  started_at: string;
  finished_at: string | null;
  status: RunStatus;
  config_json: string;
  tool_version: string;
  analyzer_version: string;
  stats_json: string | null;
}

const SECRET_KEY_RE = /token|password|passwd|secret|authorization|credential/i;

/** Deep copy of a config with secret-looking keys replaced, so a dataset can be shared safely. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY_RE.test(k) && v !== null && v !== undefined ? '[redacted]' : redactSecrets(v);
    }
    return out;
  }
  return value;
}

/**
 * SQL: the command that started a `crawl_runs` row, as its config names it: `crawl`, `scan` or `rematch`;
 * NULL for a crawl or scan recorded before hubcrawl named them (a rematch always did).
 */
export const RUN_COMMAND = `json_extract(config_json, '$.command')`;

/**
 * SQL: the `crawl_runs` row is a `hubcrawl rematch` run. One that did not finish has nothing to resume,
 * since the next rematch matches every image again: it is no crawl to wait for.
 */
export const IS_REMATCH_RUN = `${RUN_COMMAND} IS 'rematch'`;

/** Runs: one row per `hubcrawl crawl`, `scan` or `rematch`, with the config and versions for provenance. */
export class RunStore {
  private readonly insertRun: Statement;
  private readonly insertSet: Statement;
  private readonly updateFinish: Statement;
  private readonly updateStats: Statement;
  private readonly updateReopen: Statement;
  private readonly selectOne: Statement;
  private readonly selectLatest: Statement;
  private readonly selectLatestCrawl: Statement;
  private readonly abortKilledRematches: Statement;
  private readonly selectSets: Statement;
  private readonly selectAllSets: Statement;
  private readonly startTx: (input: RunStartInput) => number;

  constructor(private readonly db: Database) {
    this.insertRun = db.prepare(
      `INSERT INTO crawl_runs (started_at, status, config_json, tool_version, analyzer_version)
       VALUES (?, 'running', ?, ?, ?)`,
    );
    this.insertSet = db.prepare(
      'INSERT OR REPLACE INTO run_ioc_sets (run_id, ioc_set_id, ioc_set_version) VALUES (?, ?, ?)',
    );
    this.updateFinish = db.prepare(
      'UPDATE crawl_runs SET finished_at = ?, status = ?, stats_json = coalesce(?, stats_json) WHERE id = ?',
    );
    this.updateStats = db.prepare('UPDATE crawl_runs SET stats_json = ? WHERE id = ?');
    this.updateReopen = db.prepare(
      `UPDATE crawl_runs SET status = 'running', finished_at = NULL WHERE id = ?`,
    );
    this.selectOne = db.prepare('SELECT * FROM crawl_runs WHERE id = ?');
    this.selectLatest = db.prepare('SELECT * FROM crawl_runs ORDER BY id DESC LIMIT 1');
    this.selectLatestCrawl = db.prepare(
      `SELECT * FROM crawl_runs WHERE NOT (${IS_REMATCH_RUN}) ORDER BY id DESC LIMIT 1`,
    );
    this.abortKilledRematches = db.prepare(
      `UPDATE crawl_runs SET status = 'aborted' WHERE status = 'running' AND ${IS_REMATCH_RUN}`,
    );
    this.selectSets = db.prepare(
      'SELECT ioc_set_id AS id, ioc_set_version AS version FROM run_ioc_sets WHERE run_id = ? ORDER BY ioc_set_id',
    );
    this.selectAllSets = db.prepare(
      `SELECT run_id AS runId, ioc_set_id AS id, ioc_set_version AS version FROM run_ioc_sets
        ORDER BY run_id, ioc_set_id`,
    );
    this.startTx = writeTransaction(db, (input: RunStartInput) => {
      const id = Number(
        this.insertRun.run(
          input.startedAt ?? nowIso(),
          JSON.stringify(redactSecrets(input.config) ?? null),
          input.toolVersion,
          input.analyzerVersion,
        ).lastInsertRowid,
      );
      for (const s of input.iocSets ?? []) this.insertSet.run(id, s.id, s.version);
      return id;
    });
  }

  /** Records the start of a run; returns its id. */
  start(input: RunStartInput): number {
    return this.startTx(input);
  }

  /** Records how the run ended (and its final stats, when given). */
  finish(
    runId: number,
    status: Exclude<RunStatus, 'running'>,
    stats?: unknown,
    finishedAt: string = nowIso(),
  ): void {
    guardWrite(this.db, () =>
      this.updateFinish.run(finishedAt, status, stats === undefined ? null : JSON.stringify(stats), runId),
    );
  }

  /** Marks an unfinished run (killed, aborted) running again, for a crawl that resumes it. */
  reopen(runId: number): void {
    guardWrite(this.db, () => this.updateReopen.run(runId));
  }

  /** Replaces the run's stats (call periodically so a killed run still shows its progress). */
  recordStats(runId: number, stats: unknown): void {
    guardWrite(this.db, () => this.updateStats.run(JSON.stringify(stats), runId));
  }

  /** One run by id. */
  get(runId: number): RunRow | undefined {
    const raw = this.selectOne.get(runId) as RawRun | undefined;
    return raw && this.toRow(raw);
  }

  /** The IOC sets each run loaded (id order), once per distinct list, oldest run first. */
  iocSetLists(): IocSetRef[][] {
    const byRun = new Map<number, IocSetRef[]>();
    for (const r of this.selectAllSets.all() as Array<IocSetRef & { runId: number }>) {
      const list = byRun.get(r.runId) ?? [];
      list.push({ id: r.id, version: r.version });
      byRun.set(r.runId, list);
    }
    const distinct = new Map<string, IocSetRef[]>();
    for (const list of byRun.values()) distinct.set(JSON.stringify(list), list);
    return [...distinct.values()];
  }

  /** The most recently started run. */
  latest(): RunRow | undefined {
    const raw = this.selectLatest.get() as RawRun | undefined;
    return raw && this.toRow(raw);
  }

  /**
   * The most recently started crawl or scan run: the one a crawl resumes when it did not finish. Rematch
   * runs are passed over: they have nothing to resume, and a later crawl must not take one for its own.
   */
  latestCrawl(): RunRow | undefined {
    const raw = this.selectLatestCrawl.get() as RawRun | undefined;
    return raw && this.toRow(raw);
  }

  /**
   * Marks rematch runs still `running` aborted: a rematch killed (kill -9, a crash) before it could say so.
   * Call it with the crawl lock held, as the next crawl, scan or rematch does: then none of them runs
   * now. `finished_at` stays empty, since when it died is not known. Returns how many were marked.
   */
  abortRematchesKilled(): number {
    return guardWrite(this.db, () => this.abortKilledRematches.run().changes);
  }

  private toRow(r: RawRun): RunRow {
    return {
      id: r.id,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      status: r.status,
      config: parseStoredJson(
        r.config_json,
        { row: `crawl_runs row ${r.id}`, column: 'config_json' },
        AN_OBJECT,
      ),
      toolVersion: r.tool_version,
      analyzerVersion: r.analyzer_version,
      stats:
        r.stats_json === null
          ? null
          : parseStoredJson(r.stats_json, { row: `crawl_runs row ${r.id}`, column: 'stats_json' }, AN_OBJECT),
      iocSets: this.selectSets.all(r.id) as IocSetRef[],
    };
  }
}
