/**
 * A Docker Hub listing cut short (a `next` to another origin, a `next` that loops) must not pass for a
 * complete one: the item that listed is recorded failed with LISTING_INCOMPLETE and the run ends
 * completed-with-failures (exit 1), while what was listed is still crawled. The fake Hub web API serves the
 * listings; the real registry, as the docker.io mirror, serves the image.
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { type BuiltImage, buildImage } from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import { makeWorkspace, runTestCrawl, type Workspace } from '../../test/helpers/crawl-fixtures.js';
import { queryDataset } from '../../test/helpers/dataset.js';
import { type FakeHub, fakeHubTagFor, startFakeHub } from '../../test/helpers/fake-hub.js';
import { incompleteListing, LISTING_INCOMPLETE } from './listing-cuts.js';

const registry = inject('registries').none;
const NS = 'cutshort';
/** One more tag than the Hub client's page size (100): the tag listing has a second page. */
const MANY_TAGS = 101;
let hub: FakeHub;
let ws: Workspace;
let image: BuiltImage;

beforeAll(async () => {
  image = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'srv/cut', content: 'cut\n' }] }] });
  await pushImage(registry, `${NS}/app`, '1', image);
  const tags = Array.from({ length: MANY_TAGS }, (_, i) => fakeHubTagFor(`v${i}`, image));
  hub = await startFakeHub({
    anonymousOffsetCap: null,
    repos: [{ namespace: NS, name: 'app', tags }],
  });
  ws = makeWorkspace('hubcrawl-cuts-');
});

afterEach(() => {
  hub.injectForeignNext = false;
  hub.injectNextLoop = false;
});

afterAll(async () => {
  await hub?.stop();
  ws?.cleanup();
});

async function crawl(name: string, seeds: Record<string, string[]>) {
  const dbPath = ws.dbPath(name);
  const outcome = await runTestCrawl(dbPath, ws.iocFile, {
    seeds,
    hubApiUrl: hub.url,
    registryMirror: registry.url,
    // Two references are enough to see that what was listed is crawled.
    filters: { maxTagsPerRepository: 2 },
  });
  const failures = queryDataset<{ kind: string; error_code: string; message: string }>(
    dbPath,
    'SELECT kind, error_code, message FROM failures ORDER BY id',
  );
  const failedItems = queryDataset<{ kind: string }>(
    dbPath,
    `SELECT kind FROM frontier WHERE state = 'failed' ORDER BY id`,
  ).map((r) => r.kind);
  const runStatus = queryDataset<{ status: string }>(dbPath, 'SELECT status FROM crawl_runs')[0]?.status;
  const imageCrawled =
    queryDataset(dbPath, 'SELECT 1 FROM images WHERE digest = ?', image.digest).length === 1;
  return { outcome, failures, failedItems, runStatus, imageCrawled };
}

describe('a Docker Hub listing cut short', () => {
  it('fails the repository whose tag listing links its next page to another origin, and crawls the tags listed', async () => {
    hub.injectForeignNext = true;
    const r = await crawl('foreign', { repos: [`${NS}/app`] });
    expect(r.outcome.status).toBe('completed-with-failures');
    expect(r.outcome.failedItems).toBe(1);
    expect(r.runStatus).toBe('completed-with-failures');
    expect(r.failures.map((f) => [f.kind, f.error_code])).toEqual([['repository', LISTING_INCOMPLETE]]);
    expect(r.failures[0]!.message).toContain('another origin');
    expect(r.failedItems).toEqual(['repository']);
    expect(r.imageCrawled).toBe(true);
  });

  it('fails the namespace and the repository whose listings loop back to their first page, and crawls what they listed', async () => {
    hub.injectNextLoop = true;
    const r = await crawl('loop', { namespaces: [NS] });
    expect(r.outcome.status).toBe('completed-with-failures');
    expect(r.outcome.failedItems).toBe(2);
    expect(r.failures.map((f) => [f.kind, f.error_code])).toEqual([
      ['namespace', LISTING_INCOMPLETE],
      ['repository', LISTING_INCOMPLETE],
    ]);
    expect(r.failures[0]!.message).toContain('paging loop');
    expect(r.imageCrawled).toBe(true);
  });

  it('completes when the same listings end on their last page', async () => {
    const r = await crawl('whole', { namespaces: [NS] });
    expect(r.outcome.status).toBe('completed');
    expect(r.failures).toEqual([]);
    expect(r.imageCrawled).toBe(true);
  });
});

describe('incompleteListing', () => {
  it('names the first cut and counts the others', () => {
    const e = incompleteListing([
      { type: 'page-cap', url: 'https://hub.example/v2/x?page=1000', maxPages: 1000 },
      { type: 'bad-next', url: 'https://hub.example/v2/y', next: '::' },
    ]);
    expect(e.code).toBe(LISTING_INCOMPLETE);
    expect(e.message).toContain('https://hub.example/v2/x?page=1000');
    expect(e.message).toContain('cap of 1000 pages');
    expect(e.message).toContain('1 more listing cut short');
  });

  it('names a registry listing by its URL, not as a Docker Hub listing', () => {
    const e = incompleteListing([
      {
        type: 'next-loop',
        listing: 'http://r.test/v2/_catalog',
        url: 'http://r.test/v2/_catalog?last=a&n=100',
        next: 'http://r.test/v2/_catalog',
      },
    ]);
    expect(e.code).toBe(LISTING_INCOMPLETE);
    expect(e.message).toMatch(
      /^registry listing http:\/\/r\.test\/v2\/_catalog stopped at http:\/\/r\.test\/v2\/_catalog\?last=a&n=100: /,
    );
    expect(e.message).toContain('paging loop');
    expect(e.message).not.toContain('Docker Hub');
  });
});
