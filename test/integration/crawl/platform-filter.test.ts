/**
 * `--platform` on a multi-platform index, on the real registry: only the selected platforms' images are
 * fetched and recorded, and an index none of whose platforms is selected is said (a warning, a count in
 * the run's stats), not passed over in silence, where the tag would look crawled and clean.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pushImage } from '../../../scripts/lib/push.js';
import {
  buildCrawlScenario,
  type CrawlScenario,
  makeWorkspace,
  runTestCrawl,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

const registry = inject('registries').none;
const REPO = 'platform-filter/multi';
let s: CrawlScenario;
let ws: Workspace;

beforeAll(async () => {
  s = await buildCrawlScenario();
  // An OCI index of linux/amd64 and linux/arm64, with a BuildKit attestation manifest.
  await pushImage(registry, REPO, 'sid', s.multi);
  ws = makeWorkspace('hubcrawl-platform-filter-');
});

afterAll(() => ws?.cleanup());

/** A crawl of the index with `platforms`, and its warnings. */
async function crawl(name: string, platforms: string[]) {
  const { createLogger } = await import('../../../src/core/log.js');
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const dbPath = ws.dbPath(name);
  const out = await runTestCrawl(
    dbPath,
    ws.iocFile,
    { seeds: { images: [`${registry.host}/${REPO}:sid`] }, filters: { platforms } },
    { log: createLogger({ level: 'warn', destination }) },
  );
  const warnings = lines.map((l) => JSON.parse(l) as { msg: string; index?: string; lists?: string[] });
  const images = queryDataset<{ platform: string }>(dbPath, 'SELECT platform FROM images ORDER BY platform');
  return { out, warnings, images: images.map((i) => i.platform) };
}

describe('--platform on a multi-platform index', () => {
  it('records only the platforms it selects', async () => {
    const r = await crawl('arm64', ['linux/arm64']);
    expect(r.out.status).toBe('completed');
    expect(r.images).toEqual(['linux/arm64/v8']);
    expect(r.out.stats).toMatchObject({ indexesWithoutSelectedPlatform: 0 });
    expect(r.warnings).toEqual([]);
  });

  it('says so when it selects none of them: a warning naming what the index lists, and a count', async () => {
    const r = await crawl('none', ['linux/386']);
    expect(r.out.status).toBe('completed');
    expect(r.images).toEqual([]);
    expect(r.out.stats).toMatchObject({ indexesWithoutSelectedPlatform: 1 });
    expect(r.warnings).toEqual([
      expect.objectContaining({
        msg: 'the index lists no platform --platform selects: nothing of it is analyzed',
        index: `manifest ${registry.host}/${REPO}@${s.multi.digest}`,
        lists: ['linux/amd64', 'linux/arm64/v8'],
      }),
    ]);
  });
});
