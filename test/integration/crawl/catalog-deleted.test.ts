/**
 * A scheduled crawl of a registry's `_catalog`: a repository deleted from the registry disappears from the
 * catalog, and its tags must stop being current (report --current-only), without failing the run, since
 * no seed names it. The catalog's absence alone is not enough (a catalog can hide what a token may not
 * see): the registry's NAME_UNKNOWN for its tags/list and a 404 for each tag's HEAD are. Real registry.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import {
  buildCrawlScenario,
  makeWorkspace,
  runTestCrawl,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let dbPath: string;
let untaggedDigest: string;

beforeAll(async () => {
  registry = await startRegistry();
  const s = await buildCrawlScenario();
  await pushImage(registry, 'acme/kept', 'latest', s.sig);
  await pushImage(registry, 'acme/dropped', 'latest', s.sig);
  await pushImage(registry, 'acme/dropped', 'v1', s.sig);
  // Untagged manifests only: the catalog lists it, its tags/list answers 404 NAME_UNKNOWN.
  await pushImage(registry, 'acme/untagged', undefined, s.clean);
  untaggedDigest = s.clean.digest;
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace('hubcrawl-catalog-deleted-');
  dbPath = ws.dbPath('catalog');
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

const crawl = () =>
  runTestCrawl(dbPath, ws.iocFile, {
    seeds: { catalogs: [registry.url] },
    registries: { [registry.host]: { endpoint: proxy.url } },
  });

/** The catalog as the proxy answers it: only acme/kept, then optionally a next page on another origin (a cut). */
function catalogNaming(opts: { cut: boolean }): void {
  proxy.addRule({
    method: 'GET',
    path: /^\/v2\/_catalog/,
    times: Number.POSITIVE_INFINITY,
    action: {
      kind: 'respond',
      status: 200,
      headers: {
        'content-type': 'application/json',
        ...(opts.cut
          ? { link: '<http://elsewhere.example/v2/_catalog?last=acme%2Fkept&n=100>; rel="next"' }
          : {}),
      },
      body: JSON.stringify({ repositories: ['acme/kept'] }),
    },
  });
}
const tagListings = (repository: string) =>
  proxy.log.filter((e) => e.method === 'GET' && e.path.startsWith(`/v2/${repository}/tags/list`)).length;

const current = () =>
  queryDataset<{ repository: string; tag: string; tag_current: string }>(
    dbPath,
    `SELECT DISTINCT repository, tag, tag_current FROM report_rows ORDER BY repository, tag`,
  );

describe('a repository deleted from a crawled catalog', () => {
  it('has its tags no longer current, and the run does not fail for it', async () => {
    expect((await crawl()).status).toBe('completed');
    const allCurrent = [
      { repository: 'acme/dropped', tag: 'latest', tag_current: 'true' },
      { repository: 'acme/dropped', tag: 'v1', tag_current: 'true' },
      { repository: 'acme/kept', tag: 'latest', tag_current: 'true' },
    ];
    expect(current()).toEqual(allCurrent);

    // Left out of a catalog cut short: not looked at (a cut catalog does not say what is unlisted).
    proxy.reset();
    catalogNaming({ cut: true });
    expect((await crawl()).status).toBe('completed-with-failures');
    expect(tagListings('acme/dropped')).toBe(0);
    // Left out of a whole catalog but still there (hidden): looked at, and its tags stay current.
    proxy.reset();
    catalogNaming({ cut: false });
    expect((await crawl()).status).toBe('completed');
    expect(tagListings('acme/dropped')).toBe(1);
    expect(current()).toEqual(allCurrent);
    proxy.reset();

    // distribution has no API to delete a repository: its storage goes, as an operator would remove it.
    rmSync(join(registry.dataDir, 'docker/registry/v2/repositories/acme/dropped'), { recursive: true });
    expect((await crawl()).status).toBe('completed');
    expect(current()).toEqual([
      { repository: 'acme/dropped', tag: 'latest', tag_current: 'false' },
      { repository: 'acme/dropped', tag: 'v1', tag_current: 'false' },
      { repository: 'acme/kept', tag: 'latest', tag_current: 'true' },
    ]);
    // Recorded once: the next crawl has nothing more to say of it.
    expect((await crawl()).status).toBe('completed');
    expect(queryDataset(dbPath, 'SELECT count(*) AS n FROM tag_absences')).toEqual([{ n: 2 }]);
  });
});

