/**
 * A registry listing cut short (a `_catalog` whose next page links back to the first, a tags/list whose
 * next page is on another origin) keeps what it listed, like a Docker Hub listing: the repositories and tags
 * listed are crawled, the item that listed is recorded failed with LISTING_INCOMPLETE, and the run ends
 * completed-with-failures (exit 1 from `hubcrawl crawl`, src/cli/commands/crawl.ts). The real registry
 * serves everything; the fault proxy in front of it only swaps the one page whose Link is at fault.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import { LISTING_INCOMPLETE } from '../../../src/pipeline/listing-cuts.js';
import { makeWorkspace, runTestCrawl, type Workspace } from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

/** One more repository than distribution's `_catalog` page without `n` (100): the catalog has a 2nd page. */
const REPOSITORIES = Array.from({ length: 101 }, (_, i) => `cut/r${String(i).padStart(3, '0')}`);
const json = { 'content-type': 'application/json; charset=utf-8' };

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let image: BuiltImage;

beforeAll(async () => {
  registry = await startRegistry();
  image = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'srv/cut', content: 'cut\n' }] }] });
  // A few pushes at a time: the registry is a real one on loopback, shared with the machine's other work.
  for (let i = 0; i < REPOSITORIES.length; i += 8) {
    await Promise.all(REPOSITORIES.slice(i, i + 8).map((r) => pushImage(registry, r, '1', image)));
  }
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace('hubcrawl-registry-cuts-');
});

afterEach(() => proxy.clearRules());

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

async function crawl(name: string, seeds: Record<string, string[]>) {
  const dbPath = ws.dbPath(name);
  const outcome = await runTestCrawl(dbPath, ws.iocFile, {
    seeds,
    registries: { [registry.host]: { endpoint: proxy.url } },
  });
  const failures = queryDataset<{ kind: string; error_code: string; message: string }>(
    dbPath,
    'SELECT kind, error_code, message FROM failures ORDER BY id',
  );
  const runStatus = queryDataset<{ status: string }>(dbPath, 'SELECT status FROM crawl_runs')[0]?.status;
  const repositories = queryDataset<{ full_name: string }>(
    dbPath,
    `SELECT r.full_name FROM repositories r JOIN registries g ON g.id = r.registry_id
     WHERE g.host = ? ORDER BY r.full_name`,
    registry.host,
  ).map((r) => r.full_name);
  const imageCrawled =
    queryDataset(dbPath, 'SELECT 1 FROM images WHERE digest = ?', image.digest).length === 1;
  return { outcome, failures, runStatus, repositories, imageCrawled };
}

describe('a registry listing cut short', () => {
  it('crawls what a _catalog listed before its second page linked back to the first, and fails the catalog item', async () => {
    // The real second page, but with a Link back to the first page: a paging loop.
    const secondPage = await fetch(`${registry.url}/v2/_catalog?last=cut%2Fr099&n=100`);
    const body = await secondPage.text();
    expect(JSON.parse(body)).toEqual({ repositories: ['cut/r100'] });
    proxy.addRule({
      path: /^\/v2\/_catalog\?.*last=/,
      action: {
        kind: 'respond',
        status: 200,
        headers: { ...json, link: '</v2/_catalog>; rel="next"' },
        body,
      },
    });

    const r = await crawl('catalog-loop', { catalogs: [`http://${registry.host}`] });

    expect(r.outcome.status).toBe('completed-with-failures');
    expect(r.outcome.failedItems).toBe(1);
    expect(r.runStatus).toBe('completed-with-failures');
    expect(r.failures.map((f) => [f.kind, f.error_code])).toEqual([['catalog', LISTING_INCOMPLETE]]);
    expect(r.failures[0]!.message).toContain(`registry listing ${proxy.url}/v2/_catalog stopped at`);
    expect(r.failures[0]!.message).toContain('paging loop');
    expect(r.failures[0]!.message).not.toContain('Docker Hub');
    // Both pages' repositories were crawled; the first page was not fetched again.
    expect(r.repositories).toEqual(REPOSITORIES);
    expect(r.imageCrawled).toBe(true);
    expect(proxy.log.filter((e) => e.path === '/v2/_catalog')).toHaveLength(1);
  });

  it('crawls the tags a tags/list listed before its next page moved to another origin, and fails the repository', async () => {
    proxy.addRule({
      path: /^\/v2\/cut\/r000\/tags\/list/,
      action: {
        kind: 'respond',
        status: 200,
        headers: { ...json, link: '<http://127.0.0.1:9/v2/cut/r000/tags/list?last=1>; rel="next"' },
        body: JSON.stringify({ name: 'cut/r000', tags: ['1'] }),
      },
    });

    const r = await crawl('tags-foreign', { repos: [`${registry.host}/cut/r000`] });

    expect(r.outcome.status).toBe('completed-with-failures');
    expect(r.outcome.failedItems).toBe(1);
    expect(r.failures.map((f) => [f.kind, f.error_code])).toEqual([['repository', LISTING_INCOMPLETE]]);
    expect(r.failures[0]!.message).toContain(`registry listing ${proxy.url}/v2/cut/r000/tags/list`);
    expect(r.failures[0]!.message).toContain('another origin');
    expect(r.imageCrawled).toBe(true);
  });

  it('completes when the same tags/list ends on its last page', async () => {
    const r = await crawl('tags-whole', { repos: [`${registry.host}/cut/r000`] });
    expect(r.outcome.status).toBe('completed');
    expect(r.failures).toEqual([]);
    expect(r.imageCrawled).toBe(true);
  });
});
