/**
 * Crawl benchmark (issue 4, "Benchmark"): N images sharing one base layer in the real registry on
 * loopback; a hubcrawl crawl of them and `skopeo copy` of the same images to a local dir, side by
 * side in the same run, each through its own byte counter + fault proxy (no faults).
 *
 *   npm run build && npx tsx scripts/bench-crawl.ts [--images 50] [--base-mb 24] [--tags-per-repo 5]
 *     [--skopeo-jobs 1] [--runs 3]
 *     [--hubcrawl-arg=--layer-concurrency=4 …]
 *
 * hubcrawl runs as the built CLI (`node <launcher flags> bin/hubcrawl.js crawl --catalog …`) in a child
 * process, as a user runs it, so its peak RSS is its own; both children run under /usr/bin/time for peak RSS and
 * CPU time. skopeo copies one image after another by default, as a user scripting it would. Runs
 * alternate (hubcrawl, skopeo, hubcrawl, …) and times are medians.
 * Everything started here (registry, proxies, children, temp dirs) is stopped on exit, error or signal.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { buildBenchImages, pushBenchImages } from './bench-crawl-images.js';
import { type Meter, startMeter, summarize, type Traffic } from './bench-crawl-meter.js';
import { LAUNCHER, launcherEnv, launcherNodeFlags } from './lib/launcher.js';
import { type RunningRegistry, startRegistry } from './lib/registry.js';

const ROOT = resolve(import.meta.dirname, '..');
const MiB = 1024 * 1024;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

/** Extra crawl flags, e.g. `--hubcrawl-arg=--layer-concurrency=4` (repeatable). */
function hubcrawlExtraArgs(): string[] {
  return process.argv.filter((a) => a.startsWith('--hubcrawl-arg=')).map((a) => a.slice(15));
}

