import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { ConfigError, FatalError } from '../core/errors.js';
import { acquireCrawlLock, type CrawlLock, LockHeldError } from './lock.js';
import { assertNotNewer, DEFAULT_MIGRATIONS_DIR, loadMigrations, migrate, schemaVersion } from './migrate.js';
import { mapSqliteError, READ_ONLY_MESSAGE } from './sqlite-errors.js';

export type { Database };

export interface OpenOptions {
  /** Open for queries only: the file must exist and every write is refused with a clear error. */
  readonly?: boolean;
  /** Where the NNNN_slug.sql files are; defaults to the package's migrations/ folder. */
  migrationsDir?: string;
  /** How long a statement waits for another connection's lock before failing (default 5000). */
  busyTimeoutMs?: number;
  /**
   * A writable open that leaves the journal mode as the file has it (a schema upgrade for a read-only
   * command): an export's copy is in rollback-journal mode so that it can be read from read-only media.
   */
  keepJournalMode?: boolean;
}

/**
 * Opens (creating when needed) a hubcrawl dataset, sets the pragmas and brings the schema up to date.
 *
 * WAL lets `hubcrawl query` read while a crawl writes; synchronous=NORMAL is durable across process
 * crashes in WAL mode (only a power loss can drop the last commits, never corrupt the file);
 * foreign_keys is per connection in SQLite, so it is set on every open.
 */
export function openDatabase(path: string, opts: OpenOptions = {}): Database {
  // SQLite reports a directory as a failed write ("I/O error … check the disk"), which misleads.
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ConfigError(
      `the dataset path ${path} is a directory; give the dataset file (e.g. ${join(path, 'hubcrawl.sqlite')})`,
    );
  }
  const db = openAtCurrentSchema(path, opts);
  if (db !== OLDER_SCHEMA) return db;
  // A read-only command met a dataset an older hubcrawl wrote: migrate it once, then read it.
  upgradeForReading(path, opts);
  const upgraded = openAtCurrentSchema(path, opts);
  if (upgraded === OLDER_SCHEMA)
    throw new FatalError(`the dataset ${path} is still at an older schema after its migration`);
  return upgraded;
}

/** What openAtCurrentSchema returns for a read-only open of a dataset whose schema is older than the code's. */
const OLDER_SCHEMA = Symbol('older schema');

/**
 * Migrations only add (forward-only files, each in its own transaction), so a dataset an older hubcrawl
 * wrote is brought up to date even for a read-only command, as its next crawl would do; otherwise every
 * `stats`, `report` and `query` after an upgrade would refuse it, and only a crawl could fix that. Where
 * the file cannot be written (a published copy on read-only media), the error says what to do.
 */
function upgradeForReading(path: string, opts: OpenOptions): void {
  refuseExportCopy(path);
  // Not under a crawl that an older hubcrawl runs: it would find the schema changed under it and fail.
  const lock = lockForUpgrade(path);
  try {
    let db: Database;
    try {
      db = openDatabase(path, { ...opts, readonly: false, keepJournalMode: true });
    } catch (err) {
      // Only a file that cannot be written gets the copy advice; a lock held too long or a failing migration
      // says what it is itself.
      if (!cannotWrite(err)) throw err;
      throw new ConfigError(
        `the dataset ${path} was written by an older hubcrawl and needs a schema upgrade, which cannot be written there (a read-only file or directory); copy it to a writable place and open it there once`,
        { cause: err },
      );
    }
    db.close();
  } finally {
    lock?.release();
  }
}

/**
 * The crawl lock, held while a read-only command upgrades the schema; null where no lock can be created
 * (a read-only folder: the upgrade then fails with its own advice). A crawl holding it refuses the upgrade.
 */
function lockForUpgrade(path: string): CrawlLock | null {
  try {
    return acquireCrawlLock(path);
  } catch (err) {
    if (err instanceof LockHeldError) {
      throw new ConfigError(
        `${err.message}. The dataset was written by an older hubcrawl and this command must first bring its schema up to date, which waits until that crawl has finished`,
        { cause: err },
      );
    }
    if (err instanceof ConfigError) throw err;
    return null;
  }
}

/**
 * A dataset inside an export bundle (MANIFEST.json beside it gives its sha256) is not upgraded in place:
 * the bundle is what a study publishes, and its checksum would no longer hold.
 */
function refuseExportCopy(path: string): void {
  const manifest = join(dirname(path), 'MANIFEST.json');
  let listed = false;
  try {
    const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { sha256?: Record<string, unknown> };
    listed = typeof parsed.sha256?.[basename(path)] === 'string';
  } catch {
    return; // no manifest there, or not an export's
  }
  if (!listed) return;
  throw new ConfigError(
    `the dataset ${path} is the copy in a hubcrawl export bundle, written by an older hubcrawl; reading it needs a schema upgrade, which would change the file whose sha256 ${manifest} gives: copy it out of the bundle and open the copy`,
  );
}

/** Whether opening for writing failed because the file or its directory cannot be written. */
function cannotWrite(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN');
}

