/**
 * Docker Hub's pull-limit 429 recognised from its body alone. Hub may answer a spent pull quota with the
 * `TOOMANYREQUESTS` "You have reached your pull rate limit" body and no `ratelimit-*` headers
 * (docker-hub-api.md §2.4): a whole docker.io crawl (fake Hub API, the real registry as the mirror behind
 * a fault proxy) must then stop as a spent budget does — no backoff, no host pause, a pull already in
 * flight kept rather than cut off (run.ts cuts off in-flight requests for any other stop), resumable —
 * while a plain 429 with Retry-After still pauses the host and retries. Sleeps are recorded, never
 * waited (fault-matrix.ts), so nothing here depends on wall time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { queryDataset } from '../../helpers/dataset.js';
import { type FakeHub, fakeHubTagFor, startFakeHub } from '../../helpers/fake-hub.js';
import {
  comparableDataset,
  crawlWithFaults,
  referenceCrawl,
  type TempDir,
  tempDir,
} from '../../helpers/fault-matrix.js';

const registry = inject('registries').none;
const NS = 'pull-limit';

/** Hub's answer to a pull past the quota, as a 2023 log recorded it (docker-hub-api.md §2.4). */
const PULL_LIMIT_BODY = JSON.stringify({
  errors: [
    {
      code: 'TOOMANYREQUESTS',
      message:
        'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit',
    },
  ],
});

let hub: FakeHub;
let hubProxy: FaultProxy;
let mirror: FaultProxy;
let work: TempDir;
/** `paid`'s manifest GET is held in flight while `refused`'s manifest GET meets the 429. */
let paid: BuiltImage;
let refused: BuiltImage;
let clean: ReturnType<typeof comparableDataset>;

const settings = () => ({
  seeds: { repos: [`docker.io/${NS}/paid`, `docker.io/${NS}/refused`] },
  hubApiUrl: hubProxy.url,
  registryMirror: mirror.url,
});
const reset = () => {
  for (const p of [hubProxy, mirror]) p.reset();
};
const REFUSED_MANIFEST = new RegExp(`^/v2/${NS}/refused/manifests/`);
const paidManifestPath = () => `/v2/${NS}/paid/manifests/${paid.digest}`;
const paidConfigPath = () => `/v2/${NS}/paid/blobs/${paid.config.digest}`;
const getsIn = (log: FaultProxy['log'], path: RegExp | string) =>
  log.filter((e) => e.method === 'GET' && (typeof path === 'string' ? e.path === path : path.test(e.path)));
const paidLayerPath = () => `/v2/${NS}/paid/blobs/${paid.layers[0]!.digest}`;

/**
 * Whether the run in `db` has stopped: process-item.ts puts the refused manifest's item back to pending
 * right before it stops the run, so that state after the 429 marks the stop.
 */
const refusedBackToPending = (db: string) =>
  queryDataset<{ state: string }>(
    db,
    `SELECT state FROM frontier WHERE kind = 'manifest' AND key LIKE ?`,
    `%@${refused.digest}`,
  )[0]?.state === 'pending';

/** Polls `stopped` until it says so; bounded, so a regression fails the assertions instead of hanging the proxy. */
async function waitUntil(stopped: () => boolean): Promise<boolean> {
  for (let i = 0; i < 1000; i++) {
    if (stopped()) return true;
    await sleep(5);
  }
  return stopped();
}

/** `paid`'s layer, as the analyzer stored it in `db` (its status rows). */
const paidLayerStatus = (db: string) =>
  queryDataset(db, 'SELECT status FROM layers WHERE digest = ?', paid.layers[0]!.digest);

/**
 * Holds the mirror's GET of `path` (one of `paid`'s) until `whileHeld` resolves. `refused` is listed only
 * once that GET is on the wire, so the 429 surely comes while it is in flight; `refused`'s manifest GET
 * then gets Hub's pull-limit answer every time.
 */
function refuseWhileHolding(path: string, whileHeld: () => Promise<void>): void {
  const sent = signal();
  hubProxy.addRule({
    method: 'GET',
    path: /\/refused\/tags/,
    action: { kind: 'hold', until: () => sent.promise },
  });
  mirror.addRule({
    method: 'GET',
    path: REFUSED_MANIFEST,
    times: Number.POSITIVE_INFINITY,
    action: {
      kind: 'respond',
      status: 429,
      headers: { 'content-type': 'application/json' },
      body: PULL_LIMIT_BODY,
    },
  });
  mirror.addRule({
    method: 'GET',
    path: new RegExp(`^${path}$`),
    action: {
      kind: 'hold',
      until: async () => {
        sent.resolve();
        await whileHeld();
      },
    },
  });
}

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

