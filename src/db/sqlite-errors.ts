import { closeSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import type { Database } from 'better-sqlite3';
import { ConfigError, FatalError } from '../core/errors.js';
import { shellQuoted } from '../core/shell.js';

/** Message for a write attempted through a read-only handle (`hubcrawl query` and friends). */
export const READ_ONLY_MESSAGE = 'the dataset is opened read-only; query cannot write';

/**
 * The codes a read-only open of a WAL dataset gets where its `-shm` cannot be created or written
 * (a read-only folder or medium): not a write the command attempted, so not READ_ONLY_MESSAGE.
 */
const WAL_NEEDS_WRITABLE_FOLDER = new Set([
  'SQLITE_READONLY_DIRECTORY',
  'SQLITE_READONLY_CANTINIT',
  'SQLITE_READONLY_CANTLOCK',
  'SQLITE_READONLY_RECOVERY',
]);

/**
 * Whether the file at `path` is a SQLite database in WAL mode: its header's read and write versions are
 * 2 (bytes 18 and 19). On a read-only mount such a file opens, then its first read cannot create the
 * -shm and fails with SQLITE_CANTOPEN, which otherwise means a file that cannot be opened at all.
 */
function isWalFile(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const header = Buffer.alloc(20);
    return readSync(fd, header, 0, 20, 0) === 20 && header[18] === 2 && header[19] === 2;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function sqliteCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/**
 * Turns the SQLite errors a user can act on into typed errors with one clear sentence: a full disk or an
 * unwritable file stops the run (FatalError), a write through a read-only handle is a usage error
 * (ConfigError). Anything else (constraint violations are bugs) is returned unchanged.
 */
export function mapSqliteError(
  err: unknown,
  db: Pick<Database, 'name' | 'readonly'>,
  when: { opening?: boolean } = {},
): unknown {
  const code = sqliteCode(err);
  if (code === undefined) return err;
  // SQLITE_CANTOPEN is the -shm only while the dataset is being opened: a query's ATTACH of a missing
  // file fails with it too, on a WAL dataset as on any other.
  const walCantOpen = when.opening === true && code === 'SQLITE_CANTOPEN' && isWalFile(db.name);
  if (db.readonly && (WAL_NEEDS_WRITABLE_FOLDER.has(code) || walCantOpen)) {
    return new ConfigError(
      `the dataset ${db.name} cannot be read here: it is in WAL mode, and SQLite reads such a file only where it may create or update ${basename(db.name)}-shm beside it, which this folder or file does not allow; copy the dataset to a writable folder, or read the copy \`hubcrawl export\` writes, which needs no writable folder`,
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_READONLY')) {
    if (db.readonly) return new ConfigError(READ_ONLY_MESSAGE, { cause: err });
    return new FatalError(
      `the dataset ${db.name} cannot be written (read-only file or directory); fix its permissions and run again`,
      { cause: err },
    );
  }
  // A read-only command writes nothing of the dataset's own, but SQLite still grows its `-shm` beside it.
  const what = db.readonly ? 'the -shm file SQLite keeps beside the dataset' : 'the dataset';
  const then = db.readonly ? 'run the command again' : 'run again (the crawl resumes where it stopped)';
  if (code === 'SQLITE_FULL') {
    // A read-only command writes only the -shm and SQLite's temporary files (a large ORDER BY sorts in them).
    const where = db.readonly
      ? `the disk holding SQLite's temporary files (TMPDIR) or the -shm file beside the dataset ${db.name}`
      : `the disk holding the dataset ${db.name}`;
    return new FatalError(`${where} is full; free some space and ${then}`, { cause: err });
  }
  if (code.startsWith('SQLITE_IOERR')) {
    const verb = db.readonly ? 'reading' : 'writing';
    return new FatalError(
      `I/O error while ${verb} the dataset ${db.name} (${code}${code.includes('SHM') ? `: ${what} could not be written, as on a full disk` : ''}); check the disk and ${then}`,
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new FatalError(
      `the dataset ${db.name} is damaged or not a SQLite database (${code}): \`sqlite3 ${shellQuoted(db.name)} 'PRAGMA integrity_check'\` says where; restore it from a copy (an export bundle's hubcrawl.sqlite is one) or crawl into a new --db`,
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_BUSY')) {
    return new FatalError(
      `the dataset ${db.name} stayed locked by another process past the busy timeout; is another hubcrawl writing to it?`,
      { cause: err },
    );
  }
  return err;
}

/**
 * Wraps `db.transaction(fn)` so that the actionable SQLite errors come out typed (see mapSqliteError).
 * Transactions nest: called inside another transaction, it runs as a savepoint of the outer one.
 */
export function writeTransaction<A extends unknown[], R>(
  db: Database,
  fn: (...args: A) => R,
): (...args: A) => R {
  const tx = db.transaction(fn);
  return (...args: A): R => {
    try {
      return tx(...args);
    } catch (err) {
      throw mapSqliteError(err, db);
    }
  };
}

/** Runs one write (a single statement is atomic on its own) and maps the actionable SQLite errors. */
export function guardWrite<R>(db: Database, fn: () => R): R {
  try {
    return fn();
  } catch (err) {
    throw mapSqliteError(err, db);
  }
}
