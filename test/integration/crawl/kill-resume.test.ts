/**
 * kill -9: a crawl in a child process is SIGKILLed while a manifest body is in flight, then three times
 * while a layer blob is (the fault proxy stalls bodies after their first byte, which only widens the
 * window — nothing is timed), at growing depths; the next crawl on the same database resumes the same run
 * and finishes. The
 * dataset must equal a clean uninterrupted crawl's, table by table, and the file must pass
 * `PRAGMA integrity_check`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import {
  buildCrawlScenario,
  type CrawlScenario,
  makeWorkspace,
  pushAll,
  runTestCrawl,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { datasetSnapshot, integrityCheck, queryDataset } from '../../helpers/dataset.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RUNNER = fileURLToPath(new URL('./crawl-child.ts', import.meta.url));
const KILLS = 3;

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let s: CrawlScenario;
let cleanDb: string;
/** What the uninterrupted crawl counted. */
let cleanStats: Record<string, unknown>;
let layerDigests: string[];
/** Children still alive when a test fails early are killed in afterAll. */
const children = new Set<ChildProcess>();

const seeds = () => ({ repos: s.images.map((i) => `${registry.host}/${i.repository}`) });

beforeAll(async () => {
  registry = await startRegistry();
  s = await buildCrawlScenario();
  await pushAll(registry, s.images);
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace();
  layerDigests = [
    ...new Set(
      [s.clean, s.app, s.removed, s.opaque, s.sig, s.multiAmd64, s.multiArm64].flatMap((i) =>
        i.layers.map((l) => l.digest),
      ),
    ),
  ];
  cleanDb = ws.dbPath('clean');
  const clean = await runTestCrawl(cleanDb, ws.iocFile, { seeds: seeds() });
  expect(clean.status).toBe('completed');
  cleanStats = clean.stats as Record<string, unknown>;
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

function startChild(
  dbPath: string,
  settings: Record<string, unknown>,
): { child: ChildProcess; stderr: () => string } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', RUNNER, dbPath, ws.iocFile, JSON.stringify(settings)],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  child.stdout?.resume();
  return { child, stderr: () => err };
}

const isLayerGet = (e: FaultProxy['log'][number]) =>
  e.method === 'GET' && layerDigests.some((d) => e.path.endsWith(`/blobs/${d}`));

const isManifestGet = (e: FaultProxy['log'][number]) => e.method === 'GET' && e.path.includes('/manifests/');

/** Waits (bounded) until `n` requests matching `which`, made since log index `from`, have their upstream headers. */
async function waitForGets(
  which: (e: FaultProxy['log'][number]) => boolean,
  from: number,
  n: number,
  child: ChildProcess,
  stderr: () => string,
): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    const started = proxy.log.slice(from).filter((e) => which(e) && e.status === 200).length;
    if (started >= n) return;
    if (child.exitCode !== null) {
      throw new Error(`the crawl exited (${child.exitCode}) before it was killed: ${stderr()}`);
    }
    await sleep(20);
  }
  throw new Error(`no ${n} matching GETs within 60 s: ${stderr()}`);
}

/** Starts a crawl process, SIGKILLs it once `n` GETs matching `which` are in flight or done, checks the file. */
async function crawlAndKill(
  dbPath: string,
  settings: Record<string, unknown>,
  which: (e: FaultProxy['log'][number]) => boolean,
  n: number,
): Promise<void> {
  const from = proxy.log.length;
  const { child, stderr } = startChild(dbPath, settings);
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_c, sig) => resolve(sig)),
  );
  await waitForGets(which, from, n, child, stderr);
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  expect(integrityCheck(dbPath)).toBe('ok');
  expect(queryDataset(dbPath, 'SELECT id, status FROM crawl_runs')).toEqual([{ id: 1, status: 'running' }]);
}

