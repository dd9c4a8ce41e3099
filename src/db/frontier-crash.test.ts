import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from './open.js';

/**
 * The crash-safety claim of frontier.ts, tested the hard way: a real process walks a tree of work items
 * (each completion enqueues two children and logs the node in the same transaction), gets SIGKILLed at
 * random points, resumes, and in the end every node has been done exactly once.
 */

const NODES = 800;
const KILLS = 10;
const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
const mod = (name: string) => new URL(`./${name}`, import.meta.url).href;

const WORKER = `
import { openDatabase } from '${mod('open.ts')}';
import { Frontier } from '${mod('frontier.ts')}';
import { acquireCrawlLock } from '${mod('lock.ts')}';
const [path, nodes] = [process.argv[2], Number(process.argv[3])];
const db = openDatabase(path);
const lock = acquireCrawlLock(path);
db.exec('CREATE TABLE IF NOT EXISTS work_log (node INTEGER NOT NULL)');
const log = db.prepare('INSERT INTO work_log (node) VALUES (?)');
const f = new Frontier(db);
f.resetInProgress();
f.retryFailed(100);
f.enqueue('repository', '0', { n: 0 });
for (let round = 0; round < nodes * 10; round++) {
  const items = f.claim(['repository', 'layer'], 3);
  if (items.length === 0) break;
  for (const item of items) {
    const n = item.payload.n;
    // Every seventh node fails once with a retryable error, exercising fail() under kills too.
    if (n % 7 === 3 && item.attempts === 0) {
      f.fail(item.id, { code: 'RETRYABLE', message: 'flaky' }, { retryable: true, maxAttempts: 3 });
      continue;
    }
    const children = [2 * n + 1, 2 * n + 2]
      .filter((c) => c < nodes)
      .map((c) => ({ kind: c % 3 === 0 ? 'layer' : 'repository', key: String(c), payload: { n: c } }));
    db.transaction(() => {
      log.run(n);
      f.complete(item.id, children);
    })();
    process.stdout.write(n + '\\n');
  }
}
lock.release();
db.close();
process.stdout.write('finished\\n');
`;

let dir: string;
let script: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hubcrawl-crash-'));
  script = join(dir, 'worker.mts');
  writeFileSync(script, WORKER);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the worker; with `killAfterLines`, SIGKILLs it once it has reported that many completions. */
function runWorker(
  dbPath: string,
  killAfterLines?: number,
): Promise<{ lines: string[]; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, dbPath, String(NODES)], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      if (killAfterLines !== undefined && lines.length === killAfterLines) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal === null && code !== 0) reject(new Error(`worker exited ${code}: ${stderr}`));
      else resolve({ lines, signal });
    });
  });
}

describe('frontier crash safety', () => {
  it('loses and duplicates no work across repeated SIGKILLs and a resume', async () => {
    const dbPath = join(dir, 'crash.db');
    let killed = 0;
    for (let i = 0; i < KILLS; i++) {
      const after = 1 + Math.floor(Math.random() * 40);
      const { lines, signal } = await runWorker(dbPath, after);
      expect(lines).not.toContain('finished');
      if (signal === 'SIGKILL') killed++;
    }
    expect(killed).toBe(KILLS);
    expect(existsSync(`${dbPath}.lock`)).toBe(true); // left behind by the last kill, taken over next

    const final = await runWorker(dbPath);
    expect(final.lines.at(-1)).toBe('finished');

    const db = openDatabase(dbPath, { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.pragma('foreign_key_check')).toEqual([]);
      const keys = db.prepare('SELECT CAST(key AS INTEGER) FROM frontier ORDER BY 1').pluck().all();
      expect(keys).toEqual(Array.from({ length: NODES }, (_, i) => i));
      expect(db.prepare(`SELECT count(*) FROM frontier WHERE state <> 'done'`).pluck().get()).toBe(0);
      const logged = db.prepare('SELECT node FROM work_log ORDER BY node').pluck().all();
      expect(logged).toEqual(Array.from({ length: NODES }, (_, i) => i));
      // Each node's parent is the node that enqueued it.
      const wrongParents = db
        .prepare(
          `SELECT count(*) FROM frontier c JOIN frontier p ON p.id = c.parent_id
            WHERE CAST(p.key AS INTEGER) <> (CAST(c.key AS INTEGER) - 1) / 2`,
        )
        .pluck()
        .get();
      expect(wrongParents).toBe(0);
    } finally {
      db.close();
    }
    expect(existsSync(`${dbPath}.lock`)).toBe(false);
  });
});
