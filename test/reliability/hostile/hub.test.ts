/**
 * A hostile Docker Hub web API in a real crawl: the fake Hub (test/helpers/fake-hub.ts) behind a
 * fault proxy whose `respond` rules rewrite single pages, over the real registry as the docker.io
 * mirror. A `next` to another origin is never fetched (a second listener counts requests), a loop
 * of `next` ends the walk (either way the listing's item fails as LISTING_INCOMPLETE, so the run does not
 * pass for complete), and fields of the wrong type fail the one item that read them.
 */
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { createLogger } from '../../../src/core/log.js';
import { type BlobHost, startBlobHost } from '../../helpers/blob-host.js';
import { type FakeHub, fakeHubTagFor, startFakeHub } from '../../helpers/fake-hub.js';
import { crawl, failures, imageFullyAnalyzed, pushImage } from './harness.js';

const registry = inject('registries').none;
const NS = 'hostilehub';
let hub: FakeHub;
let hubProxy: FaultProxy;
let other: BlobHost;
const images: Record<string, BuiltImage> = {};

beforeAll(async () => {
  for (const name of ['app', 'tool']) {
    images[name] = await buildImage({
      layers: [{ entries: [{ type: 'file', path: `srv/${name}`, content: name }] }],
    });
    await pushImage(registry, `${NS}/${name}`, '1', images[name]!);
  }
  hub = await startFakeHub({
    anonymousOffsetCap: null,
    repos: ['app', 'tool'].map((name) => ({
      namespace: NS,
      name,
      tags: [fakeHubTagFor('1', images[name]!)],
    })),
  });
  hubProxy = await startFaultProxy(hub.url);
  other = await startBlobHost(Buffer.from('{"count":0,"next":null,"results":[]}'));
});

afterEach(() => {
  hubProxy.clearRules();
  hub.injectNextLoop = false;
});

afterAll(async () => {
  await Promise.allSettled([hubProxy?.stop(), hub?.stop(), other?.stop()]);
});

/** A warn-level logger whose JSON lines land in `lines`. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { log: createLogger({ level: 'warn', destination: sink }), lines };
}

/** Through the proxy by default; the fake Hub's own `next` links name its own origin, so a walk past page 1 needs `direct`. */
const hubConfig = (seeds: Record<string, string[]>, direct = false) => ({
  seeds,
  hubApiUrl: direct ? hub.url : hubProxy.url,
  registryMirror: registry.url,
});

/** The fake Hub's own first page of the namespace listing, to tamper with. */
async function realFirstPage(): Promise<{ results: unknown[]; next: string | null; count: number }> {
  const res = await fetch(`${hub.url}/v2/namespaces/${NS}/repositories?page=1&page_size=1`);
  return (await res.json()) as never;
}

const namespaceListing = new RegExp(`^/v2/(namespaces/${NS}/repositories|repositories/${NS}/?)\\?`);

/** Makes the proxy answer every GET of `path` with `page` as JSON, in place of the fake Hub's own page. */
function replaceHubPage(path: RegExp, page: unknown): void {
  hubProxy.addRule({
    method: 'GET',
    path,
    times: Number.POSITIVE_INFINITY,
    action: {
      kind: 'respond',
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(page),
    },
  });
}

describe('a hostile Docker Hub API in a crawl', () => {
  for (const [what, foreignOrigin] of [
    ['another port of 127.0.0.1', () => other.url],
    ['another host name', () => other.url.replace('127.0.0.1', 'localhost')],
  ] as const) {
    it(`never follows a next link to ${what}, crawls the repositories listed so far and fails the namespace as incomplete`, async () => {
      const page = await realFirstPage();
      const before = other.requests.length;
      replaceHubPage(namespaceListing, {
        ...page,
        next: `${foreignOrigin()}/v2/namespaces/${NS}/repositories?page=2&page_size=1`,
      });
      const { log, lines } = capturingLogger();
      const r = await crawl(hubConfig({ namespaces: [NS] }), { log });
      try {
        expect(other.requests.length).toBe(before);
        expect(r.outcome.status).toBe('completed-with-failures');
        expect(failures(r.db).map((f) => [f.kind, f.error_code])).toEqual([
          ['namespace', 'LISTING_INCOMPLETE'],
        ]);
        const listed = (page.results[0] as { name: string }).name;
        expect(imageFullyAnalyzed(r.db, images[listed]!.digest)).toBe(true);
        expect(lines.some((l) => (l.hub as { type?: string } | undefined)?.type === 'foreign-next')).toBe(
          true,
        );
      } finally {
        r.close();
      }
    });
  }

  it('ends a loop of next links after one pass, crawls every repository once and fails the looping listings as incomplete', async () => {
    hub.injectNextLoop = true;
    const start = hub.requests.length;
    const { log, lines } = capturingLogger();
    const r = await crawl(hubConfig({ namespaces: [NS] }, true), { log });
    try {
      // The fake loops every listing: the namespace's and each repository's tags.
      expect(r.outcome.status).toBe('completed-with-failures');
      expect(new Set(failures(r.db).map((f) => `${f.kind} ${f.error_code}`))).toEqual(
        new Set(['namespace LISTING_INCOMPLETE', 'repository LISTING_INCOMPLETE']),
      );
      for (const img of Object.values(images)) expect(imageFullyAnalyzed(r.db, img.digest)).toBe(true);
      const listingRequests = hub.requests
        .slice(start)
        .filter((q) => q.path === `/v2/namespaces/${NS}/repositories`);
      expect(listingRequests).toHaveLength(1);
      expect(lines.some((l) => (l.hub as { type?: string } | undefined)?.type === 'next-loop')).toBe(true);
    } finally {
      r.close();
    }
  });

  it('fails the namespace whose listing has fields of the wrong type with corrupt input, and crawls the seeded repository', async () => {
    const page = await realFirstPage();
    const results = page.results.map((x) => ({ ...(x as object), pull_count: 'lots', name: 42 }));
    replaceHubPage(namespaceListing, { ...page, next: null, results });
    const r = await crawl(hubConfig({ namespaces: [NS], repos: [`${NS}/tool`] }));
    try {
      expect(r.outcome.status).toBe('completed-with-failures');
      expect(failures(r.db).map((f) => [f.kind, f.error_code])).toEqual([['namespace', 'CORRUPT_INPUT']]);
      expect(imageFullyAnalyzed(r.db, images.tool!.digest)).toBe(true);
    } finally {
      r.close();
    }
  });

  it('fails the repository whose tag listing carries a numeric digest with corrupt input, and finishes the other', async () => {
    const res = await fetch(`${hub.url}/v2/namespaces/${NS}/repositories/app/tags?page=1&page_size=100`);
    const page = (await res.json()) as { results: Array<Record<string, unknown>> };
    replaceHubPage(new RegExp(`^/v2/(namespaces/${NS}/)?repositories/(${NS}/)?app/tags`), {
      ...page,
      results: page.results.map((t) => ({ ...t, digest: 12345 })),
    });
    const r = await crawl(hubConfig({ repos: [`${NS}/app`, `${NS}/tool`] }));
    try {
      expect(failures(r.db).map((f) => [f.kind, f.error_code])).toEqual([['repository', 'CORRUPT_INPUT']]);
      expect(failures(r.db)[0]?.key).toContain(`${NS}/app`);
      expect(imageFullyAnalyzed(r.db, images.tool!.digest)).toBe(true);
    } finally {
      r.close();
    }
  });
});
