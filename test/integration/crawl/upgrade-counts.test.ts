/**
 * After an upgrade, layer items an older hubcrawl left pending (keyed with its analyzer version) are
 * analyzed by the new run before its own manifests reach their images. Each layer must still count once
 * in the run's summary: in `layersAnalyzed`, not again in `layersReused` when the images reach it. Real
 * registry behind the fault proxy, which holds the manifests back so the leftovers go first.
 */

import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { ANALYZER_VERSION } from '../../../src/analyzer/layer-stream.js';
import {
  buildCrawlScenario,
  makeWorkspace,
  runTestCrawl,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

const registry = inject('registries').none;
const REPO = 'upgrade-counts/app';
let proxy: FaultProxy;
let ws: Workspace;

beforeAll(async () => {
  const s = await buildCrawlScenario();
  await pushImage(registry, REPO, '1', await buildImage({ layers: [s.base, s.layers.dropper] }));
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace('hubcrawl-upgrade-counts-');
});

afterAll(async () => {
  await proxy?.stop();
  ws?.cleanup();
});

const crawl = (dbPath: string) =>
  runTestCrawl(dbPath, ws.iocFile, {
    seeds: { images: [`${registry.host}/${REPO}:1`] },
    registries: { [registry.host]: { endpoint: proxy.url } },
  });

/** What an older analyzer version leaves: its facts, and its layer items pending under its own keys. */
function asLeftByAnOlderVersion(dbPath: string): void {
  const db = new BetterSqlite3(dbPath);
  try {
    db.prepare(`UPDATE layers SET analyzer_version = 'older'`).run();
    db.prepare(
      `UPDATE frontier SET state = 'pending', key = replace(key, '|' || ? || '|', '|older|') WHERE kind = 'layer'`,
    ).run(ANALYZER_VERSION);
  } finally {
    db.close();
  }
}

describe('layers an older analyzer version left pending', () => {
  it('are analyzed once and counted once, not again as reused when the images reach them', async () => {
    const dbPath = ws.dbPath('upgrade');
    const first = await crawl(dbPath);
    expect(first.stats).toMatchObject({ layersAnalyzed: 2, layersReused: 0 });
    asLeftByAnOlderVersion(dbPath);

    proxy.reset();
    proxy.addRule({ method: 'GET', path: /\/manifests\//, times: 10, action: { kind: 'delay', ms: 1500 } });
    proxy.addRule({ method: 'HEAD', path: /\/manifests\//, times: 10, action: { kind: 'delay', ms: 1500 } });
    const second = await crawl(dbPath);
    expect(second.status).toBe('completed');
    expect(second.stats).toMatchObject({ layersAnalyzed: 2, layersReused: 0 });
    expect(queryDataset(dbPath, `SELECT DISTINCT analyzer_version FROM layers`)).toEqual([
      { analyzer_version: ANALYZER_VERSION },
    ]);
  });
});