beforeAll(async () => {
  work = tempDir('hubcrawl-pull-limit-');
  const image = (name: string) =>
    buildImage({ layers: [{ entries: [{ type: 'file', path: `etc/${name}`, content: `${name}\n` }] }] });
  paid = await image('paid');
  refused = await image('refused');
  // Pushed before the first crawl imports undici (fault-matrix.ts says why).
  await pushImage(registry, `${NS}/paid`, '1', paid);
  await pushImage(registry, `${NS}/refused`, '1', refused);
  hub = await startFakeHub({
    repos: [
      { namespace: NS, name: 'paid', pullCount: 1, tags: [fakeHubTagFor('1', paid)] },
      { namespace: NS, name: 'refused', pullCount: 1, tags: [fakeHubTagFor('1', refused)] },
    ],
  });
  hubProxy = await startFaultProxy(hub.url);
  mirror = await startFaultProxy(registry.url);
  clean = await referenceCrawl(work.newDb(), settings());
});

afterAll(async () => {
  await hubProxy?.stop();
  await mirror?.stop();
  await hub?.stop();
  work?.remove();
});

describe("a docker.io crawl meeting Hub's pull-limit 429 without quota headers", () => {
  let db: string;
  let first: Awaited<ReturnType<typeof crawlWithFaults>>;
  let second: Awaited<ReturnType<typeof crawlWithFaults>>;
  /** The mirror's log of run 1 and of the resumed run. */
  let log1: FaultProxy['log'];
  let log2: FaultProxy['log'];
  /** Whether `paid`'s manifest GET was still in flight (held by the proxy) once the run had stopped. */
  let pullInFlightAtStop = false;
  /** `paid`'s manifest item and stored manifest as run 1 left them. */
  let paidAfterRun1: { items: unknown[]; manifests: unknown[] };

  beforeAll(async () => {
    reset();
    db = work.newDb();
    // The pull is held until the run has stopped.
    refuseWhileHolding(paidManifestPath(), async () => {
      pullInFlightAtStop = await waitUntil(
        () => getsIn(mirror.log, REFUSED_MANIFEST).some((e) => e.status === 429) && refusedBackToPending(db),
      );
    });
    first = await crawlWithFaults(db, settings());
    log1 = [...mirror.log];
    paidAfterRun1 = {
      items: queryDataset(
        db,
        `SELECT state FROM frontier WHERE kind = 'manifest' AND key LIKE ?`,
        `%@${paid.digest}`,
      ),
      manifests: queryDataset(db, 'SELECT run_id FROM manifests WHERE digest = ?', paid.digest),
    };
    reset();
    second = await crawlWithFaults(db, settings());
    log2 = [...mirror.log];
  });

  it('stops the run as a spent budget does: aborted, naming the pull quota, nothing failed', () => {
    expect(first.outcome.status).toBe('aborted');
    expect(first.outcome.abortReason).toMatch(/pull quota is spent \(a 429 saying "pull rate limit"\)/);
    expect(first.itemsFailed).toBe(0);
    expect(first.http.failures).toBe(0);
  });

  it('sends the refused manifest GET once: no backoff, no retry', () => {
    expect(getsIn(log1, REFUSED_MANIFEST)).toHaveLength(1);
    expect(first.sleeps).toEqual([]);
    expect(first.http.retries).toBe(0);
  });

  it('pauses no host: a blob GET to the same registry after the 429 goes out at once', () => {
    expect(first.http.rateLimitPauses).toBe(0);
    expect(first.events.filter((e) => e.type === 'rate-limited')).toEqual([]);
    const refusedAt = log1.findIndex((e) => REFUSED_MANIFEST.test(e.path));
    const configAt = log1.findIndex((e) => e.method === 'GET' && e.path === paidConfigPath());
    expect(refusedAt).toBeGreaterThanOrEqual(0);
    expect(configAt).toBeGreaterThan(refusedAt);
    expect(log1[configAt]?.status).toBe(200);
  });

  it('lets the pull in flight at the stop finish and keeps its manifest', () => {
    expect(pullInFlightAtStop).toBe(true);
    expect(getsIn(log1, paidManifestPath()).map((e) => e.status)).toEqual([200]);
    expect(paidAfterRun1).toEqual({
      items: [{ state: 'done' }],
      manifests: [{ run_id: first.outcome.runId }],
    });
  });

  it('resumes the same run, pulls only the refused manifest, and ends with the clean dataset', () => {
    expect(second.outcome).toMatchObject({ runId: first.outcome.runId, resumed: true, status: 'completed' });
    expect(getsIn(log2, /\/manifests\//).map((e) => e.path)).toEqual([
      `/v2/${NS}/refused/manifests/${refused.digest}`,
    ]);
    expect(comparableDataset(db)).toEqual(clean);
  });
});

