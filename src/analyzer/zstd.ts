/**
 * The in-thread zstd decoder (zstd-napi) and the `zstd` binary as a child process. The child was
 * meant as an accelerator (decoding on the other core); measured, Node's reading of its output
 * pipe costs this thread more than zstd-napi's decoding does (docs/benchmarks.md), so it is an
 * option, useful where the native addon is unavailable or suspect. Both hand the sink pieces that
 * are valid only during the call, and both report a stream that stops inside a frame as
 * TruncatedStreamError, so the caller classifies their failures the same way.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Readable, Writable } from 'node:stream';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { LimitExceededError, RetryableError } from '../core/errors.js';
import { findOnPath } from '../core/find-on-path.js';
import { ZstdFrameHeader, zstdFrameWindowSize } from './zstd-frame.js';

// zstd-napi's stream class decompresses a whole input chunk in one synchronous burst, so one
// small chunk of a zstd bomb could fill memory; its low-level context lets us pull output in
// fixed-size pieces instead. Loaded on first use, so the 'cli' decoder works without the addon.
let binding: typeof ZstdBinding | null = null;
const napi = (): typeof ZstdBinding => {
  binding ??= createRequire(import.meta.url)('zstd-napi/binding.js') as typeof ZstdBinding;
  return binding;
};

/**
 * Which zstd decoder to use: zstd-napi on this thread ('napi') or on a worker thread ('worker',
 * src/analyzer/zstd-worker.ts), or the `zstd` binary as a child process ('cli').
 */
export type ZstdDecoder = 'napi' | 'worker' | 'cli';

/** The input stopped in the middle of a compressed member (as opposed to garbage after the last one). */
export class TruncatedStreamError extends Error {}

/** Size of each decompressed piece handed to the sink. */
export const OUT_CHUNK = 128 * 1024;

/**
 * The error for a frame that asks for a larger window than `windowLog` allows, or null when
 * `message` (from zstd-napi, the worker or the CLI's stderr) says something else. The CLI names
 * the window it wanted ("Window size larger than maximum : 134217728 > 33554432"); the library
 * only says "Frame requires too much memory for decoding", so its callers pass the refused frame's
 * header bytes and the window is read from there. The limit stands in only when neither says.
 */
export function zstdWindowError(
  message: string,
  windowLog: number,
  frameHeader?: Uint8Array,
): LimitExceededError | null {
  if (!/too much memory|window size larger than maximum/i.test(message)) return null;
  const limit = 2 ** windowLog;
  const stated = /maximum\s*:\s*(\d+)\s*>/i.exec(message)?.[1];
  const wanted = stated !== undefined ? Number(stated) : refusedWindow(frameHeader, limit);
  const asked = wanted === null ? 'a window' : `a ${wanted}-byte window`;
  return new LimitExceededError(
    'maxZstdWindowBytes',
    wanted ?? limit,
    `zstd frame asks for ${asked}, more than maxZstdWindowBytes allows (${limit} bytes); raise the limit to analyze this layer`,
  );
}

/** The window a refused frame's header declares, or null when it cannot be read from `frameHeader`. */
function refusedWindow(frameHeader: Uint8Array | undefined, limit: number): number | null {
  const declared = frameHeader === undefined ? null : zstdFrameWindowSize(frameHeader);
  // A window within the limit cannot be why the frame was refused: those bytes were not its header.
  return declared !== null && declared > limit ? declared : null;
}

/** Loads zstd-napi now rather than at the first zstd layer; false when the addon cannot load (that layer will say why). */
export function preloadZstdNapi(): boolean {
  try {
    napi();
    return true;
  } catch {
    return false;
  }
}

/**
 * A decoding context and output buffer that finished a layer cleanly, kept for the next one. A
 * context holds its window (2 MiB for `zstd -3`) and workspace, and memory the process has not
 * touched yet is slow to fault in (docs/benchmarks.md, 2026-12-06 second session): reusing them
 * spares each layer a few MiB of it. One is kept, and only when its frames' windows were small, so
 * a `--long` layer's 128 MiB window is not held while the crawl idles.
 */
interface NapiDecoder {
  dctx: ZstdBinding.DCtx;
  out: Buffer;
}
let idleDecoder: NapiDecoder | null = null;
let createdDecoders = 0;
/** Largest frame window whose context is kept for the next layer. */
export const KEEP_WINDOW_MAX = 8 * 1024 * 1024;

/** zstd-napi decoding contexts created since the process began (for tests: a clean layer's is reused). */
export function createdZstdContexts(): number {
  return createdDecoders;
}

function takeDecoder(windowLog: number): NapiDecoder {
  const kept = idleDecoder;
  idleDecoder = null;
  const decoder = kept ?? newDecoder();
  // sessionAndParameters: the last layer's limit must not carry over; the window buffers stay allocated.
  if (kept !== null) decoder.dctx.reset(napi().ResetDirective.sessionAndParameters);
  decoder.dctx.setParameter(napi().DParameter.windowLogMax, windowLog);
  return decoder;
}

function newDecoder(): NapiDecoder {
  createdDecoders++;
  return { dctx: new (napi().DCtx)(), out: Buffer.allocUnsafe(OUT_CHUNK) };
}

