import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, FatalError } from '../core/errors.js';
import { acquireCrawlLock } from './lock.js';
import { DEFAULT_MIGRATIONS_DIR, loadMigrations, schemaVersion } from './migrate.js';
import { openDatabase } from './open.js';
import { RunStore } from './run-store.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hubcrawl-open-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const runInput = { config: {}, toolVersion: '0.1.0', analyzerVersion: 'a1' };

describe('openDatabase', () => {
  it('applies every migration to an empty file and records the schema version', () => {
    const db = openDatabase(join(dir, 'd.db'));
    expect(schemaVersion(db)).toBe(loadMigrations().length);
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type IN ('table', 'view')`).pluck().all();
    expect(tables).toEqual(
      expect.arrayContaining([
        'crawl_runs',
        'layers',
        'findings',
        'frontier',
        'affected_images',
        'report_rows',
      ]),
    );
    db.close();
  });

  it('sets WAL, foreign keys, busy timeout and synchronous NORMAL', () => {
    const db = openDatabase(join(dir, 'd.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    db.close();
  });

  it('leaves an up-to-date database unchanged when opened again', () => {
    const path = join(dir, 'd.db');
    const db = openDatabase(path);
    new RunStore(db).start(runInput);
    db.close();
    const again = openDatabase(path);
    expect(again.prepare('SELECT count(*) FROM crawl_runs').pluck().get()).toBe(1);
    again.close();
  });

  it('refuses a database created by a newer hubcrawl', () => {
    const path = join(dir, 'd.db');
    const raw = new BetterSqlite3(path);
    raw.pragma('user_version = 999');
    raw.close();
    expect(() => openDatabase(path)).toThrow(ConfigError);
    expect(() => openDatabase(path)).toThrow(/created by a newer hubcrawl.*upgrade/);
    expect(() => openDatabase(path, { readonly: true })).toThrow(/newer hubcrawl/);
  });

  it('applies a later migration from a custom directory on top of an existing database', () => {
    const migrations = join(dir, 'migrations');
    mkdirSync(migrations);
    for (const m of loadMigrations()) writeFileSync(join(migrations, m.name), m.sql);
    const path = join(dir, 'd.db');
    openDatabase(path, { migrationsDir: migrations }).close();
    writeFileSync(join(migrations, '0099_extra.sql'), 'CREATE TABLE extra (x INTEGER);');
    expect(() => openDatabase(path, { migrationsDir: migrations })).toThrow(/skip or repeat a number/);
    rmSync(join(migrations, '0099_extra.sql'));
    const next = String(loadMigrations().length + 1).padStart(4, '0');
    writeFileSync(join(migrations, `${next}_extra.sql`), 'CREATE TABLE extra (x INTEGER);');
    const db = openDatabase(path, { migrationsDir: migrations });
    expect(schemaVersion(db)).toBe(loadMigrations().length + 1);
    expect(db.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'extra'`).pluck().get()).toBe(1);
    db.close();
  });

  it('rolls back a failing migration so the previous version stays intact', () => {
    const migrations = join(dir, 'migrations');
    mkdirSync(migrations);
    writeFileSync(join(migrations, '0001_ok.sql'), 'CREATE TABLE a (x INTEGER);');
    writeFileSync(
      join(migrations, '0002_bad.sql'),
      'CREATE TABLE b (x INTEGER); INSERT INTO nope VALUES (1);',
    );
    const path = join(dir, 'd.db');
    expect(() => openDatabase(path, { migrationsDir: migrations })).toThrow(/migration 0002_bad.sql failed/);
    const raw = new BetterSqlite3(path);
    expect(raw.pragma('user_version', { simple: true })).toBe(1);
    expect(raw.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'b'`).pluck().get()).toBe(0);
    raw.close();
  });

  it('finds the packaged migrations directory from the module location', () => {
    expect(existsSync(join(DEFAULT_MIGRATIONS_DIR, '0001_init.sql'))).toBe(true);
  });
});

describe('read-only mode', () => {
  it('refuses a write statement with the read-only sentence', () => {
    const path = join(dir, 'd.db');
    openDatabase(path).close();
    const db = openDatabase(path, { readonly: true });
    expect(db.prepare('SELECT count(*) FROM findings').pluck().get()).toBe(0);
    expect(() => db.prepare(`INSERT INTO registries (host) VALUES ('x')`)).toThrow(
      new ConfigError('the dataset is opened read-only; query cannot write'),
    );
    expect(() => db.exec(`DELETE FROM registries`)).toThrow(/opened read-only; query cannot write/);
    expect(() => db.pragma('user_version = 5')).toThrow(/opened read-only; query cannot write/);
    db.close();
  });

  /** A dataset as the first schema left it (an older hubcrawl), with one run recorded. */
  const olderDataset = (): string => {
    const first = join(dir, 'first-schema');
    mkdirSync(first);
    const [init] = loadMigrations();
    writeFileSync(join(first, init!.name), init!.sql);
    const path = join(dir, 'older.db');
    const db = openDatabase(path, { migrationsDir: first });
    new RunStore(db).start(runInput);
    db.close();
    return path;
  };

  it('brings a dataset an older hubcrawl wrote up to date, keeping its rows, and reads it read-only', () => {
    const path = olderDataset();
    const db = openDatabase(path, { readonly: true });
    expect(schemaVersion(db)).toBe(loadMigrations().length);
    expect(db.prepare('SELECT count(*) FROM crawl_runs').pluck().get()).toBe(1);
    expect(() => db.prepare(`INSERT INTO registries (host) VALUES ('x')`)).toThrow(/opened read-only/);
    db.close();
  });

  it('says the dataset is locked, not to copy it, when another process holds it during the upgrade', () => {
    const path = olderDataset();
    const other = new BetterSqlite3(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      let message = '';
      try {
        openDatabase(path, { readonly: true, busyTimeoutMs: 50 });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/stayed locked by another process/);
      expect(message).not.toMatch(/copy it/);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    const db = openDatabase(path, { readonly: true });
    expect(schemaVersion(db)).toBe(loadMigrations().length);
    db.close();
  });

  it('keeps an older dataset’s rollback journal mode when a read-only command upgrades it', () => {
    const path = olderDataset();
    const raw = new BetterSqlite3(path);
    expect(raw.pragma('journal_mode = DELETE', { simple: true })).toBe('delete');
    raw.close();
    openDatabase(path, { readonly: true }).close();
    const after = new BetterSqlite3(path, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(loadMigrations().length);
    expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
    after.close();
  });

  it('does not upgrade an older dataset under a crawl that holds it, and says it waits for that crawl', () => {
    const path = olderDataset();
    const lock = acquireCrawlLock(path);
    try {
      expect(() => openDatabase(path, { readonly: true })).toThrow(
        /another crawl \(pid \d+.*is using .*must first bring its schema up to date, which waits until that crawl has finished/,
      );
      const raw = new BetterSqlite3(path, { readonly: true });
      expect(raw.pragma('user_version', { simple: true })).toBe(1);
      raw.close();
    } finally {
      lock.release();
    }
    openDatabase(path, { readonly: true }).close();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('does not upgrade the copy in an export bundle in place: its checksum would no longer hold', () => {
    const path = olderDataset();
    const before = readFileSync(path);
    writeFileSync(join(dir, 'MANIFEST.json'), JSON.stringify({ sha256: { 'older.db': 'f'.repeat(64) } }));
    expect(() => openDatabase(path, { readonly: true })).toThrow(
      /is the copy in a hubcrawl export bundle, written by an older hubcrawl; .*copy it out of the bundle/,
    );
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  // A read-only bind mount stands for a published copy on read-only media (root only, as in CI).
  it.skipIf(process.getuid?.() !== 0)(
    'says to copy an older dataset somewhere writable when it cannot be upgraded in place',
    () => {
      const path = olderDataset();
      execFileSync('mount', ['--bind', path, path]);
      try {
        execFileSync('mount', ['-o', 'remount,ro,bind', path]);
        expect(() => openDatabase(path, { readonly: true })).toThrow(
          /written by an older hubcrawl and needs a schema upgrade, which cannot be written there \(a read-only file or directory\); copy it to a writable place/,
        );
      } finally {
        execFileSync('umount', [path]);
      }
      const raw = new BetterSqlite3(path, { readonly: true });
      expect(raw.pragma('user_version', { simple: true })).toBe(1);
      raw.close();
    },
  );

  it('refuses a directory as the dataset, saying it is one', () => {
    for (const readonly of [true, false]) {
      expect(() => openDatabase(dir, { readonly })).toThrow(
        new ConfigError(
          `the dataset path ${dir} is a directory; give the dataset file (e.g. ${join(dir, 'hubcrawl.sqlite')})`,
        ),
      );
    }
  });

  it('refuses to create a missing dataset', () => {
    expect(() => openDatabase(join(dir, 'missing.db'), { readonly: true })).toThrow(/no dataset at/);
    expect(existsSync(join(dir, 'missing.db'))).toBe(false);
  });

  it('names the missing folder of a dataset path, whether it reads or would create the dataset', () => {
    const folder = join(dir, 'no-such-folder', 'deeper');
    const path = join(folder, 'd.sqlite');
    expect(() => openDatabase(path, { readonly: true })).toThrow(
      new ConfigError(
        `no dataset at ${path}: the folder ${folder} does not exist; check the path (--db, HUBCRAWL_DB or the config's db)`,
      ),
    );
    expect(() => openDatabase(path)).toThrow(
      new ConfigError(
        `cannot create the dataset at ${path}: the folder ${folder} does not exist; create it or check the path (--db, HUBCRAWL_DB or the config's db)`,
      ),
    );
    expect(existsSync(join(dir, 'no-such-folder'))).toBe(false);
  });

  it('refuses a file that is not a SQLite database', () => {
    const path = join(dir, 'junk.db');
    writeFileSync(
      path,
      'this is not sqlite, just some text long enough to fill a header......................',
    );
    expect(() => openDatabase(path, { readonly: true })).toThrow(/not a hubcrawl dataset/);
  });
});