describe('a layer download in flight when the pull limit stops the run', () => {
  it('finishes, is analyzed and kept, and is not downloaded again by the resumed run', async () => {
    reset();
    const db = work.newDb();
    const layerPath = paidLayerPath();
    let layerInFlightAtStop = false;
    // Held until the run has stopped.
    refuseWhileHolding(layerPath, async () => {
      layerInFlightAtStop = await waitUntil(() => refusedBackToPending(db));
    });
    const first = await crawlWithFaults(db, settings());
    expect(first.outcome.status).toBe('aborted');
    expect(layerInFlightAtStop).toBe(true);
    expect(getsIn(mirror.log, layerPath).map((e) => e.status)).toEqual([200]);
    expect(paidLayerStatus(db)).toEqual([{ status: 'analyzed' }]);

    reset();
    const second = await crawlWithFaults(db, settings());
    expect(second.outcome).toMatchObject({ resumed: true, status: 'completed' });
    expect(getsIn(mirror.log, layerPath)).toEqual([]);
    expect(comparableDataset(db)).toEqual(clean);
  });
});

describe('an interrupt after the pull limit stopped the run', () => {
  it('still cuts off the layer download in flight, which the resumed run then completes', async () => {
    reset();
    const db = work.newDb();
    const layerPath = paidLayerPath();
    const interrupt = new AbortController();
    let runReturned = false;
    // Held past the budget stop; the interrupt comes then. Released after the run returns, or after 10 s:
    // a layer that was not cut off then completes, and the assertions below say so.
    refuseWhileHolding(layerPath, async () => {
      await waitUntil(() => refusedBackToPending(db));
      interrupt.abort(new Error('SIGINT'));
      for (let i = 0; i < 200 && !runReturned; i++) await sleep(50);
    });
    const first = await crawlWithFaults(db, settings(), { signal: interrupt.signal });
    runReturned = true;
    expect(first.outcome.status).toBe('aborted');
    expect(interrupt.signal.aborted).toBe(true);
    expect(paidLayerStatus(db)).toEqual([{ status: 'pending' }]);

    reset();
    const second = await crawlWithFaults(db, settings());
    expect(second.outcome).toMatchObject({ resumed: true, status: 'completed' });
    expect(getsIn(mirror.log, layerPath).map((e) => e.status)).toEqual([200]);
    expect(comparableDataset(db)).toEqual(clean);
  });
});

describe('a docker.io crawl meeting a 429 that is not the pull limit', () => {
  it.each([
    ['a bare 429 (the abuse limit)', 'Too Many Requests'],
    [
      "a registry's generic TOOMANYREQUESTS",
      '{"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests"}]}',
    ],
  ])(
    'pauses the host for Retry-After on %s, retries the manifest GET, and completes',
    async (_what, body) => {
      reset();
      mirror.addRule({
        method: 'GET',
        path: REFUSED_MANIFEST,
        action: { kind: 'respond', status: 429, headers: { 'retry-after': '7' }, body },
      });
      const db = work.newDb();
      const run = await crawlWithFaults(db, settings());
      expect(run.outcome.status).toBe('completed');
      expect(getsIn(mirror.log, REFUSED_MANIFEST).map((e) => e.status)).toEqual([429, 200]);
      const pauses = run.events.filter((e) => e.type === 'rate-limited' && e.extended);
      expect(pauses).toEqual([expect.objectContaining({ pauseMs: 7000 })]);
      expect(run.sleeps).toContain(7000);
      expect(run.http.failures).toBe(0);
      expect(comparableDataset(db)).toEqual(clean);
    },
  );
});
