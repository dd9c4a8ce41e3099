/**
 * What a scheduled crawl meets: a SIGTERM mid-crawl (exit 3, then the same command resumes to the
 * same dataset) and a second crawl on the same database (refused with a lock message, exit 2). A
 * gate proxy in front of the real registry holds blob downloads, so "mid-crawl" is a known moment.
 * A rematch stopped or killed mid-way leaves a run that holds nothing back.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCliOnce, removeTempDirs, runCli, settle, startCli, tempDir } from './helpers/cli.js';
import { parseCsv } from './helpers/csv.js';
import {
  type DemoRegistry,
  expectedDemoRows,
  recordsToObjects,
  stable,
  startDemoRegistry,
} from './helpers/demo.js';
import { type GateProxy, startGateProxy } from './helpers/gate-proxy.js';

let demo: DemoRegistry;
let gate: GateProxy;
let dir: string;

// A hung CLI is killed well inside the test's 60 s, so a failure shows its output instead of a timeout.
const CLI_LIMIT = { killAfterMs: 40_000 };

/** Waits until the gate holds a request of `cli`; fails at once, with its output, if it exits first. */
async function heldFor(cli: ReturnType<typeof startCli>): Promise<void> {
  let waiting = true;
  const exited = cli.done.then((r) => {
    if (waiting)
      throw new Error(`the crawl exited (code ${r.code}) before the gate held a request:\n${r.stderr}`);
  });
  exited.catch(() => {});
  await Promise.race([gate.held(), exited]);
  waiting = false;
}

/**
 * A FIFO's write end, opened once the CLI has the FIFO open for reading (opening it for writing without
 * blocking succeeds only then): the CLI is from then on blocked reading it, at a known moment.
 */
async function writerOnceRead(fifo: string): Promise<number> {
  for (let i = 0; i < 300; i++) {
    try {
      return openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`nothing opened ${fifo} for reading within 15 s`);
}

beforeAll(async () => {
  await settle(
    startDemoRegistry().then((d) => {
      demo = d;
    }),
    buildCliOnce(),
  );
  gate = await startGateProxy(demo.registry.url, /\/blobs\/sha256:/);
  dir = tempDir('interrupt');
}, 180_000);

afterAll(async () => {
  gate?.open();
  await Promise.allSettled([gate?.stop(), demo?.registry.stop()]);
  removeTempDirs();
});

describe('SIGTERM mid-crawl', () => {
  it('exits 3 after finishing in-flight writes, and the same command then resumes the run to the full dataset', async () => {
    gate.close();
    const db = join(dir, 'term.sqlite');
    const args = ['crawl', '--catalog', gate.url, '--db', db, '--log-level', 'warn'];
    const first = startCli(args, CLI_LIMIT);
    await heldFor(first);
    first.child.kill('SIGTERM');
    const stopped = await first.done;
    expect(stopped).toMatchObject({ code: 3 });
    expect(stopped.stderr).toContain('run the same command again to resume');
    expect(stopped.stdout).toMatch(/^run 1 aborted/);

    gate.open();
    const resumed = await runCli(args, CLI_LIMIT);
    expect(resumed).toMatchObject({ code: 0 });
    expect(resumed.stdout).toMatch(/^run 1 completed \(resumed\): /);
    const report = await runCli(['report', '--db', db]);
    expect(stable(recordsToObjects(parseCsv(report.stdout).records))).toEqual(
      stable(expectedDemoRows(demo, gate.host)),
    );
  });
});

describe('SIGINT while the crawl starts up', () => {
  it('exits 3 with the notice, not killed by the signal, and the same command resumes the run', async () => {
    // The IOC file is a FIFO: the crawl blocks reading it, before it installs its own handlers, until the
    // test has sent the signal and then writes the set. So "early" is a known moment, not a race.
    const fifo = join(dir, 'early-set.json');
    execFileSync('mkfifo', [fifo]);
    const set = JSON.stringify({
      id: 'e2e-early',
      version: '1',
      title: 'early',
      references: [],
      rules: [{ id: 'r', kind: 'file-md5', md5: 'b'.repeat(32) }],
    });
    const db = join(dir, 'early.sqlite');
    const args = ['crawl', '--catalog', demo.registry.url, '--ioc', fifo, '--db', db, '--quiet'];
    const first = startCli(args, CLI_LIMIT);
    const fd = await writerOnceRead(fifo);
    first.child.kill('SIGINT');
    await sleep(200);
    writeSync(fd, set);
    closeSync(fd);
    const stopped = await first.done;
    expect(stopped.signal).toBeNull();
    expect(stopped.code).toBe(3);
    expect(stopped.stderr).toMatch(
      /^hubcrawl: run 1 stopped early: [^\n]*run the same command again to resume\n$/,
    );
    // The same command, the FIFO now a plain file holding the same set.
    unlinkSync(fifo);
    writeFileSync(fifo, set);
    const resumed = await runCli(args, CLI_LIMIT);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/^run 1 completed \(resumed\): /);
  });
});

