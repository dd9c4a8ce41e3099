/**
 * Scaffolding for the whole-crawl fault matrix (test/reliability/faults): the image set (the demo
 * images plus one image with a large, incompressible layer so faults can land mid-blob), an
 * in-process crawl with fast retries and recorded sleeps and HTTP events, the dataset comparison,
 * and the matrix summary (requests, retries, pauses, items failed) printed at the end of a file.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { buildDemoImages, type DemoImage } from '../../scripts/demo-images.js';
import { debianBaseEntries } from '../../scripts/lib/debian-fixtures.js';
import { type FaultProxy, startFaultProxy } from '../../scripts/lib/fault-proxy.js';
import { buildImage, buildLayer } from '../../scripts/lib/image-builder.js';
import { type PushTarget, pushImage } from '../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../scripts/lib/registry.js';
import { builtinIocSets } from '../../src/analyzer/iocs/builtin.js';
import { type Config, type ConfigInput, configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/log.js';
import type { HttpEvent } from '../../src/crawler/http.js';
import type { CrawlOutcome } from '../../src/pipeline/run.js';
import { type DatasetSnapshot, datasetSnapshot } from './dataset.js';

/** The big layer's size: large enough that a reset at 1 MiB is mid-body whatever the chunking. */
export const BIG_LAYER_BYTES = 3 * 1024 * 1024;

/** Deterministic incompressible bytes (xorshift32), so the big layer is the same in every process. */
export function noise(n: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  return out;
}

/** The demo set plus `fault/big:1`: the shared Debian base and a ~3 MiB layer that gzip cannot shrink. */
export async function buildFaultImages(): Promise<DemoImage[]> {
  const demo = await buildDemoImages();
  const base = await buildLayer(debianBaseEntries({ codename: 'bookworm' }), 'gzip');
  const big = await buildLayer(
    [{ type: 'file', path: 'opt/big/blob.bin', content: noise(BIG_LAYER_BYTES) }],
    'gzip',
  );
  const image = await buildImage({ layers: [base, big] });
  return [...demo, { repository: 'fault/big', tag: '1', image, expect: 'clean (large layer)' }];
}

/** Pushes every image of the set (idempotent: the registry keeps blobs by digest). */
export async function pushFaultImages(target: PushTarget, images: readonly DemoImage[]): Promise<void> {
  for (const d of images) await pushImage(target, d.repository, d.tag, d.image);
}

/** The repositories of the set, as seeds on `host` (`127.0.0.1:PORT/demo/app-one`, or `docker.io/…`). */
export function repoSeeds(host: string, images: readonly DemoImage[]): string[] {
  return [...new Set(images.map((d) => `${host}/${d.repository}`))];
}

