import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { ConfigError, FatalError } from '../core/errors.js';
import { realPathOf } from '../core/real-path.js';

/** A held crawl lock. */
export interface CrawlLock {
  /** The lock file (`<db>.lock`). */
  readonly path: string;
  /** Removes the lock file if it is still ours; safe to call twice. */
  release(): void;
}

interface LockContent {
  pid: number;
  host: string;
  startedAt: string;
}

function readLock(path: string): LockContent | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockContent>;
    return typeof parsed.pid === 'number' ? (parsed as LockContent) : undefined;
  } catch {
    return undefined; // vanished, half-written by a killed holder, or garbage: treated as stale
  }
}

/** process.kill(pid, 0) probes without signalling: ESRCH means gone, EPERM means alive but not ours. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The crawl lock is held by a live process: another crawl, a scan or a rematch is using the dataset. */
export class LockHeldError extends ConfigError {}

/**
 * Takes the crawl lock of a database: a `<db>.lock` file holding our pid, created atomically (written to a
 * temp file, then link(2)ed into place, which fails with EEXIST like O_EXCL but never shows a half-written
 * file that a competitor could mistake for a stale one). Only one
 * crawl may write a dataset at a time (the frontier's resetInProgress relies on it). A lock whose pid is
 * dead (a SIGKILLed crawl) is taken over. The lock sits beside the dataset's real file, symlinks
 * resolved. Limits: the pid check only works on this host (a lock from another host is respected until
 * removed by hand), a reused pid looks alive, and a hardlink to the dataset under another name has a lock
 * of its own.
 */
export function acquireCrawlLock(dbPath: string): CrawlLock {
  // Beside the dataset's real file: a crawl through a symlink to it must meet the same lock.
  const path = `${realPathOf(dbPath)}.lock`;
  const me: LockContent = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(me));
  } catch (err) {
    // A full disk leaves the file created but short: it is ours to take away, if it is there at all.
    try {
      unlinkSync(tmp);
    } catch {
      // Not there (ENOENT), or no folder to be in (ENOTDIR): the error below says why.
    }
    // A wrong path is a usage error; an unwritable (read-only, full) place is, like an unwritable
    // dataset (sqlite-errors.ts), a FatalError: exit 3.
    const code = (err as NodeJS.ErrnoException).code;
    const Err = code === 'ENOENT' || code === 'ENOTDIR' ? ConfigError : FatalError;
    throw new Err(`cannot create the crawl lock ${path}; check that its directory exists and is writable`, {
      cause: err,
    });
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(tmp, path);
        return heldLock(path, me.pid);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new FatalError(`cannot create the crawl lock ${path}; check that its directory is writable`, {
            cause: err,
          });
        }
      }
      const holder = readLock(path);
      if (holder && (holder.host !== me.host || isAlive(holder.pid))) {
        throw heldBy(holder, me.host, dbPath, path);
      }
      // Stale: its holder died without releasing. Remove it and race for the link again; if another
      // process wins that race, the next iteration sees its live pid and refuses.
      removeIfPresent(path);
    }
  } finally {
    removeIfPresent(tmp);
  }
  throw new ConfigError(`could not take the crawl lock ${path} after removing a stale one; try again`);
}

/**
 * Refuses the lock held by a live holder, saying what to do. On this host a holder that ends leaves its
 * lock to be taken over, so only a pid reused by another process calls for deleting it; a holder on
 * another host cannot be checked, so its lock stays until that crawl releases it or someone deletes it.
 */
function heldBy(holder: LockContent, host: string, dbPath: string, path: string): LockHeldError {
  const who = `another crawl (pid ${holder.pid}${holder.host === host ? '' : ` on host ${holder.host}`}, since ${holder.startedAt}) is using ${dbPath}; wait for it to finish or stop it`;
  return new LockHeldError(
    holder.host === host
      ? `${who} (once pid ${holder.pid} has ended, the next command takes its lock over; only if that pid is now another program's, delete ${path})`
      : `${who} (a process on another host cannot be checked from here: if it is gone, delete ${path})`,
  );
}

function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function heldLock(path: string, pid: number): CrawlLock {
  let released = false;
  return {
    path,
    release(): void {
      if (released) return;
      released = true;
      if (readLock(path)?.pid !== pid) return; // taken over meanwhile: not ours to delete
      removeIfPresent(path);
    },
  };
}
