/**
 * The byte side of one pass over a layer: read the blob once (counting and digesting every byte
 * exactly as it arrives), choose the decompressor by magic bytes, and push decompressed chunks
 * into a synchronous sink. Back-pressure is natural: the next compressed chunk is pulled only once
 * the sink has dealt with everything the previous one produced.
 */

import { once } from 'node:events';
import { createGunzip } from 'node:zlib';
import { CorruptInputError, LimitExceededError, RetryableError, UnsupportedError } from '../core/errors.js';
import type { LayerDigest } from './digest-worker.js';
import type { Compression } from './facts.js';
import { BLOCK, verifyChecksum } from './tar-fields.js';
import {
  OUT_CHUNK,
  TruncatedStreamError,
  type ZstdDecoder,
  zstdCliInto,
  zstdCliPath,
  zstdNapiInto,
} from './zstd.js';
import { zstdWorkerInto } from './zstd-worker.js';

/**
 * Reads a layer source once, feeding every byte to the digest and byte counter in order. The
 * digest can be attached after the first chunks were read (once the compression is known, which
 * decides where it runs): those chunks are fed to it first.
 */
export class SourceReader {
  compressedBytes = 0;
  /** The error the source itself threw (a network failure is not corrupt input), if any. */
  sourceError: unknown = undefined;
  private done = false;
  /** The source was read to its end: every byte it had went through the digest. */
  ended = false;
  private readonly it: AsyncIterator<Uint8Array>;
  private inflight: Promise<unknown> = Promise.resolve();
  private verifier: LayerDigest | null = null;
  private unverified: Uint8Array[] | null = [];

