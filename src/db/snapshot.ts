import BetterSqlite3, { type Database } from 'better-sqlite3';
import { FatalError } from '../core/errors.js';
import { mapSqliteError } from './sqlite-errors.js';

/** SQLite codes of a copy that could not be written: a full disk, a file-size limit, an I/O error, a refused file. */
function isWriteFailure(code: string): boolean {
  if (code === 'SQLITE_FULL' || code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_READONLY')) return true;
  return (
    code.startsWith('SQLITE_IOERR') && code !== 'SQLITE_IOERR_READ' && code !== 'SQLITE_IOERR_SHORT_READ'
  );
}

/**
 * Writes a consistent copy of an open dataset to `dest` (a new file) for publication.
 *
 * SQLite's backup reads one snapshot (backupInOneReadTransaction), so the copy is whole even while a
 * crawl writes to the source.
 * The copy is then switched from WAL to the rollback journal: a WAL database can only be read where
 * SQLite may create its `-shm` file beside it, so a published copy in WAL mode could not be queried
 * from read-only media or a folder the reader cannot write. A hubcrawl that later crawls into the
 * copy switches it back to WAL on open (open.ts).
 *
 * An error writing the copy (SQLITE_FULL, SQLITE_IOERR_WRITE…) comes out as SQLite gave it, for the
 * caller to say what it was writing: the dataset messages of mapSqliteError would name `dest` as a
 * crawl's dataset and promise that a crawl resumes. An error reading the source is mapped as for any
 * dataset.
 */
export async function writeSnapshot(db: Database, dest: string): Promise<void> {
  try {
    await backupInOneReadTransaction(db, dest);
    const copy = new BetterSqlite3(dest, { fileMustExist: true });
    try {
      copy.pragma('journal_mode = DELETE');
    } finally {
      copy.close();
    }
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && isWriteFailure(code)) throw err;
    throw mapSqliteError(err, { name: db.name, readonly: false });
  }
}

/** How long the copy may go without copying a page before it is given up. */
const STALL_MS = 60_000;
/** better-sqlite3's own default step: small enough that the event loop keeps turning between steps. */
const PAGES_PER_STEP = 100;

/**
 * The backup inside one read transaction of `db`. SQLite restarts a backup whenever another connection
 * commits to the source between its steps, unless the backup's own connection holds a read transaction:
 * then every step reads the snapshot that transaction began. Without it, an export while a crawl commits
 * every few seconds copied and restarted for as long as the crawl ran.
 *
 * Bounded too: better-sqlite3 takes SQLITE_BUSY from a backup step as progress and steps again, so a
 * backup that can never read (a WAL dataset whose `-shm` this user cannot write, held by another process)
 * spun at full CPU for ever. One that copies no page for STALL_MS fails, saying why it may be stuck.
 */
async function backupInOneReadTransaction(db: Database, dest: string): Promise<void> {
  let fewest = Number.POSITIVE_INFINITY;
  let since = Date.now();
  const progress = ({ remainingPages }: { remainingPages: number }): number => {
    if (remainingPages < fewest) {
      fewest = remainingPages;
      since = Date.now();
    } else if (Date.now() - since > STALL_MS) {
      throw new FatalError(
        `the copy of the dataset ${db.name} made no progress for ${STALL_MS / 1000} s: SQLite could not read it (another process holds it locked, or this user cannot write its -shm file beside it); run the command again when that has changed, or as the dataset's owner`,
      );
    }
    return PAGES_PER_STEP;
  };
  db.exec('BEGIN');
  try {
    // BEGIN is deferred: the first read starts the transaction, and with it the snapshot.
    db.prepare('SELECT 1 FROM sqlite_master LIMIT 1').get();
    await db.backup(dest, { progress });
  } catch (err) {
    // The read transaction ends quietly: a failure to end it must not hide why the copy failed.
    try {
      if (db.inTransaction) db.exec('ROLLBACK');
    } catch {}
    throw err;
  }
  if (db.inTransaction) db.exec('COMMIT');
}

/** The SQLite code of an error writeSnapshot let through as a failed write of the copy, else undefined. */
export function snapshotWriteFailure(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') && isWriteFailure(code) ? code : undefined;
}
