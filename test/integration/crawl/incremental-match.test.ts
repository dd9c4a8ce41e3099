/**
 * Images are matched as the items that complete them finish, in the same transaction: a crawl SIGKILLed
 * mid-run has the findings of every image whose layers were all analyzed, and `report` lists them, before any
 * resume. And "N layers analyzed (M already known)": M counts the layers of the run's images that the dataset
 * had analyzed already, each once per run, across a kill and its resume too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import { reportRows } from '../../../src/cli/commands/report.js';
import { datasetStats } from '../../../src/cli/commands/stats.js';
import {
  buildCrawlScenario,
  type CrawlScenario,
  makeWorkspace,
  pushAll,
  runTestCrawl,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { datasetSnapshot, queryDataset } from '../../helpers/dataset.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RUNNER = fileURLToPath(new URL('./crawl-child.ts', import.meta.url));

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let s: CrawlScenario;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  registry = await startRegistry();
  s = await buildCrawlScenario();
  await pushAll(registry, s.images);
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

const repos = (names: readonly string[]) => ({ repos: names.map((r) => `${registry.host}/${r}`) });
const allRepos = () => repos(s.images.map((i) => i.repository));
const throughProxy = () => ({ registries: { [registry.host]: { endpoint: proxy.url } } });
const distinct = (images: ReadonlyArray<{ layers: ReadonlyArray<{ digest: string }> }>) => [
  ...new Set(images.flatMap((i) => i.layers.map((l) => l.digest))),
];
const everyImage = () => [s.clean, s.app, s.removed, s.opaque, s.sig, s.multiAmd64, s.multiArm64];

/** Stalls every GET of the dropper layer's blob, so the images holding it never get all their layers. */
function stallDropper(): void {
  proxy.clearRules();
  proxy.addRule({
    method: 'GET',
    path: new RegExp(`/blobs/${s.layers.dropper.digest}$`),
    times: Number.POSITIVE_INFINITY,
    action: { kind: 'stall-body', afterBytes: 1, stallMs: 120_000 },
  });
}

const analyzed = (dbPath: string, layers: readonly string[]) =>
  queryDataset<{ n: number }>(
    dbPath,
    `SELECT count(*) AS n FROM layers WHERE status = 'analyzed' AND digest IN (SELECT value FROM json_each(?))`,
    JSON.stringify(layers),
  )[0]?.n ?? 0;

/** As `analyzed`, 0 while the child has not created the dataset yet (or its schema). */
function analyzedSoFar(dbPath: string, layers: readonly string[]): number {
  try {
    return analyzed(dbPath, layers);
  } catch {
    return 0;
  }
}

/** Crawls in a child process and SIGKILLs it once `layers` are analyzed (their items then are done). */
async function crawlUntilAnalyzed(
  dbPath: string,
  settings: Record<string, unknown>,
  layers: readonly string[],
): Promise<void> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', RUNNER, dbPath, ws.iocFile, JSON.stringify(settings)],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  child.stdout?.resume();
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_c, sig) => resolve(sig)),
  );
  for (let i = 0; ; i++) {
    if (child.exitCode !== null)
      throw new Error(`the crawl exited (${child.exitCode}) before it was killed: ${err}`);
    if (i > 3000) throw new Error(`layers not analyzed within 60 s: ${err}`);
    if (analyzedSoFar(dbPath, layers) === layers.length) break;
    await sleep(20);
  }
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  children.delete(child);
}