  constructor(
    source: AsyncIterable<Uint8Array>,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Starts digesting: the chunks read so far, then every later one. Call at most once. */
  async attachDigest(verifier: LayerDigest | null): Promise<void> {
    const held = this.unverified ?? [];
    this.unverified = null;
    this.verifier = verifier;
    for (const c of held) await verifier?.update(c);
  }

  /** The next chunk, or null at the end of the source. */
  read(): Promise<Uint8Array | null> {
    const p = this.readNext();
    this.inflight = p.catch(() => undefined);
    return p;
  }

  private async readNext(): Promise<Uint8Array | null> {
    if (this.done) return null;
    this.signal?.throwIfAborted();
    let r: IteratorResult<Uint8Array>;
    try {
      r = await this.it.next();
    } catch (err) {
      this.sourceError = err;
      this.done = true;
      throw err;
    }
    if (r.done) {
      this.done = true;
      this.ended = true;
      return null;
    }
    const chunk = r.value;
    if (!(chunk instanceof Uint8Array)) throw new TypeError('a layer source must yield Uint8Array chunks');
    this.compressedBytes += chunk.length;
    if (this.unverified !== null) this.unverified.push(chunk);
    else if (this.verifier !== null) {
      const wait = this.verifier.update(chunk);
      if (wait !== undefined) await wait;
    }
    return chunk;
  }

  /** Reads until at least `n` bytes are available (or the source ends); returns them as chunks. */
  async peek(n: number): Promise<Uint8Array[]> {
    const head: Uint8Array[] = [];
    let have = 0;
    while (have < n) {
      const c = await this.read();
      if (c === null) break;
      head.push(c);
      have += c.length;
    }
    return head;
  }

  /** `head` then the rest of the source. Ending this iteration early does not close the source. */
  iterable(head: Uint8Array[]): AsyncIterable<Uint8Array> {
    let i = 0;
    const next = async (): Promise<IteratorResult<Uint8Array>> => {
      if (i < head.length) return { value: head[i++] as Uint8Array, done: false };
      const c = await this.read();
      return c === null ? { value: undefined, done: true } : { value: c, done: false };
    };
    const it: AsyncIterator<Uint8Array> = { next, return: async () => ({ value: undefined, done: true }) };
    return { [Symbol.asyncIterator]: () => it };
  }

  /** Reads the rest of the source (so the digest covers every byte), discarding it. */
  async drain(): Promise<void> {
    await this.inflight;
    while ((await this.read()) !== null) {
      // counted and digested by read()
    }
  }

  /** Stops the source early (destroys the HTTP body or file stream behind it). */
  close(): void {
    if (this.done) return;
    this.done = true;
    this.it.return?.()?.catch(() => undefined);
  }
}

/** zstd skippable frames (RFC 8878 section 3.1.2) have 16 magic numbers, 0x184D2A50 to 0x184D2A5F. */
const ZSTD_SKIPPABLE_MAGIC = 0x184d2a50;
const ZSTD_SKIPPABLE_MASK = 0xfffffff0;

/**
 * Chooses the decompressor from the first bytes of the blob (at least 6 unless the blob is
 * shorter); media types are not trusted. The magic numbers are the ones containerd's
 * DetectCompression uses (archive/compression/compression.go: gzip `1f 8b 08` and zstd, skippable
 * frames included), because what matters is the tree a runtime unpacks: a blob that reads one way
 * here and another way there could show the analyzer a clean tree and run a backdoored one.
 * Everything else is a plain tar to containerd, bzip2's and xz's magics included; decompressInto
 * refuses those only when the blob cannot be a tar (see refuseForeignCompression).
 */
export function detectCompression(head: Uint8Array): Compression {
  const b = (i: number) => head[i];
  // The method byte too (8, deflate): "\x1f\x8b" then anything else is a plain tar to containerd.
  if (b(0) === 0x1f && b(1) === 0x8b && b(2) === 0x08) return 'gzip';
  if (b(0) === 0x28 && b(1) === 0xb5 && b(2) === 0x2f && b(3) === 0xfd) return 'zstd';
  if (head.length >= 4 && (readUint32LE(head) & ZSTD_SKIPPABLE_MASK) >>> 0 === ZSTD_SKIPPABLE_MAGIC) {
    // A leading skippable frame (seekable zstd puts one first) makes the blob zstd, by the magic
    // alone, as containerd's zstdMatcher decides; the frames after it are the decoder's business.
    // So a tar whose first name starts with "P*M\x18" (to "_*M\x18") is zstd here as there: it
    // decodes or fails as corrupt, and is never read as that tar, which a crafted blob can also be.
    // containerd also wants 8 bytes in hand; that differs only for a blob of 4 to 7 bytes, which
    // both fail (a tar header alone is 512 bytes).
    return 'zstd';
  }
  return 'none';
}

/**
 * A blob that is no tar but starts with bzip2's (`BZh`) or xz's magic is refused as unsupported
 * (OCI allows neither, and hubcrawl reads neither), rather than as a corrupt tar, so the reason is
 * plain. But only then: containerd's DetectCompression knows only gzip and zstd, so containerd,
 * Docker with the containerd image store, nerdctl and Kubernetes unpack such a blob as a plain tar,
 * and a tar whose first member's name starts with `BZh` (or with xz's `fd 37 7a 58 5a`) is applied
 * whole. Refusing it would let that name hide the rest of the layer. moby's graphdriver path
 * (pkg/archive DetectCompression) does know bzip2 and xz and would fail on it, which hides nothing. So
 * when the first 512 bytes are a tar header with a valid checksum (the test Go's archive/tar
 * applies, reader.go readHeader, getFormat), the blob is read as the tar it is. A blob that is both
 * a real bzip2/xz stream and a valid header would take a deliberate polyglot; hubcrawl then reads
 * what containerd reads.
 */
function refuseForeignCompression(head: Buffer): void {
  const b = (i: number) => head[i];
  const xz = b(0) === 0xfd && b(1) === 0x37 && b(2) === 0x7a && b(3) === 0x58 && b(4) === 0x5a;
  const bzip2 = b(0) === 0x42 && b(1) === 0x5a && b(2) === 0x68;
  if (!xz && !bzip2) return;
  if (head.length >= BLOCK) {
    try {
      verifyChecksum(head.subarray(0, BLOCK), { corrupt: (what) => new CorruptInputError(what) });
      return; // a tar header: containerd reads a tar
    } catch {
      // not one: the blob is what its magic says
    }
  }
  throw new UnsupportedError(
    `layer is ${xz ? 'xz' : 'bzip2'}-compressed, which OCI does not allow and hubcrawl does not read`,
  );
}

/**
 * A plain tar passed through as it arrives, once its first block was checked against
 * refuseForeignCompression (it may come in pieces of any size).
 */
async function plainInto(input: AsyncIterable<Uint8Array>, sink: (chunk: Uint8Array) => void): Promise<void> {
  let head: Uint8Array[] | null = [];
  let have = 0;
  for await (const chunk of input) {
    if (head === null) {
      sink(chunk);
      continue;
    }
    head.push(chunk);
    have += chunk.length;
    if (have < BLOCK) continue;
    const first = Buffer.concat(head, have);
    head = null;
    refuseForeignCompression(first);
    sink(first);
  }
  if (head !== null && have > 0) {
    const first = Buffer.concat(head, have);
    refuseForeignCompression(first);
    sink(first);
  }
}

/** The first 4 bytes of `b` as a little-endian unsigned integer. */
function readUint32LE(b: Uint8Array): number {
  return (
    ((b[0] as number) | ((b[1] as number) << 8) | ((b[2] as number) << 16) | ((b[3] as number) << 24)) >>> 0
  );
}

export interface DecompressOptions {
  signal?: AbortSignal | undefined;
  /** True once the consumer has everything it needs; a decoder error after that is trailing garbage. */
  complete(): boolean;
  /** zstd decoder; 'napi' unless given (see resolveZstdDecoder for the analyzer's default). */
  zstd?: ZstdDecoder | undefined;
  /** windowLogMax for zstd (see zstdWindowLog in limits.ts); zstd's own default (27) unless given. */
  zstdWindowLog?: number | undefined;
}

/**
 * The zstd decoder to use (default zstd-napi): 'auto' is the `zstd` binary when it is on PATH,
 * else zstd-napi. Asking for 'cli' without the binary is refused rather than silently ignored.
 */
export function resolveZstdDecoder(choice: ZstdDecoder | 'auto' = 'napi'): ZstdDecoder {
  if (choice === 'napi' || choice === 'worker') return choice;
  if (zstdCliPath() !== null) return 'cli';
  if (choice === 'cli') throw new UnsupportedError('zstdDecoder "cli" needs the zstd binary on PATH');
  return 'napi';
}

/**
 * Decompresses `input` into `sink`; each chunk given to the sink is valid only during that call
 * (buffers are reused), so a sink that keeps bytes must copy them. Returns `'garbage'` when the decoder failed only after the
 * consumer was complete (bytes after the archive), `'ok'` otherwise. Decoder failures become
 * CorruptInputError; errors from the sink or the input are rethrown unchanged.
 */
export async function decompressInto(
  compression: Compression,
  input: AsyncIterable<Uint8Array>,
  sink: (chunk: Uint8Array) => void,
  options: DecompressOptions,
): Promise<'ok' | 'garbage'> {
  // zstd's default window limit (2^27, 128 MiB) when the caller sets none.
  const windowLog = options.zstdWindowLog ?? 27;
  let passThrough: { err: unknown } | null = null;
  const guardedSink = (chunk: Uint8Array) => {
    try {
      sink(chunk);
    } catch (err) {
      passThrough = { err };
      throw err;
    }
  };
  const guardedInput: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => {
      const it = input[Symbol.asyncIterator]();
      return {
        next: async () => {
          try {
            return await it.next();
          } catch (err) {
            passThrough = { err };
            throw err;
          }
        },
        return: async () => (await it.return?.()) ?? { value: undefined, done: true },
      };
    },
  };
  try {
    if (compression === 'gzip') await gunzipInto(guardedInput, guardedSink, options.signal);
    else if (compression === 'zstd' && options.zstd === 'cli') {
      await zstdCliInto(zstdCliPath() ?? 'zstd', guardedInput, guardedSink, options.signal, windowLog);
    } else if (compression === 'zstd' && options.zstd === 'worker') {
      await zstdWorkerInto(guardedInput, guardedSink, options.signal, windowLog);
    } else if (compression === 'zstd') {
      await zstdNapiInto(guardedInput, guardedSink, windowLog);
    } else {
      await plainInto(guardedInput, guardedSink);
    }
    return 'ok';
  } catch (err) {
    const known = passThrough as { err: unknown } | null;
    if (known !== null) throw known.err;
    // The decoder process failing (killed, could not start) says nothing about the layer.
    if (err instanceof RetryableError) throw err;
    // A plain blob that is bzip2 or xz (refuseForeignCompression): the reason, not "corrupt".
    if (err instanceof UnsupportedError) throw err;
    if (options.signal?.aborted) throw options.signal.reason;
    // A decoder that fails after the archive is complete met trailing bytes; a stream that merely
    // stops early is still truncated, whatever the tar parser has seen.
    if (options.complete() && !isTruncation(err)) return 'garbage';
    // A frame that wants more memory than allowed is refused by choice, not corrupt.
    if (err instanceof LimitExceededError) throw err;
    const what = err instanceof Error ? err.message : String(err);
    throw new CorruptInputError(`${compression} stream is corrupt or truncated: ${what}`, { cause: err });
  }
}