/** A temp directory removed by `remove()`; `newDb()` names a fresh dataset file in it (cell-1, cell-2, …). */
export function tempDir(prefix = 'hubcrawl-faults-'): { dir: string; newDb(): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let cellNo = 0;
  return {
    dir,
    newDb: () => `${dir}/cell-${++cellNo}.sqlite`,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** What tempDir() returns. */
export type TempDir = ReturnType<typeof tempDir>;

/** The fault image set in an anonymous registry of its own, behind a fault proxy, with a temp dir. */
export interface FaultWorld {
  images: DemoImage[];
  registry: RunningRegistry;
  proxy: FaultProxy;
  work: TempDir;
  /** Stops the proxy and the registry and removes the temp dir. */
  stop(): Promise<void>;
}

/** Builds and pushes the fault image set, then starts the proxy: every push precedes the first crawl. */
export async function startFaultWorld(): Promise<FaultWorld> {
  const images = await buildFaultImages();
  const registry = await startRegistry({ auth: 'none' });
  let proxy: FaultProxy | undefined;
  try {
    await pushFaultImages(registry, images);
    proxy = await startFaultProxy(registry.url);
  } catch (err) {
    await registry.stop();
    throw err;
  }
  const world = { images, registry, proxy, work: tempDir() };
  return {
    ...world,
    stop: async () => {
      await world.proxy.stop();
      await world.registry.stop();
      world.work.remove();
    },
  };
}

/** A full config from partial settings; no credentials from the machine (dockerConfig null). */
export function faultConfig(dbPath: string, over: ConfigInput = {}): Config {
  return configSchema.parse({
    dockerConfig: null,
    logLevel: 'silent',
    concurrency: 4,
    layerConcurrency: 2,
    ...over,
    db: dbPath,
    http: { timeoutMs: 10_000, maxRetries: 5, requestsPerSecondPerHost: 1000, ...over.http },
  });
}

export interface FaultCrawl {
  outcome: CrawlOutcome;
  /** Every HTTP event of the run (responses, retries, rate-limit pauses, failures). */
  events: HttpEvent[];
  /** Every sleep the HttpClient asked for (backoffs and rate-limit pauses), in ms, none waited out. */
  sleeps: number[];
  http: {
    requests: number;
    retries: number;
    rateLimitPauses: number;
    rateLimitPauseMs: number;
    failures: number;
  };
  itemsFailed: number;
}

/**
 * Runs one crawl in-process into `dbPath`. Backoffs and pauses go through an injected sleep that
 * records the wait asked for and yields without waiting, so Retry-After values are observable in
 * the stats and events without costing wall time. `onSleep` lets a test act between retries.
 */
export async function crawlWithFaults(
  dbPath: string,
  over: ConfigInput,
  opts: { onSleep?: (ms: number, n: number) => void; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
): Promise<FaultCrawl> {
  // Imported lazily: importing undici makes it Node's global fetch dispatcher, which refuses the
  // explicit content-length scripts/lib/push.ts sends; push every image before the first crawl.
  const [{ runCrawl }, { openDatabase }] = await Promise.all([
    import('../../src/pipeline/run.js'),
    import('../../src/db/open.js'),
  ]);
  const config = faultConfig(dbPath, over);
  const events: HttpEvent[] = [];
  const sleeps: number[] = [];
  const db = openDatabase(dbPath);
  try {
    const outcome = await runCrawl(db, {
      config,
      iocSets: builtinIocSets(),
      log: silentLogger(),
      env: opts.env ?? {},
      ...(opts.signal ? { signal: opts.signal } : {}),
      httpOptions: {
        retryBaseMs: 1,
        retryMaxMs: 5,
        onEvent: (e) => events.push(e),
        sleep: async (ms) => {
          sleeps.push(ms);
          opts.onSleep?.(ms, sleeps.length);
          // A real yield, so other requests make progress as they would during a real wait.
          await new Promise((resolve) => setImmediate(resolve));
        },
      },
    });
    const h = outcome.stats.http as FaultCrawl['http'];
    return {
      outcome,
      events,
      sleeps,
      http: {
        requests: h.requests,
        retries: h.retries,
        rateLimitPauses: h.rateLimitPauses,
        rateLimitPauseMs: h.rateLimitPauseMs,
        failures: h.failures,
      },
      itemsFailed: Number(outcome.stats.itemsFailed ?? outcome.failedItems),
    };
  } finally {
    db.close();
  }
}

/**
 * A fault file's clean reference crawl into `dbPath`: it must complete; its row goes into `report`
 * (when given) as `cell`. Returns its dataset, which every faulty cell is compared to.
 */
export async function referenceCrawl(
  dbPath: string,
  over: ConfigInput,
  report?: MatrixReport,
  cell = 'clean run (reference)',
): Promise<DatasetSnapshot> {
  const run = await crawlWithFaults(dbPath, over);
  expect(run.outcome.status).toBe('completed');
  const clean = comparableDataset(dbPath);
  report?.addCrawl(cell, run, 0, 'reference');
  return clean;
}

/** A faulty cell's usual ending: the run completed, failed no item, and left the clean dataset. */
export function expectCleanEnd(
  run: Pick<FaultCrawl, 'outcome' | 'itemsFailed'>,
  dbPath: string,
  clean: DatasetSnapshot,
): void {
  expect(run.outcome.status).toBe('completed');
  expect(run.itemsFailed).toBe(0);
  expect(comparableDataset(dbPath)).toEqual(clean);
}

/**
 * The dataset as the fault matrix compares it: datasetSnapshot without the layers' `attempts`
 * counter, which by design counts how often a layer was tried (a fault that fails an item once and
 * succeeds on the retry adds one); every research column stays in.
 */
export function comparableDataset(dbPath: string): DatasetSnapshot {
  const snap = datasetSnapshot(dbPath);
  snap.layers = (snap.layers ?? []).map(({ attempts: _attempts, ...rest }) => rest);
  return snap;
}

/** Rows with exact duplicates dropped (order kept): the same observation made by two runs. */
export function distinctRows<T>(rows: readonly T[] | undefined): T[] {
  const seen = new Set<string>();
  return (rows ?? []).filter((r) => {
    const k = JSON.stringify(r);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** One row of the matrix summary. */
export interface MatrixRow {
  cell: string;
  requests: number;
  retries: number;
  pauses: number;
  pauseMs: number;
  itemsFailed: number;
  faultsHit: number;
  result: string;
}

/** Collects rows and prints them as one table (console.log, so it shows in the test output). */
export class MatrixReport {
  readonly rows: MatrixRow[] = [];

  /** `short` prefixes this file's cells in the whole-matrix table. */
  constructor(
    readonly title: string,
    readonly short = '',
  ) {}

  add(row: MatrixRow): void {
    this.rows.push(row);
  }

  /** Adds a row from a crawl's HTTP counters. */
  addCrawl(
    cell: string,
    c: Pick<FaultCrawl, 'http' | 'itemsFailed'>,
    faultsHit: number,
    result = 'equal',
  ): void {
    this.add({
      cell,
      requests: c.http.requests,
      retries: c.http.retries,
      pauses: c.http.rateLimitPauses,
      pauseMs: c.http.rateLimitPauseMs,
      itemsFailed: c.itemsFailed,
      faultsHit,
      result,
    });
  }

  format(): string {
    const head = [
      'cell',
      'requests',
      'retries',
      'pauses',
      'pause ms',
      'items failed',
      'faults hit',
      'dataset',
    ];
    const body = this.rows.map((r) => [
      r.cell,
      String(r.requests),
      String(r.retries),
      String(r.pauses),
      String(r.pauseMs),
      String(r.itemsFailed),
      String(r.faultsHit),
      r.result,
    ]);
    const total = this.rows.reduce(
      (t, r) => ({
        requests: t.requests + r.requests,
        retries: t.retries + r.retries,
        pauses: t.pauses + r.pauses,
        pauseMs: t.pauseMs + r.pauseMs,
        itemsFailed: t.itemsFailed + r.itemsFailed,
        faultsHit: t.faultsHit + r.faultsHit,
      }),
      { requests: 0, retries: 0, pauses: 0, pauseMs: 0, itemsFailed: 0, faultsHit: 0 },
    );
    body.push([
      'TOTAL',
      String(total.requests),
      String(total.retries),
      String(total.pauses),
      String(total.pauseMs),
      String(total.itemsFailed),
      String(total.faultsHit),
      '',
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
    const line = (cols: string[]) =>
      cols.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
    return [
      `\n${this.title}`,
      line(head),
      widths.map((w) => '-'.repeat(w)).join('  '),
      ...body.map(line),
    ].join('\n');
  }

  /**
   * Prints this file's table, then the whole matrix so far: rows of every fault-matrix file of this
   * vitest run (test files run in forks of one vitest process, whose pid, our ppid, names the run).
   * The file that finishes last prints the complete matrix.
   */
  print(): void {
    console.log(this.format());
    const shared = join(tmpdir(), `hubcrawl-fault-matrix-${process.ppid}.jsonl`);
    try {
      for (const r of this.rows)
        appendFileSync(
          shared,
          `${JSON.stringify({ ...r, cell: this.short ? `${this.short}: ${r.cell}` : r.cell })}\n`,
        );
      const all = new MatrixReport('Fault matrix — WHOLE MATRIX so far in this test run (all fault files)');
      for (const line of readFileSync(shared, 'utf8').split('\n')) {
        if (line.trim()) all.add(JSON.parse(line) as MatrixRow);
      }
      console.log(all.format());
    } catch (err) {
      console.log(`(whole-matrix summary unavailable: ${(err as Error).message})`);
    }
  }
}
