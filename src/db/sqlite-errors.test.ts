import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, FatalError } from '../core/errors.js';
import { Frontier } from './frontier.js';
import { openDatabase } from './open.js';
import { mapSqliteError } from './sqlite-errors.js';

let dir: string;
let db: Database;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hubcrawl-errors-'));
  db = openDatabase(join(dir, 'd.db'));
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

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
    const dataset = { name: join(dir, 'd.db'), readonly: true };
    const wal = mapSqliteError(cantOpen, dataset, { opening: true });
    expect((wal as Error).message).toMatch(/cannot be read here: it is in WAL mode/);
    // After the open (a query's ATTACH of a missing file on this very WAL dataset): SQLite's own error.
    expect(mapSqliteError(cantOpen, dataset)).toBe(cantOpen);
    db.pragma('journal_mode = DELETE');
    expect(mapSqliteError(cantOpen, dataset, { opening: true })).toBe(cantOpen);
    expect(
      mapSqliteError(cantOpen, { name: join(dir, 'missing.db'), readonly: true }, { opening: true }),
    ).toBe(cantOpen);
    // A write through the read-only handle (a query's INSERT) keeps its own sentence.
    const write = mapSqliteError(Object.assign(new Error('x'), { code: 'SQLITE_READONLY' }), {
      name: '/shelf/study.sqlite',
      readonly: true,
    });
    expect((write as Error).message).toBe('the dataset is opened read-only; query cannot write');
  });
});
