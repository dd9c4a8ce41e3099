/**
 * Hostile registry listings in a real crawl (the real registry's tags/list, rewritten by a fault-proxy
 * `respond` rule): a `Link: rel="next"` to another origin is never fetched (a second listener counts
 * requests) and a Link back to the same page ends the listing: the tags listed are crawled and the
 * repository fails as LISTING_INCOMPLETE; names of the wrong type fail it as corrupt input. The other repository seeded next to it finishes.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { type BlobHost, startBlobHost } from '../../helpers/blob-host.js';
import { crawl, failures, imageFullyAnalyzed, pushImage } from './harness.js';

const registry = inject('registries').none;
const REPO = 'hostile-paging';
let proxy: FaultProxy;
let listener: BlobHost;
let good: BuiltImage;

beforeAll(async () => {
  good = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'etc/paging', content: 'p' }] }] });
  await pushImage(registry, `${REPO}/good`, '1', good);
  await pushImage(registry, `${REPO}/bad`, '1', good);
  proxy = await startFaultProxy(registry.url);
  listener = await startBlobHost(Buffer.from('{"name":"x","tags":["1"]}'));
});

afterAll(async () => {
  await Promise.allSettled([proxy?.stop(), listener?.stop()]);
});

/** Answers the bad repository's tags/list with `body` and `link`. */
function badListing(body: unknown, link?: string): void {
  proxy.clearRules();
  proxy.addRule({
    method: 'GET',
    path: new RegExp(`^/v2/${REPO}/bad/tags/list`),
    times: Number.POSITIVE_INFINITY,
    action: {
      kind: 'respond',
      status: 200,
      headers: { 'content-type': 'application/json', ...(link ? { link } : {}) },
      body: JSON.stringify(body),
    },
  });
}

async function crawlBoth() {
  const r = await crawl({ seeds: { repos: [`${proxy.host}/${REPO}/bad`, `${proxy.host}/${REPO}/good`] } });
  expect(imageFullyAnalyzed(r.db, good.digest)).toBe(true);
  return r;
}

describe('hostile registry listings in a crawl', () => {
  for (const [what, origin] of [
    ['another port of 127.0.0.1', () => listener.url],
    ['another host name', () => listener.url.replace('127.0.0.1', 'localhost')],
  ] as const) {
    it(`never follows a tags/list Link to ${what} and fails that repository`, async () => {
      badListing(
        { name: `${REPO}/bad`, tags: ['1'] },
        `<${origin()}/v2/${REPO}/bad/tags/list?n=1&last=1>; rel="next"`,
      );
      const before = listener.requests.length;
      const r = await crawlBoth();
      try {
        expect(listener.requests.length).toBe(before);
        const f = failures(r.db);
        expect(f.map((x) => [x.kind, x.error_code])).toEqual([['repository', 'LISTING_INCOMPLETE']]);
        expect(f[0]?.message).toMatch(/another origin/);
      } finally {
        r.close();
      }
    });
  }

  it('fails a repository whose tags/list links back to the same page as an incomplete listing', async () => {
    badListing({ name: `${REPO}/bad`, tags: ['1'] }, `</v2/${REPO}/bad/tags/list>; rel="next"`);
    const r = await crawlBoth();
    try {
      expect(failures(r.db).map((x) => [x.kind, x.error_code])).toEqual([
        ['repository', 'LISTING_INCOMPLETE'],
      ]);
    } finally {
      r.close();
    }
  });

  it('fails a repository whose tags/list holds tags of the wrong type as corrupt input', async () => {
    badListing({ name: `${REPO}/bad`, tags: [1, { tag: 'x' }] });
    const r = await crawlBoth();
    try {
      expect(failures(r.db).map((x) => [x.kind, x.error_code])).toEqual([['repository', 'CORRUPT_INPUT']]);
    } finally {
      r.close();
    }
  });

  it('drops listed tag names that would steer a request elsewhere, and crawls the valid ones', async () => {
    badListing({ name: `${REPO}/bad`, tags: ['1', '../../../v2/_catalog', 'x?n=1', '#frag'] });
    const r = await crawlBoth();
    try {
      expect(failures(r.db)).toEqual([]);
      const tags = r.db.prepare(`SELECT DISTINCT tag FROM tag_observations WHERE tag <> '1'`).pluck().all();
      expect(tags).toEqual([]);
      expect(proxy.log.some((e) => e.path.includes('_catalog') || e.path.includes('%23'))).toBe(false);
    } finally {
      r.close();
    }
  });
});