interface Timed {
  ms: number;
  /** hubcrawl only, from its info logs: spawn → "crawl run started" → "crawl run ended" → exit. */
  phases?: { startupMs: number; crawlMs: number; finishMs: number };
  cpuMs: number;
  maxRssKiB: number;
  code: number;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();
const cleanups: Array<() => Promise<void>> = [];

async function cleanup(): Promise<void> {
  // Each child leads its own process group: killing the group reaches the command under time(1) too.
  for (const c of children) {
    try {
      if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  while (cleanups.length > 0) {
    const f = cleanups.pop() as () => Promise<void>;
    await f().catch((err: unknown) => process.stderr.write(`cleanup: ${String(err)}\n`));
  }
}

/** Runs a command under /usr/bin/time; wall time measured here, peak RSS and CPU by time(1). */
async function timed(cmd: string, args: string[], timeFile: string, env = process.env): Promise<Timed> {
  const start = process.hrtime.bigint();
  const spawnedAt = Date.now();
  const child = spawn('/usr/bin/time', ['-o', timeFile, '-f', '%M %U %S', cmd, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-64_000);
  });
  const code = await new Promise<number>((res, rej) => {
    child.once('error', rej);
    child.once('close', (c) => res(c ?? 128));
  });
  children.delete(child);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const line = (await readFile(timeFile, 'utf8')).trim().split('\n').pop() ?? '';
  const [rss, user, sys] = line.split(' ').map(Number);
  const r: Timed = {
    ms,
    cpuMs: ((user ?? 0) + (sys ?? 0)) * 1000,
    maxRssKiB: rss ?? 0,
    code,
    stdout,
    stderr,
  };
  const logTime = (msg: string) => {
    const line = stderr.split('\n').find((l) => l.includes(`"msg":"${msg}"`));
    return line ? (JSON.parse(line) as { time: number }).time : undefined;
  };
  const started = logTime('crawl run started');
  const finished = logTime('crawl run ended');
  if (started !== undefined && finished !== undefined) {
    r.phases = {
      startupMs: started - spawnedAt,
      crawlMs: finished - started,
      finishMs: spawnedAt + ms - finished,
    };
  }
  return r;
}

async function runHubcrawl(meter: Meter, work: string, images: number): Promise<Timed> {
  // As `npx hubcrawl` runs it: the launcher's V8 flags and malloc settings on this Node.
  const args = [
    ...launcherNodeFlags(),
    LAUNCHER,
    'crawl',
    '--catalog',
    meter.url,
    '--db',
    join(work, 'bench.sqlite'),
    // info: the run's start and finish lines time its phases (stderr is not a TTY: no progress bar).
    '--log-level',
    'info',
    ...hubcrawlExtraArgs(),
  ];
  const r = await timed(process.execPath, args, join(work, 'time-hubcrawl'), launcherEnv());
  const crawled = Number(/: (\d+) images?,/.exec(r.stdout)?.[1] ?? -1);
  if (r.code !== 0 || crawled !== images) {
    throw new Error(`hubcrawl crawl exited ${r.code} with ${crawled} images:\n${r.stdout}\n${r.stderr}`);
  }
  // The phases are timed by two log lines: a renamed one would drop them from the results without a word.
  if (r.phases === undefined) {
    throw new Error(
      'hubcrawl logged no "crawl run started" and "crawl run ended" lines to time its phases by',
    );
  }
  return r;
}

/** skopeo copy of every image, `jobs` at a time; wall time of the whole, RSS = the largest copy's. */
async function runSkopeo(
  meter: Meter,
  work: string,
  refs: Array<{ repository: string; tag: string }>,
  jobs: number,
): Promise<Timed> {
  const start = process.hrtime.bigint();
  let next = 0;
  let cpuMs = 0;
  let maxRssKiB = 0;
  const worker = async (w: number): Promise<void> => {
    for (let i = next++; i < refs.length; i = next++) {
      const { repository, tag } = refs[i] as { repository: string; tag: string };
      const dest = join(work, 'skopeo', String(i));
      const src = `docker://${meter.host}/${repository}:${tag}`;
      const r = await timed(
        'skopeo',
        ['copy', '--quiet', '--src-tls-verify=false', src, `dir:${dest}`],
        join(work, `time-skopeo-${w}`),
      );
      if (r.code !== 0) throw new Error(`skopeo copy ${src} exited ${r.code}: ${r.stderr}`);
      cpuMs += r.cpuMs;
      maxRssKiB = Math.max(maxRssKiB, r.maxRssKiB);
    }
  };
  await mkdir(join(work, 'skopeo'), { recursive: true });
  await Promise.all(Array.from({ length: jobs }, (_, w) => worker(w)));
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  return { ms, cpuMs, maxRssKiB, code: 0, stdout: '', stderr: '' };
}

function machine(): string {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(execFileSync('cat', ['/proc/cpuinfo']).toString())?.[1];
  const skopeo = execFileSync('skopeo', ['--version']).toString().trim();
  const nproc = execFileSync('nproc').toString().trim();
  return `nproc ${nproc} (${cpus().length} CPUs), ${cpu ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}, ${skopeo}`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

interface Side {
  runs: Timed[];
  /** Traffic of the first run (every run asks for the same bytes; checked in main). */
  traffic: Traffic;
}

function table(h: Side, s: Side, expected: number, unique: number): string {
  const mib = (b: number) => (b / MiB).toFixed(1);
  const sec = (n: number) => (n / 1000).toFixed(2);
  const ratio = (a: number, b: number) => (b === 0 ? '—' : (a / b).toFixed(2));
  const [hT, sT] = [h.traffic, s.traffic];
  const med = (side: Side, f: (t: Timed) => number) => median(side.runs.map(f));
  const maxRss = (side: Side) => Math.max(...side.runs.map((r) => r.maxRssKiB)) * 1024;
  const rows: Array<[string, number, number, (n: number) => string]> = [
    ['wall time, median (s)', med(h, (r) => r.ms), med(s, (r) => r.ms), sec],
    ['CPU time user+sys, median (s)', med(h, (r) => r.cpuMs), med(s, (r) => r.cpuMs), sec],
    ['peak RSS, max of runs (MiB; skopeo: largest single copy)', maxRss(h), maxRss(s), mib],
    ['bytes downloaded, on the wire (MiB)', hT.wireBytesDown, sT.wireBytesDown, mib],
    ['layer bytes downloaded (MiB)', hT.layerBodyBytes, sT.layerBodyBytes, mib],
    ['unique layer bytes (MiB)', unique, unique, mib],
    [
      'wire bytes ÷ (unique layers + manifests + configs)',
      hT.wireBytesDown / expected,
      sT.wireBytesDown / expected,
      (n) => n.toFixed(3),
    ],
    ['HTTP requests', hT.requests, sT.requests, String],
    ['manifest GETs', hT.manifestGets, sT.manifestGets, String],
    ['manifest HEADs', hT.manifestHeads, sT.manifestHeads, String],
    ['layer blob GETs (of which repeats)', hT.layerGets, sT.layerGets, String],
    ['config blob GETs', hT.configGets, sT.configGets, String],
    ['catalog + tags/list GETs', hT.listings, sT.listings, String],
    ['/v2/ pings', hT.pings, sT.pings, String],
  ];
  const lines = ['| | hubcrawl | skopeo copy | hubcrawl ÷ skopeo |', '|---|---:|---:|---:|'];
  for (const [name, a, b, fmt] of rows) {
    const [ea, eb] = name.startsWith('layer blob GETs')
      ? [` (${hT.repeatedLayerGets})`, ` (${sT.repeatedLayerGets})`]
      : ['', ''];
    lines.push(`| ${name} | ${fmt(a)}${ea} | ${fmt(b)}${eb} | ${ratio(a, b)} |`);
  }
  const phases = h.runs.map((r) => r.phases).filter((p) => p !== undefined);
  if (phases.length > 0) {
    lines.push(
      '',
      `hubcrawl phases, median: startup (spawn → run started) ${sec(median(phases.map((p) => p.startupMs)))} s, ` +
        `crawl ${sec(median(phases.map((p) => p.crawlMs)))} s, matching + exit ${sec(median(phases.map((p) => p.finishMs)))} s; ` +
        `each run: ${h.runs.map((r) => sec(r.ms)).join(' / ')} s wall; skopeo: ${s.runs.map((r) => sec(r.ms)).join(' / ')} s wall`,
    );
  }
  return lines.join('\n');
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function main(): Promise<void> {
  const images = Number(arg('images', '50'));
  const baseMiB = Number(arg('base-mb', '24'));
  const tagsPerRepo = Number(arg('tags-per-repo', '5'));
  const jobs = Number(arg('skopeo-jobs', '1'));
  const runs = Number(arg('runs', '3'));
  if (!(images >= 1 && baseMiB >= 0 && tagsPerRepo >= 1 && jobs >= 1 && runs >= 1)) {
    throw new Error(
      'usage: bench-crawl.ts [--images N≥1] [--base-mb M≥0] [--tags-per-repo T≥1] [--skopeo-jobs J≥1] [--runs R≥1] [--hubcrawl-arg=--flag=value …]',
    );
  }
  if (!existsSync(join(ROOT, 'dist/cli/main.js')))
    throw new Error('dist/ is missing: run `npm run build` first');

  const work = await mkdtemp('/tmp/hubcrawl-bench-crawl-');
  cleanups.push(() => rm(work, { recursive: true, force: true }));
  const t0 = Date.now();
  const set = await buildBenchImages(images, baseMiB, tagsPerRepo);
  const registry: RunningRegistry = await startRegistry({ auth: 'none' });
  cleanups.push(() => registry.stop());
  await pushBenchImages(registry, set);
  const repos = new Set(set.images.map((i) => i.repository)).size;
  process.stderr.write(
    `built and pushed ${images} images in ${repos} repositories in ${Date.now() - t0} ms\n`,
  );

  const loadBefore = loadavg();
  const h: Side = { runs: [], traffic: undefined as unknown as Traffic };
  const s: Side = { runs: [], traffic: undefined as unknown as Traffic };
  // Alternating runs, so a change in the machine's load touches both sides alike.
  for (let run = 0; run < runs; run++) {
    const runDir = join(work, `run-${run}`);
    await mkdir(runDir);
    const hMeter = await startMeter(registry.url);
    cleanups.push(() => hMeter.stop());
    h.runs.push(await runHubcrawl(hMeter, runDir, images));
    const hT = summarize(hMeter.proxy.log, set, hMeter);
    await hMeter.stop();
    const sMeter = await startMeter(registry.url);
    cleanups.push(() => sMeter.stop());
    s.runs.push(await runSkopeo(sMeter, runDir, set.images, jobs));
    const sT = summarize(sMeter.proxy.log, set, sMeter);
    await sMeter.stop();
    // skopeo's copies weigh N × the image size: free the disk before the next run.
    await rm(runDir, { recursive: true, force: true });
    if (run === 0) [h.traffic, s.traffic] = [hT, sT];
    else if (hT.layerGets !== h.traffic.layerGets || hT.manifestGets !== h.traffic.manifestGets) {
      throw new Error(
        `run ${run + 1}: hubcrawl made different requests than run 1 (fresh database each run)`,
      );
    }
    process.stderr.write(
      `run ${run + 1}/${runs}: hubcrawl ${(h.runs[run] as Timed).ms.toFixed(0)} ms, skopeo ${(s.runs[run] as Timed).ms.toFixed(0)} ms\n`,
    );
  }

  let configBytes = 0;
  for (const b of set.blobs.values()) if (b.kind === 'config') configBytes += b.size;
  let manifestBytes = 0;
  for (const n of set.manifests.values()) manifestBytes += n;
  const expected = set.uniqueLayerBytes + configBytes + manifestBytes;
  const distinctLayers = [...set.blobs.values()].filter((b) => b.kind === 'layer').length;

  const extra = hubcrawlExtraArgs();
  console.log(`# crawl benchmark ${new Date().toISOString()}`);
  console.log(`machine: ${machine()}; load average ${loadBefore} before the runs, ${loadavg()} after`);
  console.log(
    `images: ${images} in ${repos} repositories (${tagsPerRepo} tags each) on one shared base layer of ${(set.base.size / MiB).toFixed(1)} MiB gzip ` +
      `(Debian fixture + ${baseMiB} MiB random files), each with 1–2 own layers; ${distinctLayers} distinct layers, ` +
      `${(set.uniqueLayerBytes / MiB).toFixed(1)} MiB; manifests ${(manifestBytes / 1024).toFixed(1)} KiB, configs ${(configBytes / 1024).toFixed(1)} KiB`,
  );
  console.log(
    `hubcrawl: node ${launcherNodeFlags().join(' ')} bin/hubcrawl.js crawl --catalog <counter> --db <fresh tmp> --log-level info${extra.length ? ` ${extra.join(' ')}` : ''} (defaults otherwise; loopback is not paced by http.requestsPerSecondPerHost)`,
  );
  console.log(
    `skopeo: skopeo copy --src-tls-verify=false docker://<counter>/repo:tag dir:<tmp>/i, ${jobs === 1 ? 'one image after another' : `${jobs} at a time`}`,
  );
  console.log(
    `runs: ${runs}, alternating hubcrawl then skopeo, each through its own byte counter + fault proxy`,
  );
  console.log(`hubcrawl said: ${(h.runs[0] as Timed).stdout.trim()}\n`);
  console.log(table(h, s, expected, set.uniqueLayerBytes));
  const hMs = median(h.runs.map((r) => r.ms));
  const sMs = median(s.runs.map((r) => r.ms));
  const rssMax = Math.max(...h.runs.map((r) => r.maxRssKiB)) * 1024;
  const targets = [
    [
      'bytes downloaded ≤ 1.02 × (unique layers + manifests + configs)',
      h.traffic.wireBytesDown <= expected * 1.02,
    ],
    ['wall time below skopeo copy', hMs < sMs],
    ['peak RSS < 300 MB', rssMax < 300e6],
  ] as const;
  console.log(`\ntargets: ${targets.map(([n, ok]) => `${ok ? 'MET' : 'MISSED'}: ${n}`).join('; ')}`);
}

const onSignal = (signal: NodeJS.Signals) => {
  process.stderr.write(`\n${signal}: stopping everything the benchmark started\n`);
  void cleanup().finally(() => process.exit(130));
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

try {
  await main();
} catch (err) {
  process.stderr.write(
    `bench-crawl failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
} finally {
  await cleanup();
}
