/**
 * One pass over a layer blob: digest verification → decompression chosen by magic bytes → tar →
 * per-entry hooks (whiteouts, candidate hashing, signatures, dpkg and os-release capture).
 * Nothing is written to disk and memory stays bounded by the limits whatever the layer size.
 */
import { appendAll } from '../core/arrays.js';
import type { Digest } from '../core/digest.js';
import { CorruptInputError, DigestMismatchError, HubcrawlError, LimitExceededError } from '../core/errors.js';
import { decompressInto, detectCompression, resolveZstdDecoder, SourceReader } from './decompress.js';
import { type DigestThread, type LayerDigest, layerDigest, prestartDigestWorker } from './digest-worker.js';
import { DirectoryOrder } from './dir-order.js';
import { parseMd5sumsBytes } from './dpkg/md5sums.js';
import { parseDpkgStatus } from './dpkg/status.js';
import type { Compression, FileFact, LayerFacts, SignatureHitFact } from './facts.js';
import { CaptureBuffer, FileHasher } from './file-hasher.js';
import type { CompiledRules } from './iocs/compile.js';
import { LayerSymlinks } from './layer-symlinks.js';
import { type AnalyzerLimits, checkInflation, resolveLimits, zstdWindowLog } from './limits.js';
import { parseOsRelease } from './os-release.js';
import { normalizeTarPath, whiteoutOf } from './paths.js';
import { SignatureScanner } from './signatures.js';
import { type TarEntry, type TarEntrySink, TarParser, type TarVisitor } from './tar.js';
import { decodedTarNameLength } from './tar-name.js';
import { preloadZstdNapi, type ZstdDecoder } from './zstd.js';

/**
 * Version of what the facts mean. Bump it whenever a change would make the same layer yield
 * different facts (new capture, different path normalization…); it is stored with every layer, and a
 * bump makes the next crawl download and analyze every layer again (blob GETs, not counted pulls).
 * 4: tar names and ends as Go's archive/tar reads them, names that are not UTF-8 kept distinct
 * (tar-name.ts), dpkg status paragraphs as dpkg splits them, zstd after a leading skippable frame.
 * 5: a member is recorded where an unpacker writes it, through the symlinks its layer made before it,
 * and a hardlink's target is found the same way (layer-symlinks.ts); md5sums paths decoded as tar names;
 * a hardlink whose bytes were not recorded keeps its target (FileFact.linkTarget).
 * 6: every symlink the layer leaves is kept (LayerFacts.symlinks), so that matching can resolve an upper
 * layer's members through a lower layer's links (iocs/lower-links.ts).
 * 7: every directory entry is kept (LayerFacts.dirs): one replaces a lower layer's symlink or file at its
 * path, which matching could only guess at before.
 */
export const ANALYZER_VERSION = '7';

export interface AnalyzeOptions {
  rules: CompiledRules;
  limits?: Partial<AnalyzerLimits>;
  /** Verify the compressed bytes as they stream; a mismatch rejects with DigestMismatchError. */
  expectedDigest?: Digest;
  /** What the blob is, for error messages (`blob registry/repo@sha256:…`); default 'layer blob'. */
  blobName?: string;
  signal?: AbortSignal;
  /**
   * zstd decoder: 'napi' (the default, zstd-napi on this thread), 'worker' (zstd-napi on a worker
   * thread: less main-thread CPU, more CPU and RSS overall) or 'cli' (the `zstd` binary as a child
   * process, independent of the native addon; UnsupportedError when it is not on PATH). 'auto' is
   * 'cli' when the binary is on PATH, else 'napi'. All yield the same facts; docs/benchmarks.md
   * (Analyzer) has the measurements behind the default.
   */
  zstdDecoder?: ZstdDecoder | 'auto';
  /**
   * Where the digest of the compressed bytes is computed: 'worker' (a worker thread, overlapping
   * with decoding and parsing), 'main', or 'auto' (a worker once the blob passes 4 MiB). Defaults
   * to 'auto' for zstd, whose decoder runs on this thread, and 'main' for gzip (already inflated
   * on the libuv pool, so this thread has room for the digest) and plain tars.
   */
  digestThread?: DigestThread;
}

