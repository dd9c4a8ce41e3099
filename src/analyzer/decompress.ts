/**
 * The byte side of one pass over a layer: read the blob once (counting and digesting every byte
 * exactly as it arrives), choose the decompressor by magic bytes, and push decompressed chunks
 * into a synchronous sink. Back-pressure is natural: the next compressed chunk is pulled only once
 * the sink has dealt with everything the previous one produced.
 */

import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createGunzip } from 'node:zlib';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import type { DigestVerifier } from '../core/digest.js';
import { CorruptInputError, UnsupportedError } from '../core/errors.js';
import type { Compression } from './facts.js';

// zstd-napi's stream class decompresses a whole input chunk in one synchronous burst, so one
// small chunk of a zstd bomb could fill memory; its low-level context lets us pull output in
// fixed-size pieces instead.
const zstd = createRequire(import.meta.url)('zstd-napi/binding.js') as typeof ZstdBinding;

/** Size of each decompressed piece handed to the sink. */
const OUT_CHUNK = 128 * 1024;

/** Reads a layer source once, feeding every byte to the digest and byte counter in order. */
export class SourceReader {
  compressedBytes = 0;
  /** The error the source itself threw (a network failure is not corrupt input), if any. */
  sourceError: unknown = undefined;
  private done = false;
  private readonly it: AsyncIterator<Uint8Array>;
  private inflight: Promise<unknown> = Promise.resolve();

  constructor(
    source: AsyncIterable<Uint8Array>,
    private readonly verifier: DigestVerifier | null,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.it = source[Symbol.asyncIterator]();
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
      return null;
    }
    const chunk = r.value;
    if (!(chunk instanceof Uint8Array)) throw new TypeError('a layer source must yield Uint8Array chunks');
    this.compressedBytes += chunk.length;
    this.verifier?.update(chunk);
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

/** Chooses the decompressor from the first bytes of the blob; media types are not trusted. */
export function detectCompression(head: Uint8Array): Compression {
  const b = (i: number) => head[i];
  if (b(0) === 0x1f && b(1) === 0x8b) return 'gzip';
  if (b(0) === 0x28 && b(1) === 0xb5 && b(2) === 0x2f && b(3) === 0xfd) return 'zstd';
  if (b(0) === 0xfd && b(1) === 0x37 && b(2) === 0x7a && b(3) === 0x58 && b(4) === 0x5a) {
    throw new UnsupportedError('layer is xz-compressed, which OCI does not allow and hubcrawl does not read');
  }
  if (b(0) === 0x42 && b(1) === 0x5a && b(2) === 0x68) {
    throw new UnsupportedError(
      'layer is bzip2-compressed, which OCI does not allow and hubcrawl does not read',
    );
  }
  return 'none';
}

export interface DecompressOptions {
  signal?: AbortSignal | undefined;
  /** True once the consumer has everything it needs; a decoder error after that is trailing garbage. */
  complete(): boolean;
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
    else {
      const decoded = compression === 'zstd' ? zstdDecode(guardedInput) : guardedInput;
      for await (const chunk of decoded) guardedSink(chunk);
    }
    return 'ok';
  } catch (err) {
    const known = passThrough as { err: unknown } | null;
    if (known !== null) throw known.err;
    if (options.signal?.aborted) throw options.signal.reason;
    // A decoder that fails after the archive is complete met trailing bytes; a stream that merely
    // stops early is still truncated, whatever the tar parser has seen.
    if (options.complete() && !isTruncation(err)) return 'garbage';
    const what = err instanceof Error ? err.message : String(err);
    throw new CorruptInputError(`${compression} stream is corrupt or truncated: ${what}`, { cause: err });
  }
}

class TruncatedStreamError extends Error {}

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

/**
 * Streaming zstd: every call to the native decoder writes at most OUT_CHUNK bytes into one reused
 * buffer. Reuse is safe because the consumer handles each piece synchronously before asking for
 * the next (the sink contract), and it spares the GC a fresh 128 KiB buffer per piece.
 */
async function* zstdDecode(input: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const dctx = new zstd.DCtx();
  let inFrame = false;
  const out = Buffer.allocUnsafe(OUT_CHUNK);
  for await (const chunk of input) {
    let src = chunk;
    for (;;) {
      const [ret, produced, consumed] = dctx.decompressStream(out, src);
      src = src.subarray(consumed);
      // ret is 0 once a frame is decoded and flushed; an idle call after that would report the
      // next frame's header as pending, so only calls that did something update the state.
      if (produced > 0 || consumed > 0) inFrame = ret !== 0;
      if (produced > 0) yield out.subarray(0, produced);
      if (src.length === 0 && (produced < out.length || ret === 0)) break;
      if (produced === 0 && consumed === 0) throw new Error('the zstd decoder made no progress');
    }
  }
  if (inFrame) throw new TruncatedStreamError('the stream ended in the middle of a zstd frame');
}
