/**
 * The fault matrix, process half: the built CLI (`node bin/hubcrawl.js crawl`) in a child process,
 * through a fault proxy in front of the real registry.
 * - SIGKILL at random points, over and over, then a resume: the file is sound and the dataset equals
 *   a clean run's.
 * - A full disk (a real tmpfs of a few hundred KiB) and a read-only filesystem under the dataset: exit
 *   code 3, one clear sentence, a sound file, and a later run with room completes to the clean dataset.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoImage } from '../../../scripts/demo-images.js';
import type { FaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { buildCliOnce } from '../../e2e/helpers/cli.js';
import { type DatasetSnapshot, integrityCheck, queryDataset } from '../../helpers/dataset.js';
import {
  comparableDataset,
  type FaultCrawl,
  type FaultWorld,
  MatrixReport,
  referenceCrawl,
  repoSeeds,
  startFaultWorld,
  type TempDir,
} from '../../helpers/fault-matrix.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'bin/hubcrawl.js');
const report = new MatrixReport('Fault matrix — the built CLI killed, out of disk, read-only', 'cli');

/** A seeded PRNG (mulberry32): "random" kill points that a failure report can reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `hubcrawl crawl --config <file>`; resolves when it exits. */
function startCrawl(configPath: string): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, 'crawl', '--config', configPath, '--quiet'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HUBCRAWL_LOG_LEVEL: 'error' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<CliResult>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

async function runCli(configPath: string): Promise<CliResult> {
  return startCrawl(configPath).done;
}

/** The HTTP counters and failed items of the last run in `dbPath`, from its stats_json. */
function lastRunStats(dbPath: string): Pick<FaultCrawl, 'http' | 'itemsFailed'> {
  const [row] = queryDataset<{ stats_json: string | null }>(
    dbPath,
    'SELECT stats_json FROM crawl_runs ORDER BY id DESC LIMIT 1',
  );
  const s = JSON.parse(row?.stats_json ?? '{}') as { http?: Record<string, number>; itemsFailed?: number };
  return {
    http: {
      requests: s.http?.requests ?? 0,
      retries: s.http?.retries ?? 0,
      rateLimitPauses: s.http?.rateLimitPauses ?? 0,
      rateLimitPauseMs: s.http?.rateLimitPauseMs ?? 0,
      failures: s.http?.failures ?? 0,
    },
    itemsFailed: s.itemsFailed ?? 0,
  };
}

/** Exit code 3 and exactly one `hubcrawl:` line on stderr, matching `sentence`. */
function expectExit3WithOneSentence(r: CliResult, sentence: RegExp): void {
  expect(r.code, r.stderr).toBe(3);
  const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('hubcrawl:'));
  expect(errorLines, r.stderr).toHaveLength(1);
  expect(errorLines[0]).toMatch(sentence);
}

/** Frontier items done so far (0 while the file does not exist or is being created). */
function doneItems(dbPath: string): number {
  if (!existsSync(dbPath)) return 0;
  try {
    return (
      queryDataset<{ n: number }>(dbPath, "SELECT count(*) AS n FROM frontier WHERE state = 'done'")[0]?.n ??
      0
    );
  } catch {
    return 0;
  }
}

/**
 * Mounts a tmpfs of `size` at `<parent()>/<name>` for the describe that calls this (mounted in its
 * beforeAll, unmounted in its afterAll); returns the mount point.
 */
function tmpfsForSuite(parent: () => string, name: string, size: string): () => string {
  let mnt = '';
  let mounted = false;
  beforeAll(() => {
    mnt = join(parent(), name);
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]);
    mounted = true;
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', [mnt]);
  });
  return () => mnt;
}