/**
 * Sets up now what the first layer would otherwise set up while it streams: zstd-napi loaded and a
 * digest worker booting on the other core. A crawl calls it as it starts, so this overlaps the
 * requests that come before any layer (docs/benchmarks.md has what it saves).
 */
export function prepareAnalyzer(): void {
  preloadZstdNapi();
  prestartDigestWorker();
}

/**
 * Analyzes one layer blob in a single streaming pass; a malformed or truncated archive rejects with
 * a typed error. What the bytes alone cannot prove is that the blob is whole: like Go's
 * archive/tar, the tar reader takes an end at a header boundary as the end of the archive, so a
 * plain tar cut after a member, a gzip blob cut after a member or a zstd blob cut after a frame
 * reads as a complete, smaller layer. Completeness there is proved by `expectedDigest`: given it,
 * such a blob rejects with DigestMismatchError. The pipeline always passes it; without it, the facts
 * describe the bytes read, which may be a prefix of the layer.
 */
export async function analyzeLayer(
  source: AsyncIterable<Uint8Array>,
  options: AnalyzeOptions,
): Promise<LayerFacts> {
  const limits = resolveLimits(options.limits);
  const reader = new SourceReader(source, options.signal);
  let digest: LayerDigest | null = null;
  try {
    const head = await reader.peek(6);
    const compression: Compression = detectCompression(
      head.length === 1 ? (head[0] as Uint8Array) : concat(head),
    );
    if (options.expectedDigest !== undefined) {
      const where = options.digestThread ?? (compression === 'zstd' ? 'auto' : 'main');
      digest = layerDigest(options.expectedDigest, options.blobName ?? 'layer blob', where);
    }
    await reader.attachDigest(digest);
    const collector = new FactCollector(options.rules, limits);
    const parser = new TarParser(collector, limits);
    let uncompressed = 0;
    /** The digest is checked once: a second verify() would ask a worker that already answered. */
    let verifying = false;
    try {
      await decompressInto(
        compression,
        reader.iterable(head),
        (chunk) => {
          uncompressed += chunk.length;
          checkInflation(reader.compressedBytes, uncompressed, limits);
          parser.push(chunk);
        },
        {
          signal: options.signal,
          complete: () => parser.finished,
          zstd: compression === 'zstd' ? resolveZstdDecoder(options.zstdDecoder) : undefined,
          zstdWindowLog: zstdWindowLog(limits.maxZstdWindowBytes),
        },
      );
      // Bytes after the archive (or after a decoder stopped on trailing garbage) still count for the digest.
      await reader.drain();
      verifying = true;
      await digest?.verify();
      parser.end();
    } catch (err) {
      // A blob read to its end whose digest is wrong was changed on the way: that, not the decoder's or
      // the tar parser's complaint about its last bytes, is what the dataset must record.
      if (digest !== null && reader.ended && !verifying) {
        const mismatch = await Promise.resolve(digest.verify()).then(
          () => null,
          (e: unknown) => (e instanceof DigestMismatchError ? e : null),
        );
        if (mismatch !== null) throw mismatch;
      }
      throw err;
    }
    return {
      compression,
      compressedBytes: reader.compressedBytes,
      uncompressedBytes: uncompressed,
      entryCount: parser.entryCount,
      ...collector.result(),
      selection: options.rules.fingerprint,
    };
  } finally {
    // Destroys the source when we stop early; a no-op once it was read to the end.
    reader.close();
    // The digest worker is ended, or parked for the next layer, by the time the caller hears back.
    await digest?.close();
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return Buffer.concat(chunks);
}

type CaptureKind = 'dpkg-status' | 'md5sums' | 'os-release';

const DPKG_STATUS_D = '/var/lib/dpkg/status.d/';
const DPKG_INFO = '/var/lib/dpkg/info/';
const OS_RELEASE = new Set(['/etc/os-release', '/usr/lib/os-release', '/etc/debian_version']);

/** Files always captured and parsed, whatever the rules say. */
function captureKind(path: string): CaptureKind | null {
  if (path === '/var/lib/dpkg/status') return 'dpkg-status';
  if (OS_RELEASE.has(path)) return 'os-release';
  if (path.startsWith(DPKG_STATUS_D) && !path.includes('/', DPKG_STATUS_D.length)) {
    // Distroless keeps `<pkg>` paragraphs and `<pkg>.md5sums` lists side by side in status.d.
    return path.endsWith('.md5sums') ? 'md5sums' : 'dpkg-status';
  }
  if (path.startsWith(DPKG_INFO) && path.endsWith('.md5sums') && !path.includes('/', DPKG_INFO.length)) {
    return 'md5sums';
  }
  return null;
}

interface Recorded {
  fact: FileFact;
  hits: SignatureHitFact[];
}

/**
 * What maxFactBytes counts for one record the facts keep (a file, directory, symlink, whiteout, signature
 * hit, package or md5sums line) beside its characters: its object and strings' overhead. Measured: 3.4 million md5sums
 * lines, 120 MiB of text, took the analyzer to 967 MiB RSS, about 250 bytes a line of 36 characters.
 */
export const FACT_RECORD_BYTES = 200;

/**
 * How many records a captured text at most adds to the facts: a dpkg status one per paragraph (blank-line
 * separated), an os-release file one. An md5sums list is counted from its bytes (linesIn).
 */
function recordsIn(kind: Exclude<CaptureKind, 'md5sums'>, text: string): number {
  if (kind !== 'dpkg-status') return 1;
  let count = 1;
  for (let i = text.indexOf('\n\n'); i !== -1; i = text.indexOf('\n\n', i + 2)) count++;
  return count;
}

/** The lines of an md5sums list, at most one record each: its newline bytes and one. */
function linesIn(bytes: Buffer): number {
  let count = 1;
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) count++;
  return count;
}

