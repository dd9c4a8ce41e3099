/**
 * Soak run (`npx tsx scripts/soak.ts`): the real distribution registry on loopback holding 500 small
 * images that share layers, crawled by runCrawl with concurrency 16 through the fault proxy, which
 * injects faults into ~5% of requests (503, a reset before headers, 429 with Retry-After: 1, a reset
 * mid-body). Reports images/s, requests, retries, rate-limit pauses, failed items, and this process's
 * RSS sampled every 500 ms (min / median / max, and whether it stays flat). Bounded: a fixed number
 * of images and a wall-clock cap; everything it starts is stopped, everything it writes is removed.
 *
 * Options (env): SOAK_IMAGES (default 500), SOAK_FAULT_RATE (default 0.05), SOAK_MAX_MINUTES (default 10).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { builtinIocSets } from '../src/analyzer/iocs/builtin.js';
import { configSchema } from '../src/config/schema.js';
import { silentLogger } from '../src/core/log.js';
import { openDatabase } from '../src/db/open.js';
import { runCrawl } from '../src/pipeline/run.js';
import { type FaultAction, type FaultProxy, startFaultProxy } from './lib/fault-proxy.js';
import { type BuiltBlob, type BuiltImage, buildImage, buildLayer } from './lib/image-builder.js';
import { pushImage } from './lib/push.js';
import { type RunningRegistry, startRegistry } from './lib/registry.js';

const IMAGES = Number(process.env.SOAK_IMAGES ?? 500);
const FAULT_RATE = Number(process.env.SOAK_FAULT_RATE ?? 0.05);
const MAX_MINUTES = Number(process.env.SOAK_MAX_MINUTES ?? 10);
const REPOSITORIES = Math.max(1, Math.ceil(IMAGES / 10));
const SAMPLE_MS = 500;

/** Shared layers: 8 bases and 40 middles; each image adds one layer of its own. */
async function buildImages(): Promise<Array<{ repository: string; tag: string; image: BuiltImage }>> {
  const bases: BuiltBlob[] = [];
  for (let i = 0; i < 8; i++) {
    bases.push(
      await buildLayer([
        { type: 'file', path: 'etc/os-release', content: `ID=debian\nVERSION_ID="${10 + i}"\n` },
        {
          type: 'file',
          path: 'var/lib/dpkg/status',
          content: `Package: base-${i}\nVersion: 1.${i}\nStatus: install ok installed\n\n`,
        },
        {
          type: 'file',
          path: `usr/lib/x86_64-linux-gnu/liblzma.so.5.4.${i}`,
          content: Buffer.alloc(4096, i),
        },
      ]),
    );
  }
  const middles: BuiltBlob[] = [];
  for (let i = 0; i < 40; i++) {
    middles.push(
      await buildLayer([{ type: 'file', path: `opt/mid-${i}/data`, content: Buffer.alloc(2048, i) }]),
    );
  }
  const out: Array<{ repository: string; tag: string; image: BuiltImage }> = [];
  for (let i = 0; i < IMAGES; i++) {
    const image = await buildImage({
      layers: [
        bases[i % bases.length]!,
        middles[i % middles.length]!,
        { entries: [{ type: 'file', path: `srv/app-${i}`, content: `image ${i}\n` }] },
      ],
    });
    out.push({ repository: `soak/repo-${i % REPOSITORIES}`, tag: `t${i}`, image });
  }
  return out;
}

/** Runs `fn` over `items` with at most `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: n }, worker));
}

/**
 * Installs probabilistic faults: the proxy tests each rule's `path` in order, so a RegExp whose
 * `test` draws a random number turns a rule into "this fault on p of the requests" (counted).
 */
function injectFaults(proxy: FaultProxy, rate: number): Record<string, number> {
  const injected: Record<string, number> = {};
  const share: Array<[string, number, FaultAction, string?]> = [
    ['503', 0.45, { kind: 'respond', status: 503, body: 'unavailable' }],
    ['reset-before-headers', 0.3, { kind: 'reset-before-headers' }],
    ['429 Retry-After: 1', 0.1, { kind: 'respond', status: 429, headers: { 'retry-after': '1' } }],
    ['reset-mid-body', 0.15, { kind: 'reset-mid-body', afterBytes: 200 }, 'GET'],
  ];
  for (const [name, part, action, method] of share) {
    injected[name] = 0;
    const path = /^\/v2\/.+/;
    const base = path.test.bind(path);
    path.test = (s: string) => {
      if (!base(s) || Math.random() >= rate * part) return false;
      injected[name]! += 1;
      return true;
    };
    proxy.addRule({ path, times: Number.POSITIVE_INFINITY, action, ...(method ? { method } : {}) });
  }
  return injected;
}

