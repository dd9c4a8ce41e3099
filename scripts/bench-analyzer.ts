/**
 * Analyzer benchmark (issue 3, "Speed and memory"): a real Debian rootfs layer through hubcrawl's
 * analyzeLayer, side by side in the same run with `gzip -dc | tar -t` (and `zstd -dc | tar -t`), and
 * with a "verifying" baseline that also runs `openssl dgst -sha256` over the blob beside them, as the
 * analyzer must verify the blob's digest.
 *
 *   npx tsx scripts/bench-analyzer.ts [--inflate-mb 1024] [--runs 3] [--suite bookworm]
 *     [--variants default,default@,napi/main] [--no-hash-all] [--only zstd] [--warm] [--unprepared]
 *     [--chunk-kib 1024]
 *
 * Builds once into .cache/bench (git-ignored): `debootstrap --variant=minbase <suite>` (needs root
 * and the Debian mirror that debootstrap resolves by default), then `tar -C rootfs -c .`, gzip and
 * zstd copies. `--inflate-mb N` adds N MiB of random-content files to the layer, to measure peak
 * RSS on a large layer. The analyzer runs in a child process so its peak RSS is its own; that
 * child is this script bundled by esbuild and run by plain node, as an installed hubcrawl runs
 * compiled JS (tsx's loader alone adds ~35 MiB of RSS). Wall time and CPU time are both reported:
 * on a busy machine the CPU ratio is the steadier figure.
 *
 * `--variants` measures the zstd layer once per listed configuration: `<zstdDecoder>/<digestThread>`
 * (napi|cli|auto / main|worker), or `default` for analyzeLayer's own choice. The analyzer's CPU
 * time then counts its threads and, for `cli`, the zstd child (its rusage), as the baseline's
 * counts both of its processes. Children run as `npx hubcrawl` does, with the launcher's V8 flags
 * and GLIBC_TUNABLES (its exec line in bin/hubcrawl.js; a GLIBC_TUNABLES of your own is appended to the
 * latter, and an empty one turns it off); a variant ending in `@<v8-flag>` (repeatable, without the leading dashes:
 * `default@initial-heap-size=96`) runs with those flags instead, `default@` with no V8 flags (it keeps GLIBC_TUNABLES). Baseline and
 * variants are interleaved run by run, so a change in the machine's load hits them alike.
 *
 * Each child times its first analysis (cold: the JIT has compiled nothing yet, and every buffer the
 * input is read into is memory the process has not touched before); `--warm` times the second, as
 * every later layer of a crawl runs. Children call prepareAnalyzer at start as a crawl does
 * (`--unprepared`: not). The layer's digest comes from the parent, as a manifest gives it. The file is
 * read in 1 MiB chunks (`--chunk-kib`); "input read alone" is a child that only reads it, the share of
 * the analyzer's time that is the input itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DigestThread } from '../src/analyzer/digest-worker.js';
import type { LayerFacts } from '../src/analyzer/facts.js';
import { compileRules } from '../src/analyzer/iocs/compile.js';
import { loadIocSetFile } from '../src/analyzer/iocs/load.js';
import { type AnalyzeOptions, analyzeLayer, prepareAnalyzer } from '../src/analyzer/layer-stream.js';
import type { ZstdDecoder } from '../src/analyzer/zstd.js';
import { findOnPath } from '../src/core/find-on-path.js';
import { launcherEnv, launcherNodeFlags } from './lib/launcher.js';

// The child runs from a bundle in .cache/bench with cwd = the repo, so paths hang off cwd.
const ROOT = resolve(process.cwd());
const CACHE = join(ROOT, '.cache/bench');
const MiB = 1024 * 1024;

interface ChildResult {
  ms: number;
  cpuMs: number;
  /** CPU of the main thread alone: what two layers analyzed at once in a crawl must share. */
  mainCpuMs: number;
  maxRssMiB: number;
  /** Minor page faults during the timed analysis: fresh memory, slow to touch on some VMs (docs/benchmarks.md). */
  pageFaults: number;
  entries: number;
  uncompressedBytes: number;
  files: number;
  packages: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

/** `napi/worker` → the options it names; `default` → none (analyzeLayer decides). */
function variantOptions(variant: string): Pick<AnalyzeOptions, 'zstdDecoder' | 'digestThread'> {
  if (variant === 'default') return {};
  const [zstdDecoder, digestThread] = variant.split('/') as [ZstdDecoder | 'auto', DigestThread];
  return { zstdDecoder, digestThread };
}

/**
 * Child mode: analyze one file and print timings and peak RSS as JSON. `warm`: analyze it once first,
 * untimed, as a crawl's later layers run (native addon loaded, analyzer code compiled by the JIT).
 */