/** The per-entry hooks: turns tar entries into facts. */
class FactCollector implements TarVisitor {
  private readonly files: FileFact[] = [];
  private readonly packages: LayerFacts['packages'] = [];
  private readonly md5sums: LayerFacts['md5sums'] = [];
  private readonly osRelease: LayerFacts['osRelease'] = [];
  private readonly whiteouts: LayerFacts['whiteouts'] = [];
  private readonly signatureHits: SignatureHitFact[] = [];
  /** Recorded files by path, so a hardlink to one can be recorded with the same hashes. */
  private readonly byPath = new Map<string, Recorded>();
  private readonly symlinks = new LayerSymlinks();
  /** Where the directory entries landed: a Set, as an archive may list a directory more than once. */
  private readonly dirs = new Set<string>();
  /** Those listed after a member below them (dir-order.ts). */
  private readonly lateDirs = new Set<string>();
  private readonly order = new DirectoryOrder();
  /** The memory the facts hold so far, estimated as maxFactBytes counts it (countHeld). */
  private factBytes = 0;

  constructor(
    private readonly rules: CompiledRules,
    private readonly limits: AnalyzerLimits,
  ) {}

  onEntry(entry: TarEntry): TarEntrySink | null {
    // Where an unpacker writes it: through the symlinks this layer made before it (layer-symlinks.ts).
    const path = this.symlinks.landing(normalizeTarPath(entry.name));
    const whiteout = whiteoutOf(path);
    if (entry.type === 'directory' && whiteout === null) this.recordDirectory(path);
    this.order.saw(path);
    if (whiteout === 'ignore') return null;
    if (whiteout !== null) {
      this.countHeld(path, whiteout.path.length);
      this.whiteouts.push(whiteout);
      return null;
    }
    if (entry.type === 'symlink') this.countHeld(path, path.length + entry.linkname.length);
    this.symlinks.landed(path, entry.type === 'symlink' ? entry.linkname : null);
    if (entry.type === 'hardlink') {
      const target = this.symlinks.landing(normalizeTarPath(entry.linkname));
      // Its target was reached through whatever stood above it then: a directory listed later is late.
      this.order.saw(target);
      this.recordHardlink(path, target, entry.mode);
      return null;
    }
    const watched = (entry.type === 'file' || entry.type === 'symlink') && this.rules.isWatchedPath(path);
    if (entry.type !== 'file') {
      if (watched) this.recordPresence(path, 0, entry.mode);
      return null;
    }
    const capture = captureKind(path);
    if (capture === null && !this.rules.isCandidate(path, entry.size)) {
      if (watched) this.recordPresence(path, entry.size, entry.mode);
      return null;
    }
    if (capture !== null && entry.size > this.limits.maxCaptureBytes) {
      throw new LimitExceededError(
        'maxCaptureBytes',
        entry.size,
        `${path} is ${entry.size} bytes, more than maxCaptureBytes (${this.limits.maxCaptureBytes}); refusing to parse it and the layer`,
      );
    }
    const hashable = entry.size <= this.limits.maxHashBytesPerFile;
    if (!hashable && capture === null) {
      // Too large to hash: record that it is there (it may hide a lower layer's file) and read nothing.
      this.recordPresence(path, entry.size, entry.mode);
      return null;
    }
    const sigs = hashable ? this.rules.signatureRulesFor(path) : [];
    return new EntryWork(
      path,
      entry,
      hashable ? new FileHasher() : null,
      sigs.length > 0 ? new SignatureScanner(sigs) : null,
      capture === null ? null : new CaptureBuffer(path, this.limits.maxCaptureBytes),
      (work) => this.finishEntry(work, capture),
    );
  }

