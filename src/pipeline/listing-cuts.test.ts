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
import { incompleteListing, LISTING_INCOMPLETE, ListingCuts } from './listing-cuts.js';

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

  it('says of a next page that answered 404 that the listing shrank while it was paged', () => {
    const e = incompleteListing([
      {
        type: 'next-gone',
        url: 'https://hub.example/v2/namespaces/a/repositories/b/tags?page=1&page_size=100',
        next: 'https://hub.example/v2/namespaces/a/repositories/b/tags?page=2&page_size=100',
      },
    ]);
    expect(e.code).toBe(LISTING_INCOMPLETE);
    expect(e.message).toMatch(
      /^Docker Hub listing .*page=1&page_size=100: its next page .*page=2.* answered 404/,
    );
    expect(e.message).toContain('shrank while it was paged');
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

  it('says of a search at the Hub’s result cap that more repositories match and how to narrow it', () => {
    const e = incompleteListing([
      { type: 'result-cap', url: 'https://hub.example/api/search/v4?query=debian', total: 10_000 },
    ]);
    expect(e.code).toBe(LISTING_INCOMPLETE);
    expect(e.message).toMatch(
      /^Docker Hub search stopped at https:\/\/hub\.example\/api\/search\/v4\?query=debian: /,
    );
    expect(e.message).toContain('total reached 10000');
    expect(e.message).toContain('narrower queries');
  });

  it('says of a namespace listing at the offset cap how far it got and how to sign in, and nothing of tags', () => {
    const e = incompleteListing([
      {
        type: 'offset-cap',
        what: 'repositories',
        url: 'https://hub.example/v2/namespaces/acme/repositories?page=2&page_size=100',
        offset: 100,
        total: 250,
        authenticated: false,
      },
    ]);
    expect(e.code).toBe(LISTING_INCOMPLETE);
    expect(e.message).toMatch(
      /^Docker Hub repository listing stopped at https:\/\/hub\.example\/v2\/namespaces\/acme\/repositories\?page=2&page_size=100: /,
    );
    expect(e.message).toContain('refuses anonymous paging past item 100 of 250');
    expect(e.message).toContain('HUBCRAWL_DOCKERHUB_USERNAME and HUBCRAWL_DOCKERHUB_TOKEN');
    expect(e.message).toContain('to list the other repositories');
    expect(e.message).not.toMatch(/tag/);
  });

  it('says of a tag listing at the offset cap that the undated rest was left out for the date filter', () => {
    const e = incompleteListing([
      {
        type: 'offset-cap',
        what: 'tags',
        url: 'https://hub.example/v2/namespaces/rayproject/repositories/ray/tags?page=11&page_size=100',
        offset: 1000,
        total: 282_645,
        authenticated: false,
      },
    ]);
    expect(e.message).toMatch(/^Docker Hub tag listing stopped at /);
    expect(e.message).toContain('past item 1000 of 282645');
    expect(e.message).toContain(
      '--pushed-after/--pushed-before cannot be applied to them and they were left out',
    );
    expect(e.message).toContain('HUBCRAWL_DOCKERHUB_USERNAME and HUBCRAWL_DOCKERHUB_TOKEN');
  });

  it('asks a signed-in crawl stopped at the offset cap to check its token rather than to sign in', () => {
    const e = incompleteListing([
      {
        type: 'offset-cap',
        what: 'search',
        url: 'https://hub.example/api/search/v4?from=100',
        offset: 100,
        total: null,
        authenticated: true,
      },
    ]);
    expect(e.message).toMatch(/^Docker Hub search stopped at /);
    expect(e.message).toContain('refused to page past item 100 although we signed in');
    expect(e.message).toContain('check that the Docker Hub token is valid');
    expect(e.message).not.toContain('HUBCRAWL_DOCKERHUB_USERNAME');
  });
});

describe('ListingCuts', () => {
  it("counts the Hub's offset cap as a cut, but not a tag listing that went on with the registry's tags/list", async () => {
    const cuts = new ListingCuts();
    const url = 'https://hub.example/v2/x?page=11';
    const { cuts: seen } = await cuts.track(async () => {
      cuts.note({ type: 'tags-fallback', url, offset: 1000, message: 'went on with tags/list' });
      cuts.note({ type: 'offset-cap', what: 'search', url, offset: 1000, total: null, authenticated: false });
    });
    expect(seen.map((c) => c.type)).toEqual(['offset-cap']);
  });
});
