/**
 * `debianOnly`: the base layer decides. Images on an Alpine base get their base layer analyzed and
 * nothing else downloaded; images on a Debian base get every layer analyzed. The Alpine images carry
 * the test dropper in an upper layer, so a crawl without the option shows what would have been found.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import {
  buildAlpineImage,
  buildCrawlScenario,
  type CrawlScenario,
  DROPPER_PATH,
  makeWorkspace,
  runTestCrawl,
  TEST_RULE_ID,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let s: CrawlScenario;
let alpine: BuiltImage;
/** A second Alpine image on the same base, with its own upper layer. */
let alpine2: BuiltImage;

const settings = (debianOnly: boolean) => ({
  debianOnly,
  seeds: { repos: ['acme/alpine', 'acme/alpine2', 'acme/app'].map((r) => `${registry.host}/${r}`) },
  registries: { [registry.host]: { endpoint: proxy.url } },
});

let onlyDb: string;
let onlyLog: FaultProxy['log'];
let onlyStats: Record<string, unknown>;

const layerGets = (digest: string, log: FaultProxy['log'] = proxy.log) =>
  log.filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${digest}`));

const dropperFindings = (dbPath: string) =>
  queryDataset<{ image_digest: string }>(
    dbPath,
    'SELECT image_digest FROM findings WHERE rule_id = ? AND path = ? ORDER BY image_digest',
    TEST_RULE_ID,
    DROPPER_PATH,
  ).map((r) => r.image_digest);

beforeAll(async () => {
  registry = await startRegistry();
  s = await buildCrawlScenario();
  alpine = await buildAlpineImage();
  alpine2 = await buildImage({
    layers: [alpine.layers[0]!, { entries: [{ type: 'file', path: 'opt/other', content: 'x\n' }] }],
  });
  await pushImage(registry, 'acme/alpine', '3.19', alpine);
  await pushImage(registry, 'acme/alpine2', '1', alpine2);
  await pushImage(registry, 'acme/app', '1.0', s.app);
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace();
  onlyDb = ws.dbPath('debian-only');
  const out = await runTestCrawl(onlyDb, ws.iocFile, settings(true));
  expect(out.status).toBe('completed');
  onlyLog = [...proxy.log];
  onlyStats = out.stats as Record<string, unknown>;
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

describe('debianOnly', () => {
  it('analyzes a non-Debian base layer and never downloads the layers above it', async () => {
    const dbPath = onlyDb;
    expect(layerGets(alpine.layers[0]!.digest, onlyLog)).toHaveLength(1);
    for (const upper of [...alpine.layers.slice(1), ...alpine2.layers.slice(1)]) {
      expect(layerGets(upper.digest, onlyLog), upper.digest).toEqual([]);
    }
    const layers = queryDataset<{ digest: string; status: string }>(
      dbPath,
      'SELECT digest, status FROM layers ORDER BY digest',
    );
    const status = new Map(layers.map((l) => [l.digest, l.status]));
    expect(status.get(alpine.layers[0]!.digest)).toBe('analyzed');
    for (const upper of [...alpine.layers.slice(1), ...alpine2.layers.slice(1)]) {
      expect(status.get(upper.digest)).toBe('pending');
    }
  });

  it('counts the upper layers it skipped, in the run that analyzed the base and in a later one alike', async () => {
    const skipped = alpine.layers.length - 1 + (alpine2.layers.length - 1);
    expect(onlyStats).toMatchObject({ layersSkippedNotDebian: skipped });
    // A later run meets the base analyzed: each image counts its own skipped layers as it is recorded.
    const again = await runTestCrawl(onlyDb, ws.iocFile, settings(true));
    expect(again.stats).toMatchObject({ layersSkippedNotDebian: skipped, layersAnalyzed: 0 });
  });

  it('counts them in a resumed run too: the images were recorded by the invocation that stopped', async () => {
    const db = ws.dbPath('debian-only-resumed');
    const base = alpine.layers[0]!.digest;
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    proxy.reset();
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`/blobs/${base}$`),
      action: { kind: 'hold', until: () => held },
    });
    // The first invocation records the images, then stops while the base (the gate) downloads.
    const controller = new AbortController();
    const first = runTestCrawl(db, ws.iocFile, settings(true), { signal: controller.signal });
    for (let i = 0; i < 600 && !proxy.log.some((e) => e.path.endsWith(`/blobs/${base}`)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    controller.abort();
    expect((await first).status).toBe('aborted');
    release();
    const resumed = await runTestCrawl(db, ws.iocFile, settings(true));
    expect(resumed).toMatchObject({ resumed: true, status: 'completed' });
    const skipped = alpine.layers.length - 1 + (alpine2.layers.length - 1);
    expect((resumed.stats as { wholeRun?: object }).wholeRun).toMatchObject({
      layersSkippedNotDebian: skipped,
    });
  });

  it('counts each skipped layer once when a later crawl must analyze the known base again', async () => {
    // A set with a new signature: the stored facts cannot answer it, so the alpine base is a gate again
    // while the images on it are already in the dataset.
    const extra = join(ws.dir, 'extra-signature.json');
    writeFileSync(
      extra,
      JSON.stringify({
        id: 'gate-again',
        version: '1',
        title: 'a set whose signature no stored layer was scanned with',
        references: [],
        rules: [{ id: 'marker', kind: 'byte-signature', hex: 'de ad be ef 13 37', paths: ['/**'] }],
      }),
    );
    const db = ws.dbPath('debian-only-gate-again');
    await runTestCrawl(db, ws.iocFile, settings(true));
    const again = await runTestCrawl(db, ws.iocFile, settings(true), { moreIocFiles: [extra] });
    expect(again.status).toBe('completed');
    const skipped = alpine.layers.length - 1 + (alpine2.layers.length - 1);
    expect(again.stats).toMatchObject({ layersSkippedNotDebian: skipped });
  });

  it('records the excluded images as not Debian-derived, from their base layer', () => {
    const images = queryDataset(
      onlyDb,
      'SELECT digest, is_debian_derived, os_id FROM images ORDER BY digest',
    );
    expect(images).toEqual(
      [
        { digest: alpine.digest, is_debian_derived: 0, os_id: 'alpine' },
        { digest: alpine2.digest, is_debian_derived: 0, os_id: 'alpine' },
        { digest: s.app.digest, is_debian_derived: 1, os_id: 'debian' },
      ].sort((a, b) => a.digest.localeCompare(b.digest)),
    );
  });

  it('analyzes every layer of an image on a Debian base', async () => {
    const dbPath = onlyDb;
    for (const layer of s.app.layers) expect(layerGets(layer.digest, onlyLog), layer.digest).toHaveLength(1);
    const analyzed = queryDataset<{ layer_digest: string; status: string }>(
      dbPath,
      `SELECT il.layer_digest, l.status FROM image_layers il JOIN layers l ON l.digest = il.layer_digest
        WHERE il.image_digest = ? ORDER BY il.position`,
      s.app.digest,
    );
    expect(analyzed).toEqual(s.app.layers.map((l) => ({ layer_digest: l.digest, status: 'analyzed' })));
    expect(dropperFindings(dbPath)).toEqual([s.app.digest]);
  });

  it('without debianOnly, the same crawl analyzes the Alpine upper layers and finds the dropper there', async () => {
    proxy.log.length = 0;
    const dbPath = ws.dbPath('all');
    await runTestCrawl(dbPath, ws.iocFile, settings(false));
    for (const upper of [...alpine.layers.slice(1), ...alpine2.layers.slice(1)]) {
      expect(layerGets(upper.digest), upper.digest).toHaveLength(1);
    }
    expect(dropperFindings(dbPath)).toEqual([alpine.digest, s.app.digest].sort());
  });
});
