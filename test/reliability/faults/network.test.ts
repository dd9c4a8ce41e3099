/**
 * The fault matrix, network half: whole crawls (runCrawl in-process) through a fault proxy in front
 * of the real distribution registry, each ending with the dataset compared row by row to a clean
 * run's through the same proxy, and with proof from the proxy's log that the fault was served.
 * Backoffs and pauses go through a recording sleep: Retry-After values are asserted on what the
 * HttpClient recorded (stats.rateLimitPauseMs, events), never on wall time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoImage } from '../../../scripts/demo-images.js';
import { type FaultLogEntry, type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import type { ConfigInput } from '../../../src/config/schema.js';
import { type BlobHost, startBlobHost } from '../../helpers/blob-host.js';
import type { DatasetSnapshot } from '../../helpers/dataset.js';
import {
  comparableDataset,
  crawlWithFaults,
  distinctRows,
  expectCleanEnd,
  type FaultWorld,
  MatrixReport,
  referenceCrawl,
  repoSeeds,
  startFaultWorld,
  type TempDir,
} from '../../helpers/fault-matrix.js';

const report = new MatrixReport(
  'Fault matrix — network faults against the real registry (in-process crawl)',
  'net',
);

describe('a whole crawl through a faulty network to the real registry', () => {
  let world: FaultWorld | undefined;
  let proxy: FaultProxy;
  let images: DemoImage[];
  let work: TempDir;
  let clean: DatasetSnapshot;
  let bigLayerPath: RegExp;
  let bigLayer: Buffer;

  const settings = () => ({ seeds: { repos: repoSeeds(proxy.host, images) } });
  /** Starts a cell: no rules, empty log. */
  const reset = () => {
    proxy.reset();
  };
  const hits = (pred: (e: FaultLogEntry) => boolean) => proxy.log.filter(pred).length;
  /** The GETs of the big layer's blob in the proxy's log. */
  const bigLayerGets = () => proxy.log.filter((e) => e.method === 'GET' && bigLayerPath.test(e.path));
  /** Answers the first `times` requests of `method` on `path` with a 429 and this Retry-After. */
  const answer429 = (method: string, path: RegExp, times: number, retryAfter: string) =>
    proxy.addRule({
      method,
      path,
      times,
      action: { kind: 'respond', status: 429, headers: { 'retry-after': retryAfter } },
    });

  beforeAll(async () => {
    world = await startFaultWorld();
    ({ images, proxy, work } = world);
    const big = images.find((d) => d.repository === 'fault/big')?.image;
    if (big?.kind !== 'image') throw new Error('fault/big is missing from the image set');
    const layer = big.layers[1];
    if (!layer) throw new Error('fault/big has no big layer');
    bigLayer = layer.data;
    bigLayerPath = new RegExp(`/v2/fault/big/blobs/${layer.digest}$`);
    clean = await referenceCrawl(work.newDb(), settings(), report);
  });

  afterAll(async () => {
    report.print();
    await world?.stop();
  });

  it('the clean run found the demo verdicts, so the comparisons below compare something', () => {
    expect(clean.images?.length).toBeGreaterThanOrEqual(8);
    expect(clean.findings?.length).toBeGreaterThan(0);
    expect(clean.layers?.every((l) => l.status === 'analyzed')).toBe(true);
  });

  describe('429s', () => {
    it('pauses for a Retry-After given in seconds, counts no failure, and ends with the clean dataset', async () => {
      reset();
      answer429('HEAD', /\/manifests\//, 2, '7');
      const db = work.newDb();
      const run = await crawlWithFaults(db, settings());
      const served = hits((e) => e.status === 429);
      expect(served).toBe(2);
      expect(run.outcome.status).toBe('completed');
      expect(run.http.failures).toBe(0);
      expect(run.itemsFailed).toBe(0);
      const pauses = run.events.filter((e) => e.type === 'rate-limited' && e.extended);
      expect(pauses.length).toBeGreaterThanOrEqual(1);
      expect(pauses.every((e) => e.type === 'rate-limited' && e.pauseMs === 7000)).toBe(true);
      expect(run.http.rateLimitPauseMs).toBe(7000 * run.http.rateLimitPauses);
      expect(run.sleeps).toContain(7000);
      expect(comparableDataset(db)).toEqual(clean);
      report.addCrawl('429 Retry-After: 7 (seconds)', run, served);
    });

    it('pauses until a Retry-After given as an HTTP date, and ends with the clean dataset', async () => {
      reset();
      const when = new Date(Date.now() + 5000).toUTCString();
      answer429('GET', /\/tags\/list/, 1, when);
      const db = work.newDb();
      const run = await crawlWithFaults(db, settings());
      const served = hits((e) => e.status === 429);
      expect(served).toBe(1);
      expect(run.outcome.status).toBe('completed');
      expect(run.http.failures).toBe(0);
      expect(run.itemsFailed).toBe(0);
      const pause = run.events.find((e) => e.type === 'rate-limited');
      // An HTTP date has whole seconds: the wait is between 3 and 5 s from when the 429 was read.
      expect(pause?.type === 'rate-limited' && pause.reason).toBe('retry-after');
      expect(run.http.rateLimitPauseMs).toBeGreaterThan(3000);
      expect(run.http.rateLimitPauseMs).toBeLessThanOrEqual(5000);
      expect(comparableDataset(db)).toEqual(clean);
      report.addCrawl('429 Retry-After: <HTTP date>', run, served);
    });

    it('shares one pause among a burst of 429s answered to requests in flight at concurrency 4', async () => {
      reset();
      // The first four tags/list requests are in flight together (concurrency 4); all get 429.
      answer429('GET', /\/tags\/list/, 4, '2');
      answer429('HEAD', /\/manifests\//, 4, '2');
      const db = work.newDb();
      const run = await crawlWithFaults(db, { ...settings(), concurrency: 4 });
      const served = hits((e) => e.status === 429);
      expect(served).toBe(8);
      expect(run.outcome.status).toBe('completed');
      expect(run.http.failures).toBe(0);
      expect(run.itemsFailed).toBe(0);
      expect(run.http.rateLimitPauses).toBeGreaterThanOrEqual(1);
      expect(run.http.rateLimitPauses).toBeLessThanOrEqual(served);
      expect(run.events.filter((e) => e.type === 'rate-limited')).toHaveLength(served);
      expect(comparableDataset(db)).toEqual(clean);
      report.addCrawl('burst of 8 × 429 at concurrency 4', run, served);
    });
  });

  describe('server errors and broken connections', () => {
    for (const status of [500, 502, 503]) {
      it(`retries ${status} answers to manifests, tags and blobs and ends with the clean dataset`, async () => {
        reset();
        for (const path of [/\/manifests\//, /\/tags\/list/, /\/blobs\//]) {
          proxy.addRule({ path, times: 2, action: { kind: 'respond', status, body: 'upstream trouble' } });
        }
        const db = work.newDb();
        const run = await crawlWithFaults(db, settings());
        const served = hits((e) => e.status === status);
        expect(served).toBe(6);
        expect(run.outcome.status).toBe('completed');
        expect(run.http.retries).toBeGreaterThanOrEqual(6);
        expect(run.itemsFailed).toBe(0);
        expect(comparableDataset(db)).toEqual(clean);
        report.addCrawl(`${status} × 6 (manifests, tags, blobs)`, run, served);
      });
    }

    it('retries connections reset before the headers and ends with the clean dataset', async () => {
      reset();
      for (const path of [/\/manifests\//, /\/blobs\//, /\/tags\/list/]) {
        proxy.addRule({ path, times: 2, action: { kind: 'reset-before-headers' } });
      }
      const db = work.newDb();
      const run = await crawlWithFaults(db, settings());
      const served = hits((e) => e.status === 'reset');
      expect(served).toBe(6);
      expect(run.outcome.status).toBe('completed');
      expect(run.http.retries).toBeGreaterThanOrEqual(6);
      expect(run.itemsFailed).toBe(0);
      expect(comparableDataset(db)).toEqual(clean);
      report.addCrawl('reset before headers × 6', run, served);
    });

    it('resumes or retries a blob whose connection is reset mid-body, and ends with the clean dataset', async () => {
      reset();
      proxy.addRule({
        method: 'GET',
        path: bigLayerPath,
        times: 2,
        action: { kind: 'reset-mid-body', afterBytes: 1024 * 1024 },
      });
      const db = work.newDb();
      const run = await crawlWithFaults(db, settings());
      const gets = bigLayerGets();
      // Two cut transfers, then one that completes: at least three GETs of the big layer.
      expect(gets.length).toBeGreaterThanOrEqual(3);
      expectCleanEnd(run, db, clean);
      const resumed = gets.filter((e) => typeof e.headers.range === 'string').length;
      report.addCrawl(`reset mid-blob × 2 (${resumed} Range resumes)`, run, 2);
    });

    it('gives up on a body stalled longer than the read timeout, retries, and ends with the clean dataset', async () => {
      reset();
      proxy.addRule({
        method: 'GET',
        path: bigLayerPath,
        times: 1,
        action: { kind: 'stall-body', afterBytes: 512 * 1024, stallMs: 3000 },
      });
      proxy.addRule({
        method: 'GET',
        path: /\/manifests\/sha256:/,
        times: 1,
        action: { kind: 'stall-body', afterBytes: 10, stallMs: 3000 },
      });
      const db = work.newDb();
      const run = await crawlWithFaults(db, { ...settings(), http: { timeoutMs: 400 } });
      expect(bigLayerGets().length).toBeGreaterThanOrEqual(2);
      expectCleanEnd(run, db, clean);
      report.addCrawl('stalled body > read timeout (blob, manifest)', run, 2);
    });

    it('treats a body shorter than its Content-Length as a broken transfer and ends with the clean dataset', async () => {
      reset();
      proxy.addRule({
        method: 'GET',
        path: bigLayerPath,
        times: 1,
        action: { kind: 'short-body', dropBytes: 1000 },
      });
      proxy.addRule({
        method: 'GET',
        path: /\/manifests\/sha256:/,
        times: 2,
        action: { kind: 'short-body', dropBytes: 7 },
      });
      const db = work.newDb();
      const run = await crawlWithFaults(db, settings());
      expect(bigLayerGets().length).toBeGreaterThanOrEqual(2);
      expectCleanEnd(run, db, clean);
      report.addCrawl('short body (blob ×1, manifest ×2)', run, 3);
    });
    it('resumes a layer and a config blob whose close-delimited bodies end short of their descriptors, ending with the clean dataset', async () => {
      reset();
      proxy.addRule({
        method: 'GET',
        path: bigLayerPath,
        times: 1,
        action: { kind: 'close-delimited-cut', dropBytes: 1000 },
      });
      // Every other blob's first GET (config blobs and small layers) is cut too.
      proxy.addRule({
        method: 'GET',
        path: /\/blobs\/sha256:/,
        times: 3,
        action: { kind: 'close-delimited-cut', dropBytes: 10 },
      });
      const db = work.newDb();
      const run = await crawlWithFaults(db, settings());
      expect(bigLayerGets().length).toBeGreaterThanOrEqual(2);
      expectCleanEnd(run, db, clean);
      // Resumed in the same request, not failed and retried.
      expect(run.outcome.stats).toMatchObject({ itemAttemptsRetried: 0 });
      report.addCrawl('close-delimited body cut short (blob ×4)', run, 4);
    });
  });

  it('analyzes in the next run a layer whose every attempt failed in this run, ending with the clean dataset', async () => {
    reset();
    proxy.addRule({
      method: 'GET',
      path: bigLayerPath,
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'respond', status: 503, body: 'blob store down' },
    });
    const db = work.newDb();
    const first = await crawlWithFaults(db, { ...settings(), http: { maxRetries: 1 } });
    const served = hits((e) => e.status === 503);
    expect(served).toBeGreaterThanOrEqual(2);
    expect(first.outcome.status).toBe('completed-with-failures');
    expect(first.itemsFailed).toBeGreaterThan(0);
    reset();
    const second = await crawlWithFaults(db, settings());
    expect(second.outcome.status).toBe('completed');
    expect(hits((e) => e.method === 'GET' && bigLayerPath.test(e.path) && e.status === 200)).toBe(1);
    const { frontier_states: states, tag_observations: seen, ...rest } = comparableDataset(db);
    const { frontier_states: cleanStates, tag_observations: cleanSeen, ...cleanRest } = clean;
    expect(rest).toEqual(cleanRest);
    // Two runs each observed every tag (tag history is per run): the same observations, twice.
    expect(distinctRows(seen)).toEqual(cleanSeen);
    expect(seen).toHaveLength(2 * (cleanSeen?.length ?? 0));
    // Run 1's items are history (run-keyed, done twice over); the layer, shared by all runs, is done.
    expect(states?.filter((s) => s.state !== 'done')).toEqual([]);
    expect(states?.find((s) => s.kind === 'layer')).toEqual(cleanStates?.find((s) => s.kind === 'layer'));
    report.addCrawl('blob 503 in every attempt (run 1)', first, served, 'items failed');
    report.addCrawl('  … next run, blob served', second, 0);
  });

  /**
   * An outage over a run and its resume: the registry answers the first requests, then resets every
   * connection before the headers, as a registry that went down (the client calls it unreachable after
   * three requests in a row and the run stops); it is still down for the resume, then back for the next.
   */
  async function outageOverResume(over: ConfigInput) {
    reset();
    proxy.addRule({
      path: /./,
      after: 4,
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'reset-before-headers' },
    });
    const db = work.newDb();
    const down = await crawlWithFaults(db, over);
    const served = hits((e) => e.status === 'reset');
    reset();
    proxy.addRule({ path: /./, times: Number.POSITIVE_INFINITY, action: { kind: 'reset-before-headers' } });
    const stillDown = await crawlWithFaults(db, over);
    reset();
    const back = await crawlWithFaults(db, over);
    return { db, down, served, stillDown, back };
  }

  it('stops resumably when the registry stops answering, fails no item for good, and the resume ends clean', async () => {
    // Stopping, rather than using up every item's attempts on a host that went down.
    const { db, down, served, stillDown, back } = await outageOverResume(settings());
    expect(down.outcome.status).toBe('aborted');
    expect(down.outcome.abortReason).toMatch(
      new RegExp(
        `^${proxy.host.replaceAll('.', '\\.')} stopped answering: 3 requests in a row got no response`,
      ),
    );
    expect(down.itemsFailed).toBe(0);
    // Resumed while the registry is still down: it answered this run before, so the resume stops again
    // rather than failing every item and ending the run.
    expect(stillDown.outcome).toMatchObject({ resumed: true, status: 'aborted' });
    expect(stillDown.itemsFailed).toBe(0);
    expect(back.outcome).toMatchObject({ resumed: true, status: 'completed', failedItems: 0 });
    expect(comparableDataset(db)).toEqual(clean);
    report.addCrawl('registry down after 4 requests (run 1)', down, served, 'stopped, resumable');
    report.addCrawl('  … resumed, registry back', back, 0);
  });

  it('spends at most one attempt per run of an outage: one item at a time fails none for good over two runs', async () => {
    // One item at a time, the item whose request first meets the outage is claimed again at once: before,
    // each of its failures counted until the third in a row stopped the run, so two runs of the outage
    // had failed it for good (maxAttempts 3). From the second failure in a row on, the host is the cause.
    const { db, down, stillDown, back } = await outageOverResume({
      ...settings(),
      concurrency: 1,
      layerConcurrency: 1,
    });
    expect(down.outcome.status).toBe('aborted');
    expect(stillDown.outcome).toMatchObject({ resumed: true, status: 'aborted' });
    expect(stillDown.itemsFailed).toBe(0);
    expect(back.outcome).toMatchObject({ resumed: true, status: 'completed', failedItems: 0 });
    expect(comparableDataset(db)).toEqual(clean);
  });

  it('fails the items of a host that never answered, as before, and finishes the run', async () => {
    // A registry that is down from the start is no outage seen mid-run: with one host, every item fails
    // (retried by the next crawl), and the run ends rather than stopping on every resume.
    reset();
    proxy.addRule({ path: /./, times: Number.POSITIVE_INFINITY, action: { kind: 'reset-before-headers' } });
    const db = work.newDb();
    const run = await crawlWithFaults(db, settings());
    const served = hits((e) => e.status === 'reset');
    reset();
    expect(run.outcome.status).toBe('completed-with-failures');
    expect(run.itemsFailed).toBeGreaterThan(0);
    report.addCrawl('registry down from the start', run, served, 'items failed');
  });

  describe('a blob redirected to another host', () => {
    let blobHost: BlobHost;
    let cdn: FaultProxy;

    beforeAll(async () => {
      blobHost = await startBlobHost(bigLayer);
      cdn = await startFaultProxy(blobHost.url);
    });
    afterAll(async () => {
      await cdn?.stop();
      await blobHost?.stop();
    });

    it('follows the redirect again after the blob host fails once, without Authorization, to the clean dataset', async () => {
      reset();
      cdn.log.length = 0;
      proxy.addRule({
        method: 'GET',
        path: bigLayerPath,
        times: Number.POSITIVE_INFINITY,
        action: {
          kind: 'respond',
          status: 307,
          headers: { location: `${cdn.url}/cdn/big?X-Amz-Signature=x` },
        },
      });
      cdn.addRule({
        method: 'GET',
        path: /\/cdn\//,
        times: 1,
        action: { kind: 'reset-mid-body', afterBytes: 100_000 },
      });
      const db = work.newDb();
      const run = await crawlWithFaults(db, settings());
      expect(hits((e) => e.status === 307)).toBeGreaterThanOrEqual(1);
      expect(cdn.log.length).toBeGreaterThanOrEqual(2);
      expect(blobHost.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
      expectCleanEnd(run, db, clean);
      report.addCrawl('redirect to blob host, host fails once', run, 1);
    });
  });
});