describe('a SQLite file that is not a hubcrawl dataset', () => {
  /** Some other program's database (user_version 0, tables of its own), in the given journal mode. */
  const foreignDatabase = (journal: 'delete' | 'wal'): string => {
    const path = join(dir, `other-${journal}.db`);
    const raw = new BetterSqlite3(path);
    raw.pragma(`journal_mode = ${journal}`);
    raw.exec(`CREATE TABLE foo (x); INSERT INTO foo VALUES (1); CREATE VIEW bar AS SELECT x FROM foo`);
    raw.close();
    return path;
  };
  /** The bytes of every file in the directory (the database and any -wal, -shm or -journal beside it). */
  const snapshot = () => new Map(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name))]));
  const refusal = (path: string) =>
    new ConfigError(
      `${path} is a SQLite database but not a hubcrawl dataset (it has tables of its own and no hubcrawl schema version), so hubcrawl leaves it untouched; check the path, or give a new file for a new dataset`,
    );

  for (const readonly of [false, true]) {
    it(`is refused untouched by a ${readonly ? 'read-only' : 'writable'} open, in either journal mode`, () => {
      for (const journal of ['delete', 'wal'] as const) {
        const path = foreignDatabase(journal);
        const before = snapshot();
        expect(() => openDatabase(path, { readonly })).toThrow(refusal(path));
        expect(snapshot()).toEqual(before);
        const raw = new BetterSqlite3(path, { readonly: true });
        expect(raw.prepare('SELECT name FROM sqlite_master ORDER BY name').pluck().all()).toEqual([
          'bar',
          'foo',
        ]);
        raw.close();
      }
    });
  }

  it('is told from an older hubcrawl dataset by its schema version, which is upgraded as before', () => {
    // The same tables, once with the version the first schema recorded and once without any.
    const first = join(dir, 'first-schema');
    mkdirSync(first);
    const [init] = loadMigrations();
    writeFileSync(join(first, init!.name), init!.sql);
    const older = join(dir, 'older.db');
    const db = openDatabase(older, { migrationsDir: first });
    new RunStore(db).start(runInput);
    db.close();
    const unversioned = join(dir, 'unversioned.db');
    copyFileSync(older, unversioned);
    const raw = new BetterSqlite3(unversioned);
    raw.pragma('user_version = 0');
    raw.close();

    const upgraded = openDatabase(older, { readonly: true });
    expect(schemaVersion(upgraded)).toBe(loadMigrations().length);
    expect(upgraded.prepare('SELECT count(*) FROM crawl_runs').pluck().get()).toBe(1);
    upgraded.close();
    const writable = openDatabase(older);
    expect(schemaVersion(writable)).toBe(loadMigrations().length);
    writable.close();
    expect(() => openDatabase(unversioned, { readonly: true })).toThrow(refusal(unversioned));
    expect(() => openDatabase(unversioned)).toThrow(refusal(unversioned));
  });

  it('an empty file is initialised by a writable open, and read-only refused as no dataset yet', () => {
    const zeroBytes = join(dir, 'zero.db');
    writeFileSync(zeroBytes, '');
    // A database with a header but no schema object, as `sqlite3 new.db 'VACUUM'` leaves it.
    const headerOnly = join(dir, 'header-only.db');
    const raw = new BetterSqlite3(headerOnly);
    raw.exec('VACUUM');
    raw.close();
    expect(readFileSync(headerOnly).length).toBeGreaterThan(0);
    for (const path of [zeroBytes, headerOnly]) {
      const before = readFileSync(path);
      expect(() => openDatabase(path, { readonly: true })).toThrow(
        new ConfigError(
          `no dataset at ${path} (an empty SQLite file); run \`hubcrawl crawl\` first or check the path`,
        ),
      );
      expect(readFileSync(path)).toEqual(before);
      openDatabase(path).close();
      const db = openDatabase(path, { readonly: true });
      expect(schemaVersion(db)).toBe(loadMigrations().length);
      db.close();
    }
  });
});

describe('write errors', () => {
  it('turns a full disk into a FatalError that says so', () => {
    const db = openDatabase(join(dir, 'd.db'));
    const pages = db.pragma('page_count', { simple: true }) as number;
    // max_page_count makes SQLite report SQLITE_FULL exactly as a full disk does.
    db.pragma(`max_page_count = ${pages + 1}`);
    const runs = new RunStore(db);
    const big = { blob: 'x'.repeat(200_000) };
    const attempt = () => runs.start({ ...runInput, config: big });
    expect(attempt).toThrow(FatalError);
    expect(attempt).toThrow(/disk holding the dataset .* is full/);
    db.close();
  });
});