describe('the built CLI through a fault proxy to the real registry', () => {
  let world: FaultWorld | undefined;
  let proxy: FaultProxy;
  let images: DemoImage[];
  let work: TempDir;
  let clean: DatasetSnapshot;

  /** Writes a config file for a crawl into `dbPath`. */
  const configFor = (dbPath: string, extra: Record<string, unknown> = {}): string => {
    const path = `${dbPath}.config.json`;
    writeFileSync(
      path,
      JSON.stringify({
        db: dbPath,
        dockerConfig: null,
        logLevel: 'error',
        concurrency: 2,
        layerConcurrency: 1,
        seeds: { repos: repoSeeds(proxy.host, images) },
        http: { maxRetries: 3, timeoutMs: 10_000, requestsPerSecondPerHost: 1000 },
        ...extra,
      }),
    );
    return path;
  };

  /** Adds this file's matrix row for the last run into `dbPath` (requests: the proxy's whole log). */
  const addRow = (cell: string, dbPath: string, faultsHit: number) => {
    const s = lastRunStats(dbPath);
    report.addCrawl(cell, { ...s, http: { ...s.http, requests: proxy.log.length } }, faultsHit);
  };

  /** Runs the crawl again: it exits 0 and leaves a sound file holding the clean dataset. */
  const rerunToClean = async (config: string, dbPath: string): Promise<CliResult> => {
    const r = await runCli(config);
    expect(r.code, r.stderr).toBe(0);
    expect(integrityCheck(dbPath)).toBe('ok');
    expect(comparableDataset(dbPath)).toEqual(clean);
    return r;
  };

  /** Starts a crawl slowed by the proxy, SIGKILLs it once 5 items are done (≤ 30 s): a dataset with work pending. */
  const interruptedCrawl = async (config: string, dbPath: string) => {
    proxy.addRule({ path: /\/v2\//, times: Number.POSITIVE_INFINITY, action: { kind: 'delay', ms: 150 } });
    const { child, done } = startCrawl(config);
    for (let i = 0; i < 300 && doneItems(dbPath) < 5; i++) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGKILL');
    await done;
    proxy.clearRules();
  };

  beforeAll(async () => {
    // Shared with the e2e suites: one build per vitest run, never two tsc writing dist/ at once.
    await buildCliOnce();
    world = await startFaultWorld();
    ({ images, proxy, work } = world);
    clean = await referenceCrawl(
      join(work.dir, 'clean.sqlite'),
      { seeds: { repos: repoSeeds(proxy.host, images) }, concurrency: 2, layerConcurrency: 1 },
      report,
      'clean run (reference, in-process)',
    );
  });

  afterAll(async () => {
    report.print();
    await world?.stop();
  });

  it('survives at least 20 SIGKILLs at random points, then resumes to a sound file and the clean dataset', async () => {
    proxy.reset();
    // Slow every request down so the crawl spans many kill points (manifests, blobs, analysis, commits).
    proxy.addRule({ path: /\/v2\//, times: Number.POSITIVE_INFINITY, action: { kind: 'delay', ms: 600 } });
    const dbPath = join(work.dir, 'killed.sqlite');
    const config = configFor(dbPath);
    const seed = 20261128;
    const random = prng(seed);
    let kills = 0;
    let completedEarly = false;
    // Bounded: at most 40 starts. Start-up (loading the CLI) takes a while and varies with the machine's
    // load, so each kill lands a random 0–500 ms after that start's first request reaches the proxy:
    // during requests, analysis or commits, never only during start-up.
    for (let start = 0; start < 40 && kills < 22; start++) {
      const seen = proxy.log.length;
      const { child, done } = startCrawl(config);
      let exited: CliResult | undefined;
      void done.then((r) => {
        exited = r;
      });
      for (let i = 0; i < 300 && !exited && proxy.log.length === seen; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const delay = Math.floor(random() * 500);
      const first = await Promise.race([
        done,
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), delay)),
      ]);
      if (first === 'timeout') {
        child.kill('SIGKILL');
        const r = await done;
        if (r.signal === 'SIGKILL') kills += 1;
        else if (r.code === 0) completedEarly = true;
      } else if (first.code === 0) {
        completedEarly = true;
      } else {
        throw new Error(`crawl exited ${first.code} before its kill: ${first.stderr}`);
      }
      if (completedEarly) break;
      // Whatever the kill interrupted, the file must be sound right now.
      if (existsSync(dbPath)) expect(integrityCheck(dbPath), `after kill ${kills} (seed ${seed})`).toBe('ok');
    }
    expect(kills, `the crawl finished before 20 kills (seed ${seed})`).toBeGreaterThanOrEqual(20);
    expect(completedEarly).toBe(false);
    proxy.clearRules();
    const last = await runCli(config);
    expect(last.code, last.stderr).toBe(0);
    expect(last.stdout).toMatch(/\(resumed\)/);
    expect(integrityCheck(dbPath)).toBe('ok');
    // Every kill left the run unfinished, so all starts continued one run: no duplicate observations.
    expect(queryDataset<{ n: number }>(dbPath, 'SELECT count(*) AS n FROM crawl_runs')[0]?.n).toBe(1);
    expect(comparableDataset(dbPath)).toEqual(clean);
    addRow(`SIGKILL × ${kills} (seed ${seed}), then resume`, dbPath, kills);
  }, 240_000);

  describe('a dataset on a tiny tmpfs', () => {
    const tiny = tmpfsForSuite(() => work.dir, 'tiny', '1200k');

    it('stops with exit 3 and one sentence when the disk fills, leaves a sound file, and completes to the clean dataset with room', async () => {
      proxy.reset();
      const mnt = tiny();
      const dbPath = join(mnt, 'full.sqlite');
      const config = configFor(dbPath);
      const full = await runCli(config);
      expectExit3WithOneSentence(full, /disk holding the dataset .* is full/);
      expect(integrityCheck(dbPath)).toBe('ok');
      // 1200k holds the schema and part of the crawl: the disk fills mid-crawl, after some requests.
      const firstRequests = proxy.log.length;
      expect(firstRequests).toBeGreaterThan(0);
      execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
      const roomy = await rerunToClean(config, dbPath);
      // The full disk stopped the run resumably: the next one continues it, so nothing is observed twice.
      expect(roomy.stdout).toMatch(/^run 1 completed \(resumed\)/);
      addRow('disk full (tmpfs 1200k), exit 3; then room', dbPath, firstRequests > 0 ? 1 : 0);
    }, 120_000);
  });

  describe('a dataset file bind-mounted read-only in a writable directory', () => {
    it('stops with exit 3 and one sentence, changes nothing, and completes once the file is writable', async () => {
      proxy.reset();
      const dir = join(work.dir, 'rofile');
      mkdirSync(dir);
      const dbPath = join(dir, 'rofile.sqlite');
      const config = configFor(dbPath);
      // An interrupted crawl leaves a dataset with work pending.
      await interruptedCrawl(config, dbPath);
      const before = comparableDataset(dbPath);
      execFileSync('mount', ['--bind', dbPath, dbPath]);
      let ro: CliResult;
      try {
        execFileSync('mount', ['-o', 'remount,ro,bind', dbPath]);
        ro = await runCli(config);
      } finally {
        execFileSync('umount', [dbPath]);
      }
      expectExit3WithOneSentence(ro, /cannot be written/);
      expect(integrityCheck(dbPath)).toBe('ok');
      expect(comparableDataset(dbPath)).toEqual(before);
      await rerunToClean(config, dbPath);
      addRow('read-only dataset file, exit 3; then writable', dbPath, 1);
    }, 120_000);
  });

  describe('a dataset on a filesystem remounted read-only', () => {
    const roMount = tmpfsForSuite(() => work.dir, 'ro', '64m');

    it('stops with exit 3 and one sentence on a read-only dataset, changes nothing, and completes once writable', async () => {
      proxy.reset();
      const mnt = roMount();
      const dbPath = join(mnt, 'ro.sqlite');
      // A first, interrupted crawl leaves a dataset with work pending (killed after its first commits),
      // so the dataset has something to protect.
      const config = configFor(dbPath);
      await interruptedCrawl(config, dbPath);
      const before = comparableDataset(dbPath);
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      let ro: CliResult;
      try {
        ro = await runCli(config);
      } finally {
        execFileSync('mount', ['-o', 'remount,rw', mnt]);
      }
      expectExit3WithOneSentence(ro, /read-only|cannot be written|writable/);
      expect(integrityCheck(dbPath)).toBe('ok');
      expect(comparableDataset(dbPath)).toEqual(before);
      await rerunToClean(config, dbPath);
      addRow('read-only filesystem, exit 3; then writable', dbPath, 1);
    }, 120_000);
  });
});
