/**
 * A manifest GET is a counted pull on Docker Hub, so a manifest that was paid for is kept as soon as its
 * bytes are verified, not only when its item completes. Whatever fails after the GET — the image config
 * blob answering 500, the run being interrupted while that blob is in flight — the retry in the same run,
 * the resumed run and the next run read the manifest back from the dataset instead of pulling it again.
 * Real registry on loopback behind the fault proxy, whose log counts the GETs that went over the wire.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { datasetStats } from '../../../src/cli/commands/stats.js';
import { makeWorkspace, runTestCrawl, type Workspace } from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

const registry = inject('registries').none;
const REPO = 'paid-once';
let proxy: FaultProxy;
let ws: Workspace;

beforeAll(async () => {
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace('hubcrawl-paid-once-');
});

afterAll(async () => {
  await proxy?.stop();
  ws?.cleanup();
});

/** One small image of its own per test (its own digests), pushed as `<REPO>/<name>:1`. */
async function pushNamed(name: string): Promise<BuiltImage> {
  const image = await buildImage({
    layers: [{ entries: [{ type: 'file', path: `srv/${name}`, content: `${name}\n` }] }],
  });
  await pushImage(registry, `${REPO}/${name}`, '1', image);
  return image;
}

/**
 * Crawl settings for `<REPO>/<name>:1` through the proxy. No HTTP-level retries: each 500 then fails one
 * attempt of the item, so `maxAttempts` alone decides how often the item runs again within a run.
 */
const settings = (name: string) => ({
  seeds: { images: [`${registry.host}/${REPO}/${name}:1`] },
  registries: { [registry.host]: { endpoint: proxy.url } },
  maxAttempts: 3,
  http: { maxRetries: 0 },
});

const gets = (path: string) => proxy.log.filter((e) => e.method === 'GET' && e.path === path).length;
const manifestPath = (name: string, image: BuiltImage) => `/v2/${REPO}/${name}/manifests/${image.digest}`;
const configPath = (name: string, image: BuiltImage) => `/v2/${REPO}/${name}/blobs/${image.config.digest}`;
const rowsFor = (dbPath: string, sql: string, digest: string) =>
  queryDataset<{ n: number }>(dbPath, sql, digest)[0]!.n;

