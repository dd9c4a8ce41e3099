/**
 * The fault matrix, Docker Hub and token half. Two worlds, each with its own clean run:
 * - docker.io through a mirror: the fake Hub API (test/helpers/fake-hub.ts) and the real registry,
 *   each behind a fault proxy (`hubApiUrl`, `registryMirror`), for the pull-quota 429 and the Hub
 *   API's 429 with X-RateLimit headers;
 * - the real registry in token mode (its own token service, so the test can take it down or
 *   shorten token lifetimes) behind a fault proxy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoImage } from '../../../scripts/demo-images.js';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import type { DatasetSnapshot } from '../../helpers/dataset.js';
import { type FakeHub, type FakeHubRepo, fakeHubTagFor, startFakeHub } from '../../helpers/fake-hub.js';
import {
  buildFaultImages,
  comparableDataset,
  crawlWithFaults,
  expectCleanEnd,
  MatrixReport,
  pushFaultImages,
  referenceCrawl,
  repoSeeds,
  type TempDir,
  tempDir,
} from '../../helpers/fault-matrix.js';

const report = new MatrixReport(
  'Fault matrix — Docker Hub API, pull quota and token service (in-process crawl)',
  'hub/token',
);

function hubRepos(images: readonly DemoImage[]): FakeHubRepo[] {
  const byRepo = new Map<string, FakeHubRepo>();
  for (const d of images) {
    const [namespace, name] = d.repository.split('/') as [string, string];
    const repo = byRepo.get(d.repository) ?? { namespace, name, pullCount: 1234, starCount: 5, tags: [] };
    repo.tags.push(fakeHubTagFor(d.tag, d.image));
    byRepo.set(d.repository, repo);
  }
  return [...byRepo.values()];
}

let images: DemoImage[];
let work: TempDir;

// Both worlds' registries are filled before the first crawl imports undici (see fault-matrix.ts).
let plainRegistry: RunningRegistry;
let tokenRegistry: RunningRegistry;

beforeAll(async () => {
  images = await buildFaultImages();
  work = tempDir();
  plainRegistry = await startRegistry({ auth: 'none' });
  tokenRegistry = await startRegistry({ auth: 'token' });
  await pushFaultImages(plainRegistry, images);
  await pushFaultImages(tokenRegistry, images);
});

afterAll(async () => {
  report.print();
  await plainRegistry?.stop();
  await tokenRegistry?.stop();
  work?.remove();
});

describe('docker.io through a mirror and the Hub API, both behind fault proxies', () => {
  let hub: FakeHub;
  let hubProxy: FaultProxy;
  let mirror: FaultProxy;
  let clean: DatasetSnapshot;

  const settings = () => ({
    seeds: { repos: repoSeeds('docker.io', images) },
    hubApiUrl: hubProxy.url,
    registryMirror: mirror.url,
  });
  const reset = () => {
    for (const p of [hubProxy, mirror]) p.reset();
  };

  beforeAll(async () => {
    hub = await startFakeHub({ repos: hubRepos(images) });
    hubProxy = await startFaultProxy(hub.url);
    mirror = await startFaultProxy(plainRegistry.url);
    clean = await referenceCrawl(work.newDb(), settings(), report, 'docker.io clean run (reference)');
  });
  afterAll(async () => {
    await hubProxy?.stop();
    await mirror?.stop();
    await hub?.stop();
  });

  it('the clean docker.io run has Hub metadata and manifests fetched through the mirror', () => {
    expect(clean.repositories?.every((r) => r.host === 'docker.io' && r.pull_count === 1234)).toBe(true);
    expect(clean.manifests?.length).toBeGreaterThanOrEqual(8);
    expect(clean.findings?.length).toBeGreaterThan(0);
  });

  it('stops resumably on a 429 saying only ratelimit-remaining: 0;w=21600, counts no failure, and the resume ends with the clean dataset', async () => {
    reset();
    mirror.addRule({
      method: 'GET',
      path: /\/v2\/demo\/.+\/manifests\/sha256:/,
      times: 1,
      action: { kind: 'respond', status: 429, headers: { 'ratelimit-remaining': '0;w=21600' } },
    });
    const db = work.newDb();
    const first = await crawlWithFaults(db, settings());
    const served = mirror.log.filter((e) => e.status === 429).length;
    expect(served).toBe(1);
    // The pull quota is spent for six hours: no in-run wait, the run stops and resumes later.
    expect(first.outcome.status).toBe('aborted');
    expect(first.outcome.abortReason).toMatch(/pull quota/);
    expect(first.http.failures).toBe(0);
    expect(first.itemsFailed).toBe(0);
    const resumed = await crawlWithFaults(db, settings());
    expect(resumed.outcome.resumed).toBe(true);
    expect(resumed.outcome.status).toBe('completed');
    expect(comparableDataset(db)).toEqual(clean);
    report.addCrawl('429 ratelimit-remaining: 0;w=21600 (run 1, stops)', first, served, 'aborted');
    report.addCrawl('  … resumed run', resumed, 0);
  });

  it("pauses on the Hub API's 429 until X-RateLimit-Reset, counts no failure, and ends with the clean dataset", async () => {
    reset();
    const resetAt = () => String(Math.floor(Date.now() / 1000) + 3);
    for (const path of [/\/tags/, /^\/v2\/namespaces\/demo\/repositories\/[^/?]+$/]) {
      hubProxy.addRule({
        method: 'GET',
        path,
        times: 1,
        action: {
          kind: 'respond',
          status: 429,
          headers: {
            'x-ratelimit-limit': '180',
            'x-ratelimit-remaining': '0',
            'x-ratelimit-reset': resetAt(),
          },
          body: JSON.stringify({ detail: 'Rate limit exceeded', error: false }),
        },
      });
    }
    const db = work.newDb();
    const run = await crawlWithFaults(db, settings());
    const served = hubProxy.log.filter((e) => e.status === 429).length;
    expect(served).toBe(2);
    expect(run.outcome.status).toBe('completed');
    expect(run.http.failures).toBe(0);
    expect(run.itemsFailed).toBe(0);
    const pauses = run.events.filter((e) => e.type === 'rate-limited' && e.extended);
    expect(pauses.length).toBeGreaterThanOrEqual(1);
    for (const p of pauses) {
      expect(p.type === 'rate-limited' && p.reason).toBe('api-quota');
      // Reset is a whole unix second 3 s ahead: the pause is between 2 and 3 s.
      expect(p.type === 'rate-limited' && p.pauseMs).toBeGreaterThan(1000);
      expect(p.type === 'rate-limited' && p.pauseMs).toBeLessThanOrEqual(3000);
    }
    expect(comparableDataset(db)).toEqual(clean);
    report.addCrawl('Hub API 429 + X-RateLimit-Reset × 2', run, served);
  });
});

describe('the real registry in token mode behind a fault proxy', () => {
  let proxy: FaultProxy;
  let clean: DatasetSnapshot;
  let cleanTokensIssued = 0;
  const token = () => {
    const t = tokenRegistry.token;
    if (!t) throw new Error('the token registry has no token service');
    return t;
  };
  const settings = () => ({ seeds: { repos: repoSeeds(proxy.host, images) } });
  const reset = () => {
    proxy.reset();
    token().setDown(false);
    token().setExpiresIn(300);
  };

  beforeAll(async () => {
    proxy = await startFaultProxy(tokenRegistry.url);
    const before = token().issued;
    clean = await referenceCrawl(work.newDb(), settings(), report, 'token registry clean run (reference)');
    cleanTokensIssued = token().issued - before;
  });
  afterAll(async () => {
    token().setDown(false);
    await proxy?.stop();
  });

  it('the clean token-mode run needed tokens and found the demo verdicts', () => {
    expect(cleanTokensIssued).toBeGreaterThanOrEqual(8);
    expect(clean.findings?.length).toBeGreaterThan(0);
  });

  it('waits out a token service that is down for a while (503s, retried) and ends with the clean dataset', async () => {
    reset();
    const t = token();
    const before = { requests: t.requests, issued: t.issued };
    t.setDown(true);
    const db = work.newDb();
    // Down until the crawl has backed off four times, then up again.
    const run = await crawlWithFaults(db, settings(), {
      onSleep: (_ms, n) => {
        if (n >= 4) t.setDown(false);
      },
    });
    const refused = t.requests - before.requests - (t.issued - before.issued);
    expect(refused).toBeGreaterThanOrEqual(4);
    expectCleanEnd(run, db, clean);
    report.addCrawl('token service down for 4 backoffs', run, refused);
  });

  it('fails items while the token service stays down past the retries, and the next run completes them to the clean dataset', async () => {
    reset();
    const t = token();
    const before = { requests: t.requests, issued: t.issued };
    t.setDown(true);
    const db = work.newDb();
    const first = await crawlWithFaults(db, { ...settings(), http: { maxRetries: 2 } });
    const refused = t.requests - before.requests;
    expect(t.issued).toBe(before.issued);
    expect(first.outcome.status).toBe('completed-with-failures');
    expect(first.itemsFailed).toBeGreaterThan(0);
    t.setDown(false);
    const second = await crawlWithFaults(db, settings());
    expect(second.outcome.status).toBe('completed');
    // Run 1 spent all its attempts on its own (run-keyed) repository items, which stay failed in the
    // frontier as history; run 2 re-listed the same repositories under its own keys. Every research
    // table must equal the clean run's; the frontier may additionally hold those 8 failed items.
    const { frontier_states: states, ...rest } = comparableDataset(db);
    const { frontier_states: cleanStates, ...cleanRest } = clean;
    expect(rest).toEqual(cleanRest);
    expect(states?.filter((s) => s.state !== 'failed')).toEqual(cleanStates);
    report.addCrawl('token service down past the retries (run 1)', first, refused, 'items failed');
    report.addCrawl('  … next run, service up', second, 0);
  });

  it('refreshes tokens that expire mid-crawl, also after the registry refuses an expired one, and ends with the clean dataset', async () => {
    reset();
    const t = token();
    t.setExpiresIn(1);
    const before = t.issued;
    // Slow manifests keep the crawl going for several token lifetimes.
    proxy.addRule({
      method: 'GET',
      path: /\/manifests\/sha256:/,
      times: 6,
      action: { kind: 'delay', ms: 400 },
    });
    // The registry's answer to an expired token: 401 with a fresh challenge (error="invalid_token").
    const challenge = `Bearer realm="${t.realm}",service="${t.service}",scope="repository:fault/big:pull",error="invalid_token"`;
    proxy.addRule({
      method: 'GET',
      path: /\/v2\/fault\/big\/blobs\//,
      times: 1,
      action: {
        kind: 'respond',
        status: 401,
        headers: { 'www-authenticate': challenge, 'content-type': 'application/json' },
        body: JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'token expired' }] }),
      },
    });
    const db = work.newDb();
    const run = await crawlWithFaults(db, settings());
    const refusedExpired = proxy.log.filter(
      (e) =>
        e.status === 401 &&
        /\/v2\/fault\/big\/blobs\//.test(e.path) &&
        String(e.headers.authorization ?? '').startsWith('Bearer '),
    ).length;
    expect(refusedExpired).toBe(1);
    const issued = t.issued - before;
    expect(issued).toBeGreaterThan(cleanTokensIssued);
    expectCleanEnd(run, db, clean);
    report.addCrawl(
      `token lifetime 1 s (${issued} tokens vs ${cleanTokensIssued}), one 401`,
      run,
      refusedExpired,
    );
  });
});