/** zlib says Z_BUF_ERROR ("unexpected end of file") when the input stops inside a member. */
function isTruncation(err: unknown): boolean {
  return err instanceof TruncatedStreamError || (err as { code?: unknown } | null)?.code === 'Z_BUF_ERROR';
}

/**
 * Streaming gunzip (node:zlib; concatenated members are handled by zlib). Output is taken in
 * flowing mode so the sink has seen every byte zlib produced before any error surfaces: garbage
 * after the last member fails only after the archive is complete, which the caller tolerates.
 * The next input chunk is written only once zlib has drained the previous one.
 */
async function gunzipInto(
  input: AsyncIterable<Uint8Array>,
  sink: (chunk: Uint8Array) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const gz = createGunzip({ chunkSize: OUT_CHUNK });
  const onAbort = () => gz.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  let failure: { err: unknown } | null = null;
  const failed = new Promise<void>((resolve) => {
    gz.once('error', (err) => {
      failure = { err };
      resolve();
    });
  });
  gz.on('data', (chunk: Buffer) => {
    try {
      sink(chunk);
    } catch (err) {
      gz.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  });
  const settle = (event: string) => Promise.race([once(gz, event).catch(() => undefined), failed]);
  try {
    for await (const chunk of input) {
      if (!gz.write(chunk)) await settle('drain');
      if (failure !== null) break;
    }
    if (failure === null) {
      gz.end();
      await settle('end');
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    gz.destroy();
  }
  const f = failure as { err: unknown } | null;
  if (f !== null) throw f.err;
}