function stats(xs: number[]): { min: number; median: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0] ?? 0, median: s[Math.floor(s.length / 2)] ?? 0, max: s[s.length - 1] ?? 0 };
}

const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'hubcrawl-soak-'));
  let registry: RunningRegistry | undefined;
  let proxy: FaultProxy | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    registry = await startRegistry({ auth: 'none', installIfMissing: process.getuid?.() === 0 });
    const images = await buildImages();
    const pushStart = Date.now();
    await pool(images, 8, async (i) => {
      await pushImage(registry!, i.repository, i.tag, i.image);
    });
    process.stdout.write(
      `pushed ${images.length} images in ${REPOSITORIES} repositories (${((Date.now() - pushStart) / 1000).toFixed(1)} s)\n`,
    );

    proxy = await startFaultProxy(registry.url);
    const injected = injectFaults(proxy, FAULT_RATE);
    const db = openDatabase(join(work, 'soak.sqlite'));
    const config = configSchema.parse({
      dockerConfig: null,
      seeds: { catalogs: [proxy.url] },
      concurrency: 16,
      layerConcurrency: 16,
      http: { maxRetries: 8, timeoutMs: 30_000, requestsPerSecondPerHost: 10_000 },
    });

    const rss: number[] = [];
    sampler = setInterval(() => rss.push(process.memoryUsage().rss), SAMPLE_MS);
    const controller = new AbortController();
    const cap = setTimeout(() => controller.abort(new Error('soak wall-clock cap')), MAX_MINUTES * 60_000);
    const start = Date.now();
    const outcome = await runCrawl(db, {
      config,
      iocSets: builtinIocSets(),
      log: silentLogger(),
      env: {},
      signal: controller.signal,
      httpOptions: { retryBaseMs: 100, retryMaxMs: 2_000 },
    }).finally(() => clearTimeout(cap));
    const seconds = (Date.now() - start) / 1000;
    clearInterval(sampler);
    sampler = undefined;

    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    const imagesRecorded = count('SELECT count(*) AS n FROM images');
    const layersAnalyzed = count("SELECT count(*) AS n FROM layers WHERE status = 'analyzed'");
    const layersFailed = count("SELECT count(*) AS n FROM layers WHERE status = 'failed'");
    db.close();
    const http = outcome.stats.http as {
      requests: number;
      retries: number;
      rateLimitPauses: number;
      rateLimitPauseMs: number;
      failures: number;
    };
    const r = stats(rss);
    const third = Math.max(1, Math.floor(rss.length / 3));
    const early = stats(rss.slice(0, third)).median;
    const late = stats(rss.slice(-third)).median;
    const growth = early > 0 ? (late - early) / early : 0;
    const totalInjected = Object.values(injected).reduce((a, b) => a + b, 0);
    const lines = [
      `date: ${new Date().toISOString()}`,
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${mib(totalmem())} RAM, Node ${process.version}`,
      `run: ${outcome.status}${outcome.abortReason ? ` (${outcome.abortReason})` : ''}`,
      `images: ${imagesRecorded} of ${images.length} in ${seconds.toFixed(1)} s → ${(imagesRecorded / seconds).toFixed(1)} images/s`,
      `layers: ${layersAnalyzed} analyzed, ${layersFailed} failed (${Math.min(8, IMAGES) + Math.min(40, IMAGES) + IMAGES} distinct expected)`,
      `requests: ${http.requests} through the proxy: ${proxy.log.length}; faults injected: ${totalInjected} (${((100 * totalInjected) / Math.max(1, proxy.log.length)).toFixed(1)}%: ${Object.entries(
        injected,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
      `retries: ${http.retries}; rate-limit pauses: ${http.rateLimitPauses} (${(http.rateLimitPauseMs / 1000).toFixed(1)} s); failed requests: ${http.failures}; failed items: ${outcome.failedItems}`,
      `RSS (${rss.length} samples every ${SAMPLE_MS} ms): min ${mib(r.min)}, median ${mib(r.median)}, max ${mib(r.max)}; median of the first third ${mib(early)}, of the last third ${mib(late)} (${(growth * 100).toFixed(1)}%) → ${growth <= 0.15 ? 'flat (no growth past 15%; a fall is the GC catching up)' : 'GROWING'}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const complete = imagesRecorded === images.length && layersFailed === 0 && outcome.failedItems === 0;
    return complete ? 0 : 1;
  } finally {
    if (sampler) clearInterval(sampler);
    await proxy?.stop();
    await registry?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 3;
  },
);