function openAtCurrentSchema(path: string, opts: OpenOptions): Database | typeof OLDER_SCHEMA {
  const readonly = opts.readonly ?? false;
  const migrationsDir = opts.migrationsDir ?? DEFAULT_MIGRATIONS_DIR;
  // Whether SQLite's -wal/-shm files were there before this open (see tidyAfterRefusal).
  const hadSidecars = readonly && (existsSync(`${path}-wal`) || existsSync(`${path}-shm`));
  // better-sqlite3 refuses a path whose folder is missing with a bare TypeError naming no path.
  const folder = dirname(resolve(path));
  if (!existsSync(folder)) {
    throw new ConfigError(
      readonly
        ? `no dataset at ${path}: the folder ${folder} does not exist; check the path (--db, HUBCRAWL_DB or the config's db)`
        : `cannot create the dataset at ${path}: the folder ${folder} does not exist; create it or check the path (--db, HUBCRAWL_DB or the config's db)`,
    );
  }
  let db: Database;
  try {
    db = new BetterSqlite3(path, readonly ? { readonly: true, fileMustExist: true } : {});
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_CANTOPEN') {
      throw new ConfigError(
        readonly
          ? `no dataset at ${path}; run \`hubcrawl crawl\` first or check the path`
          : `cannot create or open the dataset at ${path}; check that its directory exists and is writable`,
        { cause: err },
      );
    }
    throw mapSqliteError(err, { name: path, readonly });
  }
  try {
    db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
    if (readonly) {
      db.pragma('query_only = ON');
      const codeVersion = loadMigrations(migrationsDir).length;
      assertNotNewer(db, codeVersion);
      const contents = datasetContents(db);
      if (contents === 'foreign') {
        db.close();
        if (!hadSidecars) tidyAfterRefusal(path);
        throw notADataset(path);
      }
      if (contents === 'empty') {
        throw new ConfigError(
          `no dataset at ${path} (an empty SQLite file); run \`hubcrawl crawl\` first or check the path`,
        );
      }
      if (schemaVersion(db) < codeVersion) {
        db.close();
        return OLDER_SCHEMA;
      }
      guardReadOnly(db);
    } else {
      // Before journal_mode: switching to WAL already rewrites the header of a file that is not ours.
      if (datasetContents(db) === 'foreign') throw notADataset(path);
      if (!opts.keepJournalMode) db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db, migrationsDir);
    }
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_NOTADB') {
      throw new ConfigError(`${path} is not a hubcrawl dataset (not a SQLite database)`, { cause: err });
    }
    throw mapSqliteError(err, db, { opening: true });
  }
  return db;
}

/**
 * What the file holds: a hubcrawl dataset (user_version from 1: only hubcrawl's migrations set it), nothing
 * yet (version 0 and no schema object: a new file, which a writable open initialises), or objects of its
 * own with version 0: some other program's database, which is refused untouched rather than filled with
 * hubcrawl's tables.
 *
 * One statement reads both values from one snapshot, so a dataset another hubcrawl is creating at this
 * moment is never taken for a foreign one: its first migration creates the tables and sets the version in
 * one transaction, so no reader can see the tables with version 0. Reading takes no write lock, so a
 * writable open runs it before switching to WAL, which would already rewrite a foreign file's header.
 */
function datasetContents(db: Database): 'dataset' | 'empty' | 'foreign' {
  const { version, objects } = db
    .prepare(
      'SELECT (SELECT user_version FROM pragma_user_version) AS version, EXISTS (SELECT 1 FROM sqlite_master) AS objects',
    )
    .get() as { version: number; objects: number };
  if (version !== 0) return 'dataset';
  return objects === 0 ? 'empty' : 'foreign';
}

function notADataset(path: string): ConfigError {
  return new ConfigError(
    `${path} is a SQLite database but not a hubcrawl dataset (it has tables of its own and no hubcrawl schema version), so hubcrawl leaves it untouched; check the path, or give a new file for a new dataset`,
  );
}

/**
 * Reading a WAL-mode database, even read-only, makes SQLite create its -wal and -shm files, and only a
 * connection that may write removes them when it closes last. When this open created them, one such
 * connection that only reads lets SQLite remove them again (it leaves them while anyone else has the file
 * open); on read-only media it simply cannot, which is harmless.
 */
function tidyAfterRefusal(path: string): void {
  if (!existsSync(`${path}-wal`) && !existsSync(`${path}-shm`)) return;
  try {
    const db = new BetterSqlite3(path, { fileMustExist: true });
    try {
      db.pragma('user_version');
    } finally {
      db.close();
    }
  } catch {
    // Best effort: the refusal is what the user needs to see.
  }
}

/**
 * query_only already makes SQLite refuse writes, but with "attempt to write a readonly database".
 * Checking `statement.readonly` at prepare time gives the user our sentence before anything runs, and
 * exec() (multi-statement SQL) maps SQLite's error to the same sentence.
 */
function guardReadOnly(db: Database): void {
  const prepare = db.prepare.bind(db);
  const exec = db.exec.bind(db);
  const pragma = db.pragma.bind(db);
  const guardedPrepare = ((source: string) => {
    const stmt = prepare(source);
    if (!stmt.readonly) throw new ConfigError(READ_ONLY_MESSAGE);
    return stmt;
  }) as Database['prepare'];
  db.prepare = guardedPrepare;
  db.exec = (source: string) => {
    try {
      return exec(source);
    } catch (err) {
      throw mapSqliteError(err, db);
    }
  };
  db.pragma = ((source: string, options?: { simple?: boolean }) => {
    try {
      return pragma(source, options);
    } catch (err) {
      throw mapSqliteError(err, db);
    }
  }) as Database['pragma'];
}