describe('a second signal', () => {
  it('ends a command still starting up, killed by it, as Node would have without handlers', async () => {
    // Blocked reading its IOC set from a FIFO (an asynchronous read, so the first signal is handled: held
    // for the command), the crawl gets a second one, which nothing holds any more.
    const fifo = join(dir, 'twice-set.json');
    execFileSync('mkfifo', [fifo]);
    const first = startCli(
      ['crawl', '--catalog', demo.registry.url, '--ioc', fifo, '--db', join(dir, 'x.sqlite')],
      CLI_LIMIT,
    );
    const fd = await writerOnceRead(fifo);
    first.child.kill('SIGINT');
    await sleep(200);
    first.child.kill('SIGINT');
    const stopped = await first.done;
    closeSync(fd);
    expect(stopped.signal).toBe('SIGINT');
  });
});

describe('SIGINT mid-scan', () => {
  it('is resumed by the same scan, as its message says; a scan of other references is refused meanwhile', async () => {
    gate.close();
    const db = join(dir, 'scan.sqlite');
    const refs = [`${gate.host}/demo/multi:latest`, `${gate.host}/demo/debian-clean:12`];
    const args = ['scan', ...refs, '--db', db, '--log-level', 'warn'];
    const first = startCli(args, CLI_LIMIT);
    await heldFor(first);
    first.child.kill('SIGINT');
    const stopped = await first.done;
    expect(stopped).toMatchObject({ code: 3 });
    expect(stopped.stderr).toContain('run the same command again to resume');
    gate.open();

    const other = await runCli(['scan', `${gate.host}/demo/debian-clean:12`, '--db', db], CLI_LIMIT);
    expect(other.code).toBe(2);
    // It names the scan that resumes the run, with its references as the run recorded them.
    expect(other.stderr).toContain(`holds unfinished run 1, started 20`);
    expect(other.stderr).toContain(
      `: \`hubcrawl scan --db ${db} ${refs.join(' ')}\` resumes it, or use another --db`,
    );
    // The same references in another order are the same scan.
    const resumed = await runCli(
      ['scan', ...[...refs].reverse(), '--db', db, '--log-level', 'warn'],
      CLI_LIMIT,
    );
    expect(resumed.stderr).not.toContain('holds unfinished run');
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/demo\/multi:latest +linux\/amd64 .* AFFECTED /);
    const runs = await runCli([
      'query',
      '--db',
      db,
      '--format',
      'jsonl',
      'SELECT id, status FROM crawl_runs',
    ]);
    expect(runs.stdout).toBe('{"id":1,"status":"completed"}\n');
  });
});

describe('SIGTERM while requests are held', () => {
  it('cuts them without retrying: no retry after the stop goes past its first attempt', async () => {
    gate.close();
    const db = join(dir, 'cut.sqlite');
    const first = startCli(['crawl', '--catalog', gate.url, '--db', db, '--log-level', 'debug'], CLI_LIMIT);
    await heldFor(first);
    first.child.kill('SIGTERM');
    const stopped = await first.done;
    expect(stopped.code).toBe(3);
    const lines = stopped.stderr.split('\n').filter((l) => l.startsWith('{'));
    const stop = lines.findIndex((l) => l.includes('"signal":"SIGTERM"'));
    expect(stop).toBeGreaterThanOrEqual(0);
    // A cut request may note one retry, but its backoff must end with the run: a second attempt would
    // only meet the closed connection pool, and each one delays the exit a systemd stop waits for.
    const retries = lines
      .slice(stop)
      .map((l) => JSON.parse(l) as { msg?: string; attempt?: number })
      .filter((l) => l.msg === 'retrying' && (l.attempt ?? 0) >= 2);
    expect(retries).toEqual([]);
  });
});

