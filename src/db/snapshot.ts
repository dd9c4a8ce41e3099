import BetterSqlite3, { type Database } from 'better-sqlite3';
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
 * SQLite's backup reads one snapshot, so the copy is whole even while a crawl writes to the source.
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
    await db.backup(dest);
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

/** The SQLite code of an error writeSnapshot let through as a failed write of the copy, else undefined. */
export function snapshotWriteFailure(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') && isWriteFailure(code) ? code : undefined;
}
