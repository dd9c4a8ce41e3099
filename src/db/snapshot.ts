import BetterSqlite3, { type Database } from 'better-sqlite3';
import { mapSqliteError } from './sqlite-errors.js';

/**
 * Writes a consistent copy of an open dataset to `dest` (a new file) for publication.
 *
 * SQLite's backup reads one snapshot, so the copy is whole even while a crawl writes to the source.
 * The copy is then switched from WAL to the rollback journal: a WAL database can only be read where
 * SQLite may create its `-shm` file beside it, so a published copy in WAL mode could not be queried
 * from read-only media or a folder the reader cannot write. A hubcrawl that later crawls into the
 * copy switches it back to WAL on open (open.ts).
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
    throw mapSqliteError(err, { name: dest, readonly: false });
  }
}
