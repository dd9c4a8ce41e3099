import { statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, FatalError } from '../core/errors.js';
import { Frontier } from './frontier.js';
import { mapSqliteError } from './sqlite-errors.js';
import { openTempDataset, type TempDataset } from './test-fixtures/temp-dataset.js';

let dataset: TempDataset;
let db: Database;
beforeEach(() => {
  dataset = openTempDataset('hubcrawl-errors-');
  db = dataset.db;
});
afterEach(() => dataset.remove());

describe('write errors on a writable handle', () => {
  it('turn an unwritable database into a FatalError that says what to fix', () => {
    const frontier = new Frontier(db);
    // query_only produces the same SQLITE_READONLY a read-only file does (root ignores file modes).
    db.pragma('query_only = ON');
    const attempt = () => frontier.enqueue('layer', 'x');
    expect(attempt).toThrow(FatalError);
    expect(attempt).toThrow(/cannot be written \(read-only file or directory\); fix its permissions/);
  });

  it('leave errors that are bugs (constraint violations) untouched', () => {
    let caught: unknown;
    try {
      db.prepare(
        `INSERT INTO image_layers (image_digest, position, layer_digest) VALUES ('no', 0, 'no')`,
      ).run();
    } catch (err) {
      caught = err;
    }
    expect((caught as { code: string }).code).toBe('SQLITE_CONSTRAINT_FOREIGNKEY');
    expect(mapSqliteError(caught, db)).toBe(caught);
  });
});

describe('read errors on a read-only handle', () => {
  it('say that a WAL dataset needs a writable folder to be read, not that the command tried to write', () => {
    // The codes SQLite gives a read-only open of a WAL file where it cannot create or use the -shm file.
    for (const code of [
      'SQLITE_READONLY_DIRECTORY',
      'SQLITE_READONLY_CANTINIT',
      'SQLITE_READONLY_CANTLOCK',
    ]) {
      const mapped = mapSqliteError(
        Object.assign(new Error('attempt to write a readonly database'), { code }),
        {
          name: '/shelf/study.sqlite',
          readonly: true,
        },
      );
      expect(mapped).toBeInstanceOf(ConfigError);
      expect((mapped as Error).message).toMatch(
        /^the dataset \/shelf\/study\.sqlite cannot be read here: it is in WAL mode, .* study\.sqlite-shm beside it/,
      );
    }
    // On a read-only mount a WAL file opens, then its -shm cannot be created: SQLITE_CANTOPEN, which is the
    // WAL advice for a WAL file only (this test's dataset is one), not for a rollback-journal one or a query's
    // ATTACH of a file that is not there.
    const cantOpen = Object.assign(new Error('unable to open database file'), { code: 'SQLITE_CANTOPEN' });
    const readOnlyHandle = { name: dataset.path, readonly: true };
    const wal = mapSqliteError(cantOpen, readOnlyHandle, { opening: true });
    expect((wal as Error).message).toMatch(/cannot be read here: it is in WAL mode/);
    // After the open (a query's ATTACH of a missing file on this very WAL dataset): SQLite's own error.
    expect(mapSqliteError(cantOpen, readOnlyHandle)).toBe(cantOpen);
    db.pragma('journal_mode = DELETE');
    expect(mapSqliteError(cantOpen, readOnlyHandle, { opening: true })).toBe(cantOpen);
    expect(
      mapSqliteError(cantOpen, { name: join(dataset.dir, 'missing.db'), readonly: true }, { opening: true }),
    ).toBe(cantOpen);
    // A write through the read-only handle (a query's INSERT) keeps its own sentence.
    const write = mapSqliteError(Object.assign(new Error('x'), { code: 'SQLITE_READONLY' }), {
      name: '/shelf/study.sqlite',
      readonly: true,
    });
    expect((write as Error).message).toBe('the dataset is opened read-only; query cannot write');
  });

  it('say that a full disk stopped the -shm file of a read-only command, not a write of the dataset', () => {
    const shelf = { name: '/shelf/study.sqlite', readonly: true };
    const shm = mapSqliteError(
      Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_SHMSIZE' }),
      shelf,
    );
    expect(shm).toBeInstanceOf(FatalError);
    expect((shm as Error).message).toBe(
      'I/O error while reading the dataset /shelf/study.sqlite (SQLITE_IOERR_SHMSIZE: the -shm file SQLite keeps beside the dataset could not be written, as on a full disk); check the disk and run the command again',
    );
    const full = mapSqliteError(
      Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }),
      shelf,
    );
    expect((full as Error).message).not.toContain('crawl resumes');
    expect((full as Error).message).toBe(
      "the disk holding SQLite's temporary files (TMPDIR) or the -shm file beside the dataset /shelf/study.sqlite is full; free some space and run the command again",
    );
  });
});

describe('a damaged dataset', () => {
  it('quotes a path the shell would split in the command it suggests', () => {
    const err = Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' });
    const mapped = mapSqliteError(err, { name: "/shelf/it's here.sqlite", readonly: true });
    expect((mapped as Error).message).toContain(
      `\`sqlite3 '/shelf/it'\\''s here.sqlite' 'PRAGMA integrity_check'\``,
    );
  });

  it('says how to find the damage and what to do, for a file cut short', () => {
    db.prepare('CREATE TABLE filler (t TEXT)').run();
    db.prepare("INSERT INTO filler SELECT printf('%0500d', value) FROM json_each(?)").run(
      JSON.stringify(Array.from({ length: 400 }, (_, i) => i)),
    );
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma('journal_mode = DELETE');
    const path = dataset.path;
    truncateSync(path, Math.floor(statSync(path).size / 2));
    const cut = new BetterSqlite3(path, { readonly: true });
    let caught: unknown;
    try {
      cut.prepare('SELECT count(*) FROM filler').get();
    } catch (err) {
      caught = err;
    } finally {
      cut.close();
    }
    const mapped = mapSqliteError(caught, { name: path, readonly: true });
    expect(mapped).toBeInstanceOf(FatalError);
    expect((mapped as Error).message).toBe(
      `the dataset ${path} is damaged or not a SQLite database (SQLITE_CORRUPT): \`sqlite3 ${path} 'PRAGMA integrity_check'\` says where; restore it from a copy (an export bundle's hubcrawl.sqlite is one) or crawl into a new --db`,
    );
  });
});