/**
 * Streaming zstd-napi into `sink`: every call to the native decoder writes at most OUT_CHUNK bytes
 * into one reused buffer, handed to the sink at once. Reuse is safe because the sink handles each
 * piece synchronously (the sink contract), and it spares the GC a fresh 128 KiB buffer per piece.
 * The sink is called directly, not through an async generator: a layer arrives in 64 KiB network
 * chunks and decodes to tens of thousands of pieces, and a generator's promise per piece added up.
 */
export async function zstdNapiInto(
  input: AsyncIterable<Uint8Array>,
  sink: (chunk: Uint8Array) => void,
  windowLog: number,
): Promise<void> {
  const decoder = takeDecoder(windowLog);
  const { dctx, out } = decoder;
  let inFrame = false;
  const header = new ZstdFrameHeader();
  for await (const chunk of input) {
    let src = chunk;
    for (;;) {
      let step: [number, number, number];
      try {
        step = dctx.decompressStream(out, src);
      } catch (err) {
        throw zstdWindowError((err as Error).message, windowLog, header.completedBy(src)) ?? err;
      }
      const [ret, produced, consumed] = step;
      header.step(src, consumed, ret);
      src = src.subarray(consumed);
      // ret is 0 once a frame is decoded and flushed; an idle call after that would report the
      // next frame's header as pending, so only calls that did something update the state.
      if (produced > 0 || consumed > 0) inFrame = ret !== 0;
      if (produced > 0) sink(out.subarray(0, produced));
      if (src.length === 0 && (produced < out.length || ret === 0)) break;
      if (produced === 0 && consumed === 0) throw new Error('the zstd decoder made no progress');
    }
  }
  if (inFrame) throw new TruncatedStreamError('the stream ended in the middle of a zstd frame');
  // Only a clean end returns the context: after an error its state is not worth trusting.
  if (header.largestWindow <= KEEP_WINDOW_MAX) idleDecoder ??= decoder;
}

let cliLookup: { path: string; found: string | null } | null = null;

/** Absolute path of the `zstd` binary on PATH, or null; looked up again only when PATH changes. */
export function zstdCliPath(): string | null {
  const path = process.env.PATH ?? '';
  if (cliLookup?.path !== path) cliLookup = { path, found: findOnPath('zstd', path) };
  return cliLookup.found;
}

/** The CLI's last words on stderr are kept for the error message, bounded. */
const STDERR_KEEP = 4096;

/**
 * Decodes through `zstd -dc` on stdin/stdout. Input is written with back-pressure (the next
 * chunk is pulled once the pipe took the previous one); output is handed to the sink as each
 * pipe read arrives (at most 64 KiB), so memory is bounded by the pipe buffers whatever the
 * ratio. The child is always gone when this settles: killed on a sink error, an input error or
 * an abort, and waited for in every case.
 */
export async function zstdCliInto(
  binary: string,
  input: AsyncIterable<Uint8Array>,
  sink: (chunk: Uint8Array) => void,
  signal: AbortSignal | undefined,
  windowLog: number,
): Promise<void> {
  signal?.throwIfAborted();
  // -q: no progress or summary on stderr; the environment is empty so no ZSTD_* variable applies.
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(
    binary,
    // --memory caps the window a frame may ask for, as windowLogMax does for zstd-napi.
    ['-d', '-c', '-q', '--no-progress', `--memory=${2 ** windowLog}`],
    { stdio: ['pipe', 'pipe', 'pipe'], env: {} },
  );
  let failure: { err: unknown } | null = null;
  let stderr = '';
  let gone = false;
  const fail = (err: unknown) => {
    failure ??= { err };
    child.kill('SIGKILL');
  };
  const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, sig) => resolve({ code, sig }));
  });
  child.once('exit', () => {
    gone = true;
  });
  child.once('error', (err) =>
    fail(new RetryableError(`the zstd decoder process could not run (${err.message})`, { cause: err })),
  );
  // EPIPE when the child died before reading everything; its exit status says why.
  child.stdin.on('error', () => undefined);
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-STDERR_KEEP);
  });
  child.stdout.on('data', (chunk: Buffer) => {
    if (failure !== null) return;
    try {
      sink(chunk);
    } catch (err) {
      fail(err);
    }
  });
  const onAbort = () => fail(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    try {
      for await (const chunk of input) {
        // A child that exited (garbage after the last frame) reads nothing more; the caller drains the source.
        if (failure !== null || gone) break;
        if (!child.stdin.write(chunk)) {
          await Promise.race([waitFor(child.stdin, 'drain'), exited]);
        }
      }
      child.stdin.end();
    } catch (err) {
      fail(err);
    }
    const { code, sig } = await exited;
    const f = failure as { err: unknown } | null;
    if (f !== null) throw f.err;
    if (code === 0) return;
    const what = stderr.trim().replace(/^zstd: /, '') || `zstd exited with ${code ?? sig}`;
    if (/premature end|unexpected end of file|truncated/i.test(stderr)) throw new TruncatedStreamError(what);
    const tooLarge = zstdWindowError(stderr, windowLog);
    if (tooLarge !== null) throw tooLarge;
    if (code === null) {
      // Killed from outside (OOM killer, an operator): nothing says the layer is bad.
      throw new RetryableError(`the zstd decoder process was killed by ${sig}; the layer can be retried`);
    }
    throw new Error(what);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
}

function waitFor(stream: Writable, event: string): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off(event, done);
      stream.off('close', done);
      resolve();
    };
    stream.once(event, done);
    stream.once('close', done);
  });
}