async function child(file: string, hashAll: boolean, variant: string, warm: boolean): Promise<void> {
  // As a crawl does when it starts; here the digest and the IOC sets below stand for its first requests.
  // Not for the read-only child: a worker booting would share the two cores with the read it times.
  if (!UNPREPARED && variant !== READ_ONLY) prepareAnalyzer();
  // The parent passes the digest, as a manifest gives it: hashing the file here would read it through
  // fresh buffers that the process then reuses, and the timed analysis would not be a first layer.
  const given = arg('digest', '');
  const digest = given !== '' ? (given as `sha256:${string}`) : await fileDigest(file);
  const iocDir = join(ROOT, 'iocs');
  const sets = await Promise.all(
    readdirSync(iocDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => loadIocSetFile(join(iocDir, f))),
  );
  const rules = hashAll ? compileRules([], { hashAllFiles: true }) : compileRules(sets);
  const source = () => createReadStream(file, { highWaterMark: CHUNK_KIB * 1024 });
  const analyze: () => Promise<Counted> =
    variant === READ_ONLY
      ? () => readOnly(source())
      : () => analyzeLayer(source(), { rules, expectedDigest: digest, ...variantOptions(variant) });
  if (warm) await analyze();
  const faults0 = process.resourceUsage().minorPageFault;
  const cpu0 = process.cpuUsage();
  const kids0 = childrenCpuMs();
  const main0 = mainThreadCpuMs();
  const start = process.hrtime.bigint();
  const facts = await analyze();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  // process.cpuUsage covers every thread of this process (the digest worker too).
  const cpu = process.cpuUsage(cpu0);
  const result: ChildResult = {
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000 + (childrenCpuMs() - kids0),
    mainCpuMs: mainThreadCpuMs() - main0,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    pageFaults: process.resourceUsage().minorPageFault - faults0,
    entries: facts.entryCount,
    uncompressedBytes: facts.uncompressedBytes,
    files: facts.files.length,
    packages: facts.packages.length,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/**
 * The child's source read to its end and nothing else: how much of an analysis is the input itself.
 * A process's first pass over its input is slow where fresh memory is (docs/benchmarks.md, "fresh
 * memory"), and `zstd -dc` reading into one reused buffer never pays that.
 */
const READ_ONLY = 'read-only';

/** What the child reports of an analysis. */
type Counted = Pick<LayerFacts, 'entryCount' | 'uncompressedBytes' | 'files' | 'packages'>;

async function readOnly(source: AsyncIterable<Uint8Array>): Promise<Counted> {
  for await (const _ of source) {
    // Only the reading is timed.
  }
  return { entryCount: 0, uncompressedBytes: 0, files: [], packages: [] };
}

/** user + sys of this process's waited-for children (the zstd decoder), from /proc/self/stat. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // cutime and cstime are fields 16 and 17 of stat(5); fields here start at field 3.
  const ticks = Number(fields[13]) + Number(fields[14]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/** user + sys of the main thread only (its task's stat; Node 20 has no threadCpuUsage). */
function mainThreadCpuMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** The digest a registry would give us; computed before the timed run, as the manifest does. */
async function fileDigest(file: string): Promise<`sha256:${string}`> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: MiB })) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

function sh(cmd: string): void {
  execFileSync('sh', ['-c', cmd], { stdio: 'inherit' });
}

/** Stops before any work if a program the benchmark runs is missing. */
function requireTools(names: string[]): void {
  const missing = names.filter((n) => findOnPath(n, process.env.PATH ?? '') === null);
  // Each of them comes in the Debian package of the same name.
  if (missing.length > 0)
    throw new Error(
      `the analyzer benchmark needs ${missing.join(', ')}: apt-get install ${missing.join(' ')}`,
    );
}

function buildLayers(suite: string, inflateMiB: number): { name: string; files: Record<string, string> } {
  mkdirSync(CACHE, { recursive: true });
  const rootfs = join(CACHE, 'rootfs');
  const needsRootfs = !existsSync(join(rootfs, 'var/lib/dpkg/status'));
  if (needsRootfs && process.getuid?.() !== 0)
    throw new Error('debootstrap needs root: run the benchmark as root once to build the cache');
  requireTools(['tar', 'gzip', 'zstd', 'time', 'openssl', ...(needsRootfs ? ['debootstrap'] : [])]);
  if (needsRootfs) {
    console.error(`building ${rootfs} with debootstrap --variant=minbase ${suite} …`);
    sh(`debootstrap --variant=minbase ${suite} ${rootfs}`);
  }
  const name = inflateMiB > 0 ? `layer-${inflateMiB}m` : 'layer';
  const tar = join(CACHE, `${name}.tar`);
  if (!existsSync(tar)) {
    let extra = '';
    if (inflateMiB > 0) {
      const filler = join(CACHE, `filler-${inflateMiB}m`);
      mkdirSync(join(filler, 'opt/filler'), { recursive: true });
      for (let i = 0; i < inflateMiB; i += 8) {
        const f = join(filler, `opt/filler/blob-${i}`);
        if (!existsSync(f)) sh(`head -c ${8 * MiB} /dev/urandom > ${f}`);
      }
      extra = ` -C ${filler} ./opt`;
    }
    console.error(`writing ${tar} …`);
    // debootstrap leaves the downloaded .debs in the apt cache; image builds delete them.
    sh(`tar -cf ${tar} --exclude='./var/cache/apt/archives/*.deb' -C ${rootfs} .${extra}`);
  }
  const gz = `${tar}.gz`;
  const zst = `${tar}.zst`;
  if (!existsSync(gz)) sh(`gzip -6 -c ${tar} > ${gz}`);
  if (!existsSync(zst)) sh(`zstd -q -3 -c ${tar} > ${zst}`);
  return { name, files: { gzip: gz, zstd: zst } };
}

