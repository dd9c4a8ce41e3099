import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { acquireCrawlLock, LockHeldError } from './lock.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hubcrawl-lock-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited (and been reaped), so it is certainly dead. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(r.stdout);
}

describe('acquireCrawlLock', () => {
  it('refuses a second holder and names the pid that holds the lock', () => {
    const db = join(dir, 'd.db');
    const lock = acquireCrawlLock(db);
    expect(() => acquireCrawlLock(db)).toThrow(ConfigError);
    expect(() => acquireCrawlLock(db)).toThrow(new RegExp(`another crawl \\(pid ${process.pid},`));
    lock.release();
    expect(existsSync(`${db}.lock`)).toBe(false);
    acquireCrawlLock(db).release();
  });

  it('says that a lock on this host is taken over once its holder has ended, and one from another host is not', () => {
    const db = join(dir, 'd.db');
    const lock = acquireCrawlLock(db);
    expect(() => acquireCrawlLock(db)).toThrow(
      `(once pid ${process.pid} has ended, the next command takes its lock over; only if that pid is now another program's, delete ${db}.lock)`,
    );
    lock.release();
    writeFileSync(`${db}.lock`, JSON.stringify({ pid: deadPid(), host: 'elsewhere', startedAt: 'then' }));
    expect(() => acquireCrawlLock(db)).toThrow(
      / on host elsewhere, since then\) is using .*; wait for it to finish or stop it \(a process on another host cannot be checked from here: if it is gone, delete .*d\.db\.lock\)$/,
    );
  });

  it('takes over a lock left by a dead process', () => {
    const db = join(dir, 'd.db');
    const pid = deadPid();
    writeFileSync(`${db}.lock`, JSON.stringify({ pid, host: hostname(), startedAt: 'then' }));
    const lock = acquireCrawlLock(db);
    expect(JSON.parse(readFileSync(`${db}.lock`, 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('takes over an unreadable lock file', () => {
    const db = join(dir, 'd.db');
    writeFileSync(`${db}.lock`, '');
    acquireCrawlLock(db).release();
  });

  it('does not delete a lock that another process took over after ours', () => {
    const db = join(dir, 'd.db');
    const lock = acquireCrawlLock(db);
    writeFileSync(`${db}.lock`, JSON.stringify({ pid: 1, host: hostname(), startedAt: 'now' }));
    lock.release();
    expect(existsSync(`${db}.lock`)).toBe(true);
  });

  it('meets the same lock through a symlink to the dataset, or to its folder', () => {
    const db = join(dir, 'd.db');
    writeFileSync(db, '');
    symlinkSync(db, join(dir, 'link.db'));
    symlinkSync(dir, join(dir, 'folder-link'));
    const lock = acquireCrawlLock(db);
    expect(() => acquireCrawlLock(join(dir, 'link.db'))).toThrow(LockHeldError);
    expect(() => acquireCrawlLock(join(dir, 'folder-link', 'd.db'))).toThrow(
      new RegExp(`delete ${dir}/d\\.db\\.lock\\)`),
    );
    lock.release();
    expect(existsSync(join(dir, 'link.db.lock'))).toBe(false);
  });

  it('locks a dataset not created yet beside where it will be', () => {
    symlinkSync(dir, join(dir, 'folder-link'));
    const lock = acquireCrawlLock(join(dir, 'folder-link', 'new.db'));
    expect(lock.path).toBe(join(dir, 'new.db.lock'));
    expect(() => acquireCrawlLock(join(dir, 'new.db'))).toThrow(LockHeldError);
    lock.release();
  });
});