describe('a manifest paid for once', () => {
  it('is fetched once when its config blob fails twice and the item succeeds on its third attempt', async () => {
    const name = 'config-recovers';
    const image = await pushNamed(name);
    const dbPath = ws.dbPath(name);
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`^${configPath(name, image)}$`),
      times: 2,
      action: { kind: 'respond', status: 500, body: 'upstream trouble' },
    });
    const out = await runTestCrawl(dbPath, ws.iocFile, settings(name));
    expect(gets(configPath(name, image))).toBe(3);
    expect(gets(manifestPath(name, image))).toBe(1);
    expect(rowsFor(dbPath, 'SELECT count(*) AS n FROM images WHERE digest = ?', image.digest)).toBe(1);
    // The item failed twice and then succeeded: nothing failed, the run is complete.
    expect(out).toMatchObject({ status: 'completed', failedItems: 0 });
    expect(out.stats).toMatchObject({ itemsFailed: 0, itemAttemptsRetried: 2 });
  });

  describe('when its config blob keeps failing', () => {
    const name = 'config-down';
    let image: BuiltImage;
    let dbPath: string;
    /** Manifest and config GETs after each run. */
    const after: Array<{ manifest: number; config: number; status: string }> = [];

    beforeAll(async () => {
      image = await pushNamed(name);
      dbPath = ws.dbPath(name);
      const crawl = async () => {
        const out = await runTestCrawl(dbPath, ws.iocFile, settings(name));
        after.push({
          manifest: gets(manifestPath(name, image)),
          config: gets(configPath(name, image)),
          status: out.status,
        });
      };
      proxy.addRule({
        method: 'GET',
        path: new RegExp(`^${configPath(name, image)}$`),
        times: Number.POSITIVE_INFINITY,
        action: { kind: 'respond', status: 500, body: 'upstream trouble' },
      });
      await crawl();
      await crawl();
      proxy.clearRules();
      await crawl();
    });

    it('pulls the manifest once across the attempts of the run that failed the item', () => {
      expect(after[0]).toEqual({ manifest: 1, config: 3, status: 'completed-with-failures' });
    });

    it('pulls it no more in a second run that fails the item again', () => {
      expect(after[1]).toEqual({ manifest: 1, config: 6, status: 'completed-with-failures' });
    });

    it('records the image from the stored manifest, without a pull, once the config blob answers', () => {
      expect(after[2]).toEqual({ manifest: 1, config: 7, status: 'completed' });
      expect(rowsFor(dbPath, 'SELECT count(*) AS n FROM images WHERE digest = ?', image.digest)).toBe(1);
      expect(queryDataset(dbPath, 'SELECT run_id FROM manifests WHERE digest = ?', image.digest)).toEqual([
        { run_id: 1 },
      ]);
    });
  });

  it('keeps a paid manifest whose item failed for good out of every image the dataset shows', async () => {
    const name = 'config-gone';
    const image = await pushNamed(name);
    const dbPath = ws.dbPath(name);
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`^${configPath(name, image)}$`),
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'respond', status: 500, body: 'upstream trouble' },
    });
    const out = await runTestCrawl(dbPath, ws.iocFile, settings(name));
    proxy.clearRules();
    expect(out.status).toBe('completed-with-failures');
    const n = (sql: string) => rowsFor(dbPath, sql, image.digest);
    // Paid for and kept (that is the point), and recorded as the run's failed manifest item.
    expect(n('SELECT count(*) AS n FROM manifests WHERE digest = ?')).toBe(1);
    expect(
      queryDataset(
        dbPath,
        `SELECT kind, state FROM frontier WHERE kind = 'manifest' AND key LIKE '%' || ?`,
        image.digest,
      ),
    ).toEqual([{ kind: 'manifest', state: 'failed' }]);
    // The tag was observed, but no image came of it: no image, layer order or route from tag to image (the
    // report and affected_images start from findings of an image, so they cannot list it either).
    expect(n('SELECT count(*) AS n FROM tag_observations WHERE digest = ?')).toBe(1);
    expect(n('SELECT count(*) AS n FROM images WHERE digest = ?')).toBe(0);
    expect(n('SELECT count(*) AS n FROM image_layers WHERE image_digest = ?')).toBe(0);
    expect(n('SELECT count(*) AS n FROM image_observations WHERE image_digest = ?')).toBe(0);
    expect(n('SELECT count(*) AS n FROM image_tags WHERE image_digest = ?')).toBe(0);
    const holds = datasetStats(dbPath).holds as Record<string, number>;
    expect({ manifests: holds.manifests, images: holds.images, layers: holds.layers }).toEqual({
      manifests: 1,
      images: 0,
      layers: 0,
    });
  });

  it('is not pulled again by the resumed run when the run is interrupted while its config blob is in flight', async () => {
    const name = 'interrupted';
    const image = await pushNamed(name);
    const dbPath = ws.dbPath(name);
    const interrupt = new AbortController();
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The config GET reaches the proxy only after the manifest GET has returned: interrupting the crawl
    // right then cuts off an item that has paid its pull and not completed.
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`^${configPath(name, image)}$`),
      action: {
        kind: 'hold',
        until: () => {
          interrupt.abort();
          return released;
        },
      },
    });
    const stopped = await runTestCrawl(dbPath, ws.iocFile, settings(name), { signal: interrupt.signal });
    release();
    expect(stopped.status).toBe('aborted');
    expect(gets(manifestPath(name, image))).toBe(1);
    expect(queryDataset(dbPath, `SELECT state FROM frontier WHERE kind = 'manifest'`)).toEqual([
      { state: 'pending' },
    ]);
    const resumed = await runTestCrawl(dbPath, ws.iocFile, settings(name));
    expect(resumed).toMatchObject({ runId: stopped.runId, resumed: true, status: 'completed' });
    expect(gets(manifestPath(name, image))).toBe(1);
    expect(gets(configPath(name, image))).toBe(2);
    expect(rowsFor(dbPath, 'SELECT count(*) AS n FROM images WHERE digest = ?', image.digest)).toBe(1);
  });

  it('is not pulled again by the resumed run when a rate limit on its config blob stops the run', async () => {
    const name = 'rate-limited';
    const image = await pushNamed(name);
    const dbPath = ws.dbPath(name);
    // A pause longer than http.maxPauseMs ends the run resumably, with this item put back to pending.
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`^${configPath(name, image)}$`),
      action: { kind: 'respond', status: 429, headers: { 'retry-after': '3600' } },
    });
    const stopped = await runTestCrawl(dbPath, ws.iocFile, settings(name));
    expect(stopped.status).toBe('aborted');
    expect(gets(manifestPath(name, image))).toBe(1);
    const resumed = await runTestCrawl(dbPath, ws.iocFile, settings(name));
    expect(resumed).toMatchObject({ runId: stopped.runId, resumed: true, status: 'completed' });
    expect(gets(manifestPath(name, image))).toBe(1);
    expect(gets(configPath(name, image))).toBe(2);
    expect(rowsFor(dbPath, 'SELECT count(*) AS n FROM images WHERE digest = ?', image.digest)).toBe(1);
  });

  it('stores nothing for a manifest whose bytes do not match its digest, so the next run fetches it', async () => {
    const name = 'mismatch';
    const image = await pushNamed(name);
    const dbPath = ws.dbPath(name);
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`^${manifestPath(name, image)}$`),
      action: { kind: 'corrupt-body', atByte: 20 },
    });
    const first = await runTestCrawl(dbPath, ws.iocFile, settings(name));
    expect(first.status).toBe('completed-with-failures');
    expect(queryDataset(dbPath, `SELECT error_code FROM failures WHERE kind = 'manifest'`)).toEqual([
      { error_code: 'DIGEST_MISMATCH' },
    ]);
    expect(rowsFor(dbPath, 'SELECT count(*) AS n FROM manifests WHERE digest = ?', image.digest)).toBe(0);
    const second = await runTestCrawl(dbPath, ws.iocFile, settings(name));
    expect(second.status).toBe('completed');
    expect(gets(manifestPath(name, image))).toBe(2);
    expect(rowsFor(dbPath, 'SELECT count(*) AS n FROM images WHERE digest = ?', image.digest)).toBe(1);
  });

  it('stores nothing for a manifest GET that failed, and the retry in the same run fetches it', async () => {
    const name = 'get-fails';
    const image = await pushNamed(name);
    const dbPath = ws.dbPath(name);
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`^${manifestPath(name, image)}$`),
      action: { kind: 'respond', status: 500, body: 'upstream trouble' },
    });
    await runTestCrawl(dbPath, ws.iocFile, settings(name));
    expect(gets(manifestPath(name, image))).toBe(2);
    expect(queryDataset(dbPath, `SELECT error_code FROM failures WHERE kind = 'manifest'`)).toEqual([
      { error_code: 'RETRYABLE' },
    ]);
    expect(rowsFor(dbPath, 'SELECT count(*) AS n FROM images WHERE digest = ?', image.digest)).toBe(1);
  });
});