  /** A directory entry: once, and apart when something below it came first (LayerFacts.lateDirs). */
  private recordDirectory(path: string): void {
    if (path === '/' || this.dirs.has(path) || this.lateDirs.has(path)) return;
    this.countHeld(path, path.length);
    (this.order.seenBelow(path) ? this.lateDirs : this.dirs).add(path);
  }

  /** A file (or symlink, size 0) recorded without its bytes: only that the path exists in this layer. */
  private recordPresence(path: string, size: number, mode: number): void {
    const fact: FileFact = { path, size, mode: mode & 0o7777, sha256: null, md5: null };
    this.countHeld(path, path.length);
    this.files.push(fact);
    this.byPath.set(path, { fact, hits: [] });
  }

  private finishEntry(work: EntryWork, capture: CaptureKind | null): void {
    const hashes = work.hasher?.digest() ?? { sha256: null, md5: null };
    const fact: FileFact = {
      path: work.path,
      size: work.entry.size,
      mode: work.entry.mode & 0o7777,
      ...hashes,
    };
    const hits = (work.scanner?.finish() ?? []).map((h) => ({
      path: work.path,
      scannedPath: work.path,
      ...h,
    }));
    // The file, its hashes' characters, and each signature hit.
    this.countHeld(work.path, work.path.length + (hashes.sha256 === null ? 0 : 96), 1 + hits.length);
    this.files.push(fact);
    appendAll(this.signatureHits, hits);
    this.byPath.set(work.path, { fact, hits });
    if (capture === null || work.capture === null) return;
    if (capture === 'md5sums') this.parseMd5sumsCapture(work.path, work.capture.data());
    else this.parseCapture(capture, work.path, work.capture.text());
  }

  private parseCapture(kind: Exclude<CaptureKind, 'md5sums'>, path: string, text: string): void {
    // What it lists stays in the facts: about the text, and a record per package. Counted before
    // parsing, so that a database too long fails the layer before its records are built.
    this.countHeld(path, text.length, recordsIn(kind, text));
    this.parsing(path, () => {
      if (kind === 'dpkg-status') appendAll(this.packages, parseDpkgStatus(text, path));
      else this.osRelease.push(parseOsRelease(text, path));
    });
  }

  /**
   * An md5sums list lists paths, decoded as the tar names they are meant to meet. It is counted as that
   * text (its length, a record per line) before parsing, so that a list too long fails the layer before
   * its millions of records are built, and read from the bytes, so that the text is never built.
   */
  private parseMd5sumsCapture(path: string, bytes: Buffer): void {
    this.countHeld(path, decodedTarNameLength(bytes), linesIn(bytes));
    this.parsing(path, () => appendAll(this.md5sums, parseMd5sumsBytes(bytes, path)));
  }