describe('kill -9 right after a paid manifest GET', () => {
  it("keeps that GET in the run's recorded counts, though its item never completed", async () => {
    // One item at a time: while the image's config blob stalls, no other item completes and records the
    // counts, so only the record made right after storing the manifest can hold its GET.
    const dbPath = ws.dbPath('killed-after-manifest');
    const target = s.images.find((i) => i.image === s.clean)!;
    const settings = {
      seeds: { images: [`${registry.host}/${target.repository}:${target.tag ?? 'latest'}`] },
      registries: { [registry.host]: { endpoint: proxy.url } },
      concurrency: 1,
    };
    const config = s.clean.config.digest;
    const isConfigGet = (e: FaultProxy['log'][number]) =>
      e.method === 'GET' && e.path.endsWith(`/blobs/${config}`);
    proxy.clearRules();
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`/blobs/${config}$`),
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'stall-body', afterBytes: 1, stallMs: 30_000 },
    });
    await crawlAndKill(dbPath, settings, isConfigGet, 1);
    proxy.clearRules();
    const stored = queryDataset<{ n: number }>(
      dbPath,
      'SELECT count(*) AS n FROM manifests WHERE run_id = 1',
    )[0]!.n;
    expect(stored).toBeGreaterThan(0);
    const [row] = queryDataset<{ stats_json: string | null }>(dbPath, 'SELECT stats_json FROM crawl_runs');
    const recorded = JSON.parse(row?.stats_json ?? '{}') as { manifestsFetched?: number };
    expect(recorded.manifestsFetched).toBe(stored);
  });
});

describe('kill -9 in the middle of a crawl', () => {
  it('resumes after four SIGKILLs (mid-manifest, then mid-layer) to the same dataset as an uninterrupted crawl, and the file is sound', async () => {
    const dbPath = ws.dbPath('killed');
    const settings = { seeds: seeds(), registries: { [registry.host]: { endpoint: proxy.url } } };
    // Every layer body stalls after its first byte: a kill then always lands mid-layer.
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`/blobs/(${layerDigests.join('|')})$`),
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'stall-body', afterBytes: 1, stallMs: 700 },
    });
    // First a kill while a manifest body is stalled (one rule use), before any layer.
    proxy.addRule({
      method: 'GET',
      path: /\/manifests\/sha256:/,
      action: { kind: 'stall-body', afterBytes: 1, stallMs: 700 },
    });
    await crawlAndKill(dbPath, settings, isManifestGet, 1);
    const analyzedAfterKill: number[] = [];
    for (let k = 1; k <= KILLS; k++) {
      // Kill 1 in the first layer; later kills after 2 and 4 more layer GETs (so some layers finished
      // in that process: with two layers at a time, the third GET starts only when one is done).
      await crawlAndKill(dbPath, settings, isLayerGet, 2 * k - 1);
      analyzedAfterKill.push(
        queryDataset<{ n: number }>(dbPath, `SELECT count(*) AS n FROM layers WHERE status = 'analyzed'`)[0]!
          .n,
      );
    }
    // The kills landed at different depths, and work was kept across them.
    expect(analyzedAfterKill[KILLS - 1]).toBeGreaterThan(0);
    expect(analyzedAfterKill[KILLS - 1]).toBeLessThan(layerDigests.length);

    proxy.clearRules();
    const resumed = await runTestCrawl(dbPath, ws.iocFile, settings);
    expect(resumed).toMatchObject({ runId: 1, resumed: true, status: 'completed', failedItems: 0 });
    expect(integrityCheck(dbPath)).toBe('ok');
    expect(queryDataset(dbPath, 'SELECT id, status FROM crawl_runs')).toEqual([
      { id: 1, status: 'completed' },
    ]);
    expect(datasetSnapshot(dbPath)).toEqual(datasetSnapshot(cleanDb));
    // The whole run's counts (the ones to cite) keep what the killed processes did: each records its counts
    // with each item's outcome and each paid manifest GET, so a kill loses only what was in flight, which
    // is done again, and counts nothing twice.
    const counted = (st: Record<string, unknown>) => ({
      tags: st.tags,
      images: st.images,
      layersAnalyzed: st.layersAnalyzed,
      // The first kill cuts a manifest body: that GET never completed, so the resumed run's is the one.
      manifestsFetched: st.manifestsFetched,
    });
    const wholeRun = (resumed.stats as { wholeRun?: Record<string, unknown> }).wholeRun;
    expect(wholeRun && counted(wholeRun)).toEqual(counted(cleanStats));
  });
});