describe('a crawl killed with SIGKILL', () => {
  it('has the findings of the images whose layers were all analyzed, and report lists them, before any resume', async () => {
    const dbPath = ws.dbPath('killed');
    const settings = { seeds: allRepos(), ...throughProxy() };
    stallDropper();
    // Every layer of the sig image and of the amd64 multi image: the base, the signature layer, the sid base.
    const done = [...new Set([...s.sig.layers, ...s.multiAmd64.layers].map((l) => l.digest))];
    await crawlUntilAnalyzed(dbPath, settings, done);
    expect(queryDataset(dbPath, 'SELECT id, status FROM crawl_runs')).toEqual([{ id: 1, status: 'running' }]);

    const findingsOf = (image: string) =>
      queryDataset<{ rule_id: string }>(
        dbPath,
        'SELECT DISTINCT rule_id FROM findings WHERE image_digest = ? AND run_id = 1',
        image,
      ).map((r) => r.rule_id);
    // The signature in the sig image, the affected liblzma5 of the sid base: recorded with their last layer.
    expect(findingsOf(s.sig.digest).length).toBeGreaterThan(0);
    expect(findingsOf(s.multiAmd64.digest).length).toBeGreaterThan(0);
    // The dropper's images wait for their stalled layer.
    expect(findingsOf(s.app.digest)).toEqual([]);
    const report = reportRows(dbPath);
    const reported = new Set(report.rows.map((r) => r.manifest_digest));
    expect(reported.has(s.sig.digest)).toBe(true);
    expect(reported.has(s.multiAmd64.digest)).toBe(true);
    expect(reported.has(s.app.digest)).toBe(false);
    expect(report.latestRunStatus).toBe('running');
    const holds = datasetStats(dbPath).holds as { affectedImages: number };
    expect(holds.affectedImages).toBeGreaterThanOrEqual(2);
    // What was matched is counted in the run's recorded stats.
    const [row] = queryDataset<{ stats_json: string }>(dbPath, 'SELECT stats_json FROM crawl_runs');
    const recorded = JSON.parse(row?.stats_json ?? '{}') as { imagesMatched?: number; findings?: number };
    expect(recorded.imagesMatched).toBeGreaterThanOrEqual(2);
    expect(recorded.findings).toBe(
      queryDataset<{ n: number }>(dbPath, 'SELECT count(*) AS n FROM findings WHERE run_id = 1')[0]?.n,
    );

    // The resumed run ends with the findings an uninterrupted crawl records.
    proxy.clearRules();
    const resumed = await runTestCrawl(dbPath, ws.iocFile, settings);
    expect(resumed).toMatchObject({ runId: 1, resumed: true, status: 'completed' });
    const cleanDb = ws.dbPath('uninterrupted');
    expect((await runTestCrawl(cleanDb, ws.iocFile, settings)).status).toBe('completed');
    const tables = ['findings', 'images'] as const;
    expect(datasetSnapshot(dbPath, [...tables])).toEqual(datasetSnapshot(cleanDb, [...tables]));
  });
});

describe('layers already known', () => {
  it('counts the known layers that a second crawl reaches with new images, each once, and all of them on a re-crawl', async () => {
    const dbPath = ws.dbPath('known');
    const first = await runTestCrawl(dbPath, ws.iocFile, { seeds: repos(['acme/clean', 'acme/multi']) });
    const firstLayers = distinct([s.clean, s.multiAmd64, s.multiArm64]);
    expect(first.stats).toMatchObject({ layersAnalyzed: firstLayers.length, layersReused: 0 });

    // New images over the known base layer; the known images again. The base is shared by five images.
    const second = await runTestCrawl(dbPath, ws.iocFile, { seeds: allRepos() });
    const all = distinct(everyImage());
    expect(second.stats).toMatchObject({
      layersAnalyzed: all.length - firstLayers.length,
      layersReused: firstLayers.length,
    });

    const third = await runTestCrawl(dbPath, ws.iocFile, { seeds: allRepos() });
    expect(third.stats).toMatchObject({ layersAnalyzed: 0, layersReused: all.length });
  });

  it('counts each known layer once over a run killed and resumed', async () => {
    const dbPath = ws.dbPath('known-killed');
    const first = await runTestCrawl(dbPath, ws.iocFile, { seeds: repos(['acme/clean', 'acme/multi']) });
    expect(first.status).toBe('completed');
    const firstLayers = distinct([s.clean, s.multiAmd64, s.multiArm64]);
    const settings = { seeds: allRepos(), ...throughProxy() };
    stallDropper();
    // Killed once the sig image's layer is analyzed: by then its image, on the known base, was recorded.
    await crawlUntilAnalyzed(dbPath, settings, [s.layers.sigLayer.digest]);
    const [row] = queryDataset<{ stats_json: string }>(
      dbPath,
      'SELECT stats_json FROM crawl_runs WHERE id = 2',
    );
    expect((JSON.parse(row?.stats_json ?? '{}') as { layersReused?: number }).layersReused).toBeGreaterThan(
      0,
    );
    proxy.clearRules();
    const resumed = await runTestCrawl(dbPath, ws.iocFile, settings);
    expect(resumed).toMatchObject({ runId: 2, resumed: true, status: 'completed' });
    const wholeRun = (resumed.stats as { wholeRun: Record<string, number> }).wholeRun;
    expect(wholeRun.layersReused).toBe(firstLayers.length);
    expect(wholeRun.layersAnalyzed).toBe(distinct(everyImage()).length - firstLayers.length);
  });
});