  /** Runs a captured file's parser; what it throws that is not ours becomes a CorruptInputError. */
  private parsing(path: string, parse: () => void): void {
    try {
      parse();
    } catch (err) {
      if (err instanceof HubcrawlError) throw err;
      throw new CorruptInputError(`${path} could not be parsed: ${String(err)}`, { cause: err });
    }
  }

  /**
   * A hardlink has no data of its own: it gets the facts of the file it names when that was
   * recorded. When it was not (the data sat under a non-candidate name earlier in the archive, or
   * the target is a lower layer's file, which unpacking links to), a link at a candidate or watched
   * path is still recorded, with null hashes and its target: one pass cannot go back for the bytes,
   * and since they may be the very file that was at the path, matching does not let the row replace
   * it (docs/schema.md, "Hardlinks").
   */
  private recordHardlink(path: string, target: string, mode: number): void {
    const known = this.byPath.get(target);
    if (known === undefined) {
      const wanted =
        captureKind(path) !== null || this.rules.isCandidate(path, 0) || this.rules.isWatchedPath(path);
      if (!wanted) return;
      const fact: FileFact = {
        path,
        size: 0,
        mode: mode & 0o7777,
        sha256: null,
        md5: null,
        linkTarget: target,
      };
      this.countHeld(path, path.length + target.length);
      this.files.push(fact);
      this.byPath.set(path, { fact, hits: [] });
      return;
    }
    // A link to such a link keeps its `linkTarget`: its bytes are the same unknown ones. A database
    // file (a dpkg status) made a link is not parsed, its bytes having gone by under the target's name:
    // what it lists is unknown, so it gets the target too and, like those, replaces nothing.
    const unparsed = captureKind(path) !== null ? { linkTarget: known.fact.linkTarget ?? target } : {};
    const fact: FileFact = { ...known.fact, path, mode: mode & 0o7777, ...unparsed };
    const hits = known.hits.map((h) => ({ ...h, path }));
    // The link and a copy of each hit (the hashes are the target's strings, shared).
    this.countHeld(path, path.length, 1 + hits.length);
    this.files.push(fact);
    appendAll(this.signatureHits, hits);
    this.byPath.set(path, { fact, hits });
  }

  /**
   * Counts what the facts keep for the entry at `at`: `chars` characters of paths, targets or parsed text,
   * and `records` records (FACT_RECORD_BYTES each). Past maxFactBytes the layer fails.
   */
  private countHeld(at: string, chars: number, records = 1): void {
    this.factBytes += chars + records * FACT_RECORD_BYTES;
    if (this.factBytes <= this.limits.maxFactBytes) return;
    throw new LimitExceededError(
      'maxFactBytes',
      this.factBytes,
      `layer's facts exceed maxFactBytes (${this.limits.maxFactBytes} bytes, estimated) at ${at.slice(0, 200)}; ` +
        'a layer that records this much is crafted or extraordinary: raise limits.maxFactBytes to analyze it',
    );
  }

  result(): Omit<
    LayerFacts,
    'compression' | 'compressedBytes' | 'uncompressedBytes' | 'entryCount' | 'selection'
  > {
    return {
      files: this.files,
      packages: this.packages,
      md5sums: this.md5sums,
      osRelease: this.osRelease,
      whiteouts: this.whiteouts,
      signatureHits: this.signatureHits,
      symlinks: this.symlinks.entries(),
      dirs: [...this.dirs],
      lateDirs: [...this.lateDirs],
    };
  }
}

/** What happens to one wanted entry's bytes: hashing, signature scanning, capture. */
class EntryWork implements TarEntrySink {
  constructor(
    readonly path: string,
    readonly entry: TarEntry,
    readonly hasher: FileHasher | null,
    readonly scanner: SignatureScanner | null,
    readonly capture: CaptureBuffer | null,
    private readonly onEnd: (work: EntryWork) => void,
  ) {}

  write(chunk: Uint8Array): void {
    this.hasher?.update(chunk);
    this.scanner?.push(chunk);
    this.capture?.update(chunk);
  }

  end(): void {
    this.onEnd(this);
  }
}