describe('two crawls on one database', () => {
  it('the second is refused with exit 2 and a message naming the first, which then finishes', async () => {
    gate.close();
    const db = join(dir, 'locked.sqlite');
    const args = ['crawl', '--catalog', gate.url, '--db', db, '--quiet'];
    const first = startCli(args, CLI_LIMIT);
    await heldFor(first);
    const second = await runCli(args, CLI_LIMIT);
    expect(second).toMatchObject({ code: 2 });
    expect(second.stdout).toBe('');
    expect(second.stderr).toMatch(
      new RegExp(
        `^hubcrawl: another crawl \\(pid ${first.child.pid}, since [^)]+\\) is using [^\\n]*locked\\.sqlite[^\\n]*\\n$`,
      ),
    );
    gate.open();
    const done = await first.done;
    expect(done).toMatchObject({ code: 0, stderr: '' });
    expect(done.stdout).toMatch(/^run 1 completed: /);
  });
});

/**
 * A crawled demo dataset whose most shared layer holds `files` more files, so that a rematch spends a
 * while on each of its images: long enough for the test to see it running and signal it.
 */
async function datasetSlowToRematch(name: string, files: number): Promise<string> {
  const db = join(dir, name);
  const crawl = await runCli(['crawl', '--catalog', demo.registry.url, '--db', db, '--quiet'], CLI_LIMIT);
  expect(crawl).toMatchObject({ code: 0, stderr: '' });
  const sqlite = new BetterSqlite3(db);
  try {
    sqlite
      .prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?),
              base(digest) AS (SELECT layer_digest FROM image_layers GROUP BY layer_digest
                                ORDER BY count(*) DESC, layer_digest LIMIT 1)
         INSERT INTO layer_files (layer_digest, seq, path, size, mode, sha256)
         SELECT base.digest, 1000000 + i, '/usr/share/doc/filler/' || i, i, 420, lower(hex(randomblob(32)))
           FROM n, base`,
      )
      .run(files);
  } finally {
    sqlite.close();
  }
  return db;
}

/** The status of run `id` in `db`, or undefined while there is no such run. */
function runStatus(db: string, id: number): { status: string; stats: Record<string, unknown> } | undefined {
  const sqlite = new BetterSqlite3(db, { readonly: true });
  try {
    const row = sqlite.prepare('SELECT status, stats_json FROM crawl_runs WHERE id = ?').get(id) as
      | { status: string; stats_json: string | null }
      | undefined;
    return row && { status: row.status, stats: JSON.parse(row.stats_json ?? 'null') };
  } finally {
    sqlite.close();
  }
}

/** Starts `hubcrawl rematch` on `db` and waits until its run `id` is recorded running (in its image loop). */
async function rematchRunning(db: string, id: number): Promise<ReturnType<typeof startCli>> {
  const cli = startCli(['rematch', '--db', db, '--quiet'], CLI_LIMIT);
  let exited: Awaited<typeof cli.done> | undefined;
  void cli.done.then((r) => {
    exited = r;
  });
  while (runStatus(db, id)?.status !== 'running') {
    if (exited)
      throw new Error(`the rematch exited (code ${exited.code}) before its run began:\n${exited.stderr}`);
    await sleep(10);
  }
  return cli;
}

describe('a rematch stopped mid-way', () => {
  it('exits 3 on SIGINT with the notice, its run aborted; neither it nor a killed one holds back a rematch or a scan', async () => {
    const db = await datasetSlowToRematch('rematch.sqlite', 300_000);
    const first = await rematchRunning(db, 2);
    first.child.kill('SIGINT');
    const stopped = await first.done;
    expect(stopped.signal).toBeNull();
    expect(stopped.code).toBe(3);
    expect(stopped.stderr).toMatch(
      /^hubcrawl: rematch stopped by SIGINT; run 2 re-matched \d+ images? and left [1-9]\d* with their earlier findings \(each image is matched anew or left as it was\); run the same `hubcrawl rematch` again to re-match every image\n$/,
    );
    expect(runStatus(db, 2)).toMatchObject({
      status: 'aborted',
      stats: { rematch: true, stoppedBy: 'SIGINT', imagesNotReached: expect.any(Number) },
    });

    const again = await runCli(['rematch', '--db', db, '--quiet'], CLI_LIMIT);
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toMatch(/^re-matched \d+ images? /);
    expect(runStatus(db, 3)?.status).toBe('completed');

    // A kill that no handler sees leaves the run `running`: the next scan marks it aborted and goes on.
    const killed = await rematchRunning(db, 4);
    killed.child.kill('SIGKILL');
    expect((await killed.done).signal).toBe('SIGKILL');
    const scan = await runCli(
      ['scan', `${demo.registry.host}/demo/debian-clean:12`, '--db', db, '--quiet'],
      CLI_LIMIT,
    );
    expect(scan.stderr).toBe('');
    expect(scan.code).toBe(0);
    expect(runStatus(db, 4)?.status).toBe('aborted');
    expect(runStatus(db, 5)?.status).toBe('completed');
  });
});
