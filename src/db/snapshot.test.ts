import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeSnapshot } from './snapshot.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hubcrawl-snapshot-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A WAL dataset of a few thousand pages, so that the backup takes many steps. */
function createSource(path: string): void {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)');
  const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 3000; i++) insert.run(Buffer.alloc(3000, i % 251));
  })();
  db.close();
}

function rowCount(path: string): number {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('writeSnapshot', () => {
  it('copies the dataset as it was when the copy began while another connection keeps committing', async () => {
    const source = join(dir, 'd.sqlite');
    createSource(source);
    const db = new BetterSqlite3(source);
    const writer = new BetterSqlite3(source);
    const insert = writer.prepare('INSERT INTO t (body) VALUES (?)');
    let commitsDuringCopy = 0;
    // A crawl commits between the backup's steps; each commit used to restart the copy from page 1.
    const crawl = setInterval(() => {
      insert.run(Buffer.alloc(3000, 7));
      commitsDuringCopy++;
    }, 1);
    const before = rowCount(source);
    try {
      await writeSnapshot(db, join(dir, 'copy.sqlite'));
    } finally {
      clearInterval(crawl);
      db.close();
      writer.close();
    }
    expect(commitsDuringCopy).toBeGreaterThan(0);
    expect(rowCount(join(dir, 'copy.sqlite'))).toBe(before);
    expect(rowCount(source)).toBe(before + commitsDuringCopy);
  });

  it('leaves the source connection outside any transaction afterwards', async () => {
    const source = join(dir, 'd.sqlite');
    createSource(source);
    const db = new BetterSqlite3(source);
    try {
      await writeSnapshot(db, join(dir, 'copy.sqlite'));
      expect(db.inTransaction).toBe(false);
      db.prepare('INSERT INTO t (body) VALUES (?)').run(Buffer.from('after'));
    } finally {
      db.close();
    }
    expect(rowCount(source)).toBe(3001);
    expect(rowCount(join(dir, 'copy.sqlite'))).toBe(3000);
  });
});