describe('a repository the catalog lists that has no tags', () => {
  it('is listed as empty: the catalog crawl completes, and a seed naming it fails saying how to reach its images', async () => {
    const db = ws.dbPath('untagged');
    const catalog = await runTestCrawl(db, ws.iocFile, { seeds: { catalogs: [registry.url] } });
    expect(catalog.status).toBe('completed');
    expect(queryDataset(db, `SELECT kind, state FROM frontier WHERE key LIKE '%acme/untagged'`)).toEqual([
      { kind: 'repository', state: 'done' },
    ]);
    expect(
      queryDataset(db, `SELECT full_name FROM repositories WHERE full_name = 'acme/untagged'`),
    ).toHaveLength(1);

    // Named by a seed, the same answer may mean no such repository: the item fails, naming both readings.
    const seeded = await runTestCrawl(db, ws.iocFile, {
      seeds: { repos: [`${registry.host}/acme/untagged`] },
    });
    expect(seeded.status).toBe('completed-with-failures');
    const [failure] = queryDataset<{ last_error: string }>(
      db,
      `SELECT last_error FROM frontier WHERE kind = 'repository' AND state = 'failed'`,
    );
    expect(failure?.last_error).toBe(
      `http://${registry.host}/v2/acme/untagged/tags/list answered 404: NAME_UNKNOWN (repository name not known to registry): the registry holds no repository of that name, or one without tags (untagged manifests only); an untagged image is crawled by digest (--image ${registry.host}/acme/untagged@sha256:…)`,
    );
    // As the message says, by digest.
    const byDigest = await runTestCrawl(db, ws.iocFile, {
      seeds: { images: [`${registry.host}/acme/untagged@${untaggedDigest}`] },
    });
    expect(byDigest.status).toBe('completed');
  });
});

describe('a catalog that lists without end', () => {
  it('is read up to limits.maxListingEntries names: those are crawled, and the item fails as a listing cut short', async () => {
    proxy.reset();
    const page = (path: RegExp, names: string[], next: string) =>
      proxy.addRule({
        method: 'GET',
        path,
        action: {
          kind: 'respond',
          status: 200,
          headers: { 'content-type': 'application/json', link: `<${next}>; rel="next"` },
          body: JSON.stringify({ repositories: names }),
        },
      });
    page(/^\/v2\/_catalog(\?n=\d+)?$/, ['acme/kept', 'acme/untagged', 'more/a'], '/v2/_catalog?p=2');
    page(/^\/v2\/_catalog\?p=2$/, ['more/b', 'more/c', 'more/d'], '/v2/_catalog?p=3');
    const db = ws.dbPath('endless-catalog');
    const run = await runTestCrawl(db, ws.iocFile, {
      seeds: { catalogs: [registry.url] },
      registries: { [registry.host]: { endpoint: proxy.url } },
      limits: { maxListingEntries: 4 },
    });
    expect(run.status).toBe('completed-with-failures');
    const items = queryDataset<{ kind: string; key: string; state: string; last_error_code: string | null }>(
      db,
      `SELECT kind, substr(key, instr(key, '|') + 1) AS key, state, last_error_code FROM frontier
        WHERE kind IN ('catalog', 'repository') ORDER BY kind, key`,
    );
    expect(items.map((i) => [i.kind, i.state, i.last_error_code])).toEqual([
      ['catalog', 'failed', 'LISTING_INCOMPLETE'],
      ['repository', 'done', null],
      ['repository', 'done', null],
      ['repository', 'done', null],
      ['repository', 'done', null],
    ]);
    expect(items.slice(1).map((i) => i.key.split('/').slice(1).join('/'))).toEqual([
      'acme/kept',
      'acme/untagged',
      'more/a',
      'more/b',
    ]);
    const [catalog] = queryDataset<{ last_error: string }>(
      db,
      `SELECT last_error FROM frontier WHERE kind = 'catalog'`,
    );
    expect(catalog?.last_error).toContain('it named more than 4 entries, the most one listing is read for');
    // Never asked for the page after the cut.
    expect(proxy.log.filter((e) => e.path.includes('p=3'))).toEqual([]);
  });
});