/** Wall and CPU time (user + sys of the shell and the pipeline it waited for) of a shell command. */
function timeShell(cmd: string): { ms: number; cpuMs: number } {
  const r = spawnSync('time', ['-f', '%e %U %S', 'sh', '-c', cmd], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${cmd} failed with ${r.status}: ${r.stderr}`);
  const [wall, user, sys] = (r.stderr.trim().split('\n').pop() as string).split(' ').map(Number) as [
    number,
    number,
    number,
  ];
  return { ms: wall * 1000, cpuMs: (user + sys) * 1000 };
}

/** This script bundled to plain JS, so the measured child carries no TypeScript loader. */
function bundleChild(): string {
  const out = join(CACHE, 'bench-analyzer-child.mjs');
  execFileSync(join(ROOT, 'node_modules/.bin/esbuild'), [
    fileURLToPath(import.meta.url),
    '--bundle',
    '--platform=node',
    '--format=esm',
    '--packages=external',
    '--log-level=warning',
    `--outfile=${out}`,
  ]);
  return out;
}

let childScript = '';
/** Each layer file's digest, computed once by the parent. */
const digests = new Map<string, string>();
const WARM = process.argv.includes('--warm');
/** Size of the chunks the file is read in: 1 MiB by default; 64 for what undici hands over on loopback. */
const CHUNK_KIB = Number(arg('chunk-kib', '1024'));
const UNPREPARED = process.argv.includes('--unprepared');

/**
 * `napi/main@initial-heap-size=96` → the variant and the V8 flags its child runs with
 * (`--initial-heap-size=96`). Without `@`, the launcher's own flags (its exec line in bin/hubcrawl.js), as
 * `npx hubcrawl` runs; a bare `@` (`default@`) runs with none.
 */
function splitVariant(variant: string): { options: string; nodeFlags: string[] } {
  const [options, ...flags] = variant.split('@');
  const nodeFlags = flags.length === 0 ? launcherNodeFlags() : flags.filter(Boolean).map((f) => `--${f}`);
  return { options: options as string, nodeFlags };
}

function runChild(file: string, hashAll: boolean, variant = 'default'): ChildResult {
  const { options, nodeFlags } = splitVariant(variant);
  const args = [...nodeFlags, childScript, '--child', file, '--variant', options];
  const digest = digests.get(file);
  if (digest !== undefined) args.push('--digest', digest);
  if (hashAll) args.push('--hash-all');
  if (WARM) args.push('--warm');
  if (UNPREPARED) args.push('--unprepared');
  args.push('--chunk-kib', String(CHUNK_KIB));
  const r = spawnSync(process.execPath, args, {
    cwd: ROOT,
    env: launcherEnv(),
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`analyzer child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as ChildResult;
}

function idleRssMiB(): string {
  const r = spawnSync(process.execPath, ['-e', 'console.log(process.resourceUsage().maxRSS)'], {
    encoding: 'utf8',
  });
  return (Number(r.stdout.trim()) / 1024).toFixed(0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const childFile = arg('child', '');
  if (childFile !== '') {
    return child(childFile, process.argv.includes('--hash-all'), arg('variant', 'default'), WARM);
  }

  const osRelease = readFileSync('/etc/os-release', 'utf8');
  const suite = arg('suite', /^VERSION_CODENAME=(.*)$/m.exec(osRelease)?.[1] ?? 'bookworm');
  const inflate = Number(arg('inflate-mb', '0'));
  const runs = Number(arg('runs', '3'));
  const { name, files } = buildLayers(suite, inflate);
  childScript = bundleChild();
  for (const file of Object.values(files)) digests.set(file, await fileDigest(file));
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  console.log(`# analyzer benchmark ${new Date().toISOString()}`);
  console.log(
    `machine: ${cpus().length} CPUs (nproc ${execFileSync('nproc').toString().trim()}), ${cpu}, node ${process.version}`,
  );
  console.log(
    `analyzer child: node ${launcherNodeFlags().join(' ')}, GLIBC_TUNABLES=${launcherEnv().GLIBC_TUNABLES} (the launcher's) unless a variant sets its own flags; input read in ${CHUNK_KIB} KiB chunks; ${WARM ? 'warm: the timed analysis is the second of its process' : 'cold: the timed analysis is the first of its process'}; ${UNPREPARED ? 'unprepared (no prepareAnalyzer call)' : 'prepareAnalyzer called at start, as a crawl does'}`,
  );
  console.log(
    `layer: ${name} from debootstrap --variant=minbase ${suite}${inflate ? ` + ${inflate} MiB random files` : ''}; median of ${runs} runs\n`,
  );
  console.log(
    '| layer | compressed MiB | uncompressed MiB | entries | baseline wall s | analyzer wall s | wall ratio | verifying baseline wall s | ratio to it | baseline CPU s | analyzer CPU s | CPU ratio | analyzer main-thread CPU s | analyzer MB/s in | entries/s | peak RSS MiB | page faults | input read alone s | hash-all wall s |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const variants = arg('variants', 'default').split(',');
  const hashAll = !process.argv.includes('--no-hash-all');
  const only = arg('only', '');
  for (const [compression, file] of Object.entries(files)) {
    if (only !== '' && only !== compression) continue;
    const size = statSync(file).size;
    const tool = compression === 'gzip' ? 'gzip -dc' : 'zstd -dc';
    const baseline = `${tool} ${file} | tar -t > /dev/null`;
    // The same, plus the blob's sha256 beside it: the work the target counts for the analyzer (digest
    // verification) done by the shell's tools too, on the other core. OpenSSL, not coreutils' sha256sum:
    // Debian's sha256sum has no SHA-NI and takes 4-5x as long, which would flatter the analyzer.
    const verifying = `openssl dgst -sha256 ${file} > /dev/null & ${baseline}; wait`;
    // The decoder and digest choices only matter for zstd; gzip runs analyzeLayer's defaults, under each
    // variant's V8 flags.
    const mine =
      compression === 'zstd'
        ? variants
        : [...new Set(variants.map((v) => ['default', ...v.split('@').slice(1)].join('@')))];
    timeShell(baseline); // warm the page cache
    const base: Array<{ ms: number; cpuMs: number }> = [];
    const verified: number[] = [];
    const ana = new Map<string, ChildResult[]>(mine.map((v) => [v, []]));
    const all: number[] = [];
    const readAlone: number[] = [];
    for (let i = 0; i < runs; i++) {
      base.push(timeShell(baseline));
      verified.push(timeShell(verifying).ms);
      for (const v of mine) ana.get(v)?.push(runChild(file, false, v));
      if (hashAll) all.push(runChild(file, true).ms);
      readAlone.push(runChild(file, false, READ_ONLY).ms);
    }
    const bw = median(base.map((r) => r.ms));
    const bc = median(base.map((r) => r.cpuMs));
    const vw = median(verified);
    const sec = (ms: number) => (ms / 1000).toFixed(2);
    for (const [v, rs] of ana) {
      const aw = median(rs.map((r) => r.ms));
      const ac = median(rs.map((r) => r.cpuMs));
      const am = median(rs.map((r) => r.mainCpuMs));
      const first = rs[0] as ChildResult;
      const rss = Math.max(...rs.map((r) => r.maxRssMiB));
      const faults = median(rs.map((r) => r.pageFaults));
      const label = `${name}.tar.${compression === 'gzip' ? 'gz' : 'zst'}${v === 'default' ? '' : ` (${v})`}`;
      console.log(
        `| ${label} | ${(size / MiB).toFixed(1)} | ${(first.uncompressedBytes / MiB).toFixed(1)} | ${first.entries} | ${sec(bw)} | ${sec(aw)} | ${(aw / bw).toFixed(2)} | ${sec(vw)} | ${(aw / vw).toFixed(2)} | ${sec(bc)} | ${sec(ac)} | ${(ac / bc).toFixed(2)} | ${sec(am)} | ${(size / MiB / (aw / 1000)).toFixed(1)} | ${Math.round(first.entries / (aw / 1000))} | ${rss.toFixed(0)} | ${faults} | ${sec(median(readAlone))} | ${hashAll ? sec(median(all)) : '–'} |`,
      );
    }
  }
  console.log(
    `\n(an idle \`node -e\` peaks at ${idleRssMiB()} MiB RSS here, for scale; files recorded with the built-in rules: ${runChild(files.gzip as string, false).files}; baseline = \`gzip -dc | tar -t > /dev/null\` / \`zstd -dc | tar -t > /dev/null\`; verifying baseline = the same with \`openssl dgst -sha256\` of the blob in the background)`,
  );
}

await main();
