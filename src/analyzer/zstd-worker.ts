/**
 * zstd-napi on a worker thread: this thread reads, copies into 1 MiB staging buffers and parses;
 * the worker decodes. With the digest on another worker, a zstd layer's three big costs (read,
 * decode, digest) overlap instead of adding up, as `zstd -dc | tar -t` overlaps its two.
 *
 * Every buffer travels by transfer and comes back for reuse: input buffers once decoded, output
 * buffers once the sink has seen them. The worker decodes only into output buffers it holds
 * (OUT_BUFFERS of them), so a bomb cannot make it run ahead of the sink; at most IN_HIGH_WATER
 * compressed bytes wait for it. The worker is terminated, and waited for, however this ends.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { RetryableError } from '../core/errors.js';
import { OUT_CHUNK, TruncatedStreamError, zstdWindowError } from './zstd.js';
import { FRAME_HEADER_MAX, joinHeader } from './zstd-frame.js';

const STAGE = 1024 * 1024;
const IN_HIGH_WATER = 4 * STAGE;
const OUT_BUFFER = 1024 * 1024;
const OUT_BUFFERS = 4;

// Plain CommonJS evaluated in the worker, so it runs the same under tsx, vitest and compiled JS.
// The decode loop is zstdNapiInto's (src/analyzer/zstd.ts), over transferred buffers, and it
// keeps the current frame's first bytes as ZstdFrameHeader does (src/analyzer/zstd-frame.ts) so a
// refused window can be read from the header on this side.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zstd = require(workerData.binding);
const dctx = new zstd.DCtx();
dctx.setParameter(zstd.DParameter.windowLogMax, workerData.windowLog);
const OUT = workerData.outBuffer;
const HEADER_MAX = workerData.headerMax;
const header = new Uint8Array(HEADER_MAX);
let headerFill = 0;
const inputs = [];
const free = [];
let out = null;
let outLen = 0;
let inFrame = false;
let ended = false;
let stopped = false;
function sendOut() {
  parentPort.postMessage({ t: 'out', buf: out, len: outLen }, [out]);
  out = null;
  outLen = 0;
}
function pump() {
  if (stopped) return;
  let src = null;
  try {
    while (inputs.length > 0) {
      if (out === null) {
        if (free.length === 0) return;
        out = free.pop();
        outLen = 0;
      }
      const inp = inputs[0];
      const space = OUT - outLen;
      src = Buffer.from(inp.buf, inp.off, inp.len - inp.off);
      const [ret, produced, consumed] = dctx.decompressStream(Buffer.from(out, outLen, space), src);
      for (let i = 0; i < consumed && headerFill < HEADER_MAX; i++) header[headerFill++] = src[i];
      if (ret === 0) headerFill = 0;
      if (produced > 0 || consumed > 0) inFrame = ret !== 0;
      inp.off += consumed;
      outLen += produced;
      if (inp.off === inp.len && (produced < space || ret === 0)) {
        inputs.shift();
        parentPort.postMessage({ t: 'in', buf: inp.buf, len: inp.len }, [inp.buf]);
      } else if (produced === 0 && consumed === 0) {
        throw new Error('the zstd decoder made no progress');
      }
      if (outLen === OUT) sendOut();
    }
    if (ended) {
      stopped = true;
      if (out !== null && outLen > 0) sendOut();
      parentPort.postMessage({ t: 'end', truncated: inFrame });
    }
  } catch (err) {
    stopped = true;
    if (out !== null && outLen > 0) sendOut();
    parentPort.postMessage({
      t: 'error',
      message: String((err && err.message) || err),
      seen: header.slice(0, headerFill),
      next: new Uint8Array(src === null ? 0 : src.subarray(0, HEADER_MAX)),
    });
  }
}
parentPort.on('message', (m) => {
  if (m.t === 'in') inputs.push({ buf: m.buf, len: m.len, off: 0 });
  else if (m.t === 'out') free.push(m.buf);
  else if (m.t === 'end') ended = true;
  pump();
});
`;

let liveWorkers = 0;

/** zstd decoder threads currently alive in this process (for tests: none may outlive a layer). */
export function liveZstdWorkers(): number {
  return liveWorkers;
}

type FromWorker =
  | { t: 'out'; buf: ArrayBuffer; len: number }
  | { t: 'in'; buf: ArrayBuffer; len: number }
  | { t: 'end'; truncated: boolean }
  | { t: 'error'; message: string; seen: Uint8Array; next: Uint8Array };

/** Decodes `input` on a worker thread into `sink` (pieces of at most OUT_CHUNK bytes, valid during the call). */
export async function zstdWorkerInto(
  input: AsyncIterable<Uint8Array>,
  sink: (chunk: Uint8Array) => void,
  signal: AbortSignal | undefined,
  windowLog: number,
): Promise<void> {
  signal?.throwIfAborted();
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      binding: createRequire(import.meta.url).resolve('zstd-napi/binding.js'),
      outBuffer: OUT_BUFFER,
      headerMax: FRAME_HEADER_MAX,
      windowLog,
    },
    resourceLimits: { maxOldGenerationSizeMb: 32 },
  });
  liveWorkers++;
  worker.once('exit', () => {
    liveWorkers--;
  });
  let failure: { err: unknown } | null = null;
  let done: { truncated: boolean } | { message: string; header: Uint8Array } | null = null;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const fail = (err: unknown) => {
    failure ??= { err };
    poke();
  };
  const until = (ready: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (ready()) resolve();
        else wake = check;
      };
      check();
    });
  const freeIn: ArrayBuffer[] = [];
  let inFlight = 0;
  worker.on('message', (m: FromWorker) => {
    if (failure !== null) return;
    if (m.t === 'out') {
      const view = Buffer.from(m.buf, 0, m.len);
      try {
        for (let o = 0; o < m.len; o += OUT_CHUNK) sink(view.subarray(o, Math.min(o + OUT_CHUNK, m.len)));
      } catch (err) {
        fail(err);
        return;
      }
      worker.postMessage({ t: 'out', buf: m.buf }, [m.buf]);
    } else if (m.t === 'in') {
      inFlight -= m.len;
      freeIn.push(m.buf);
    } else {
      done =
        m.t === 'end'
          ? { truncated: m.truncated }
          : { message: m.message, header: joinHeader(m.seen, m.next) };
    }
    poke();
  });
  worker.on('error', (err) =>
    fail(new RetryableError('the zstd decoder thread failed; the layer can be retried', { cause: err })),
  );
  worker.on('exit', (code) => {
    if (done === null) fail(new RetryableError(`the zstd decoder thread exited early (code ${code})`));
  });
  for (let i = 0; i < OUT_BUFFERS; i++) {
    const buf = new ArrayBuffer(OUT_BUFFER);
    worker.postMessage({ t: 'out', buf }, [buf]);
  }
  const onAbort = () => fail(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });

  let stage: Uint8Array | null = null;
  let staged = 0;
  const flush = () => {
    if (stage === null || staged === 0) return;
    const buf = stage.buffer as ArrayBuffer;
    inFlight += staged;
    worker.postMessage({ t: 'in', buf, len: staged }, [buf]);
    stage = null;
    staged = 0;
  };
  try {
    try {
      for await (const chunk of input) {
        let src = chunk;
        while (src.length > 0) {
          stage ??= new Uint8Array(freeIn.pop() ?? new ArrayBuffer(STAGE));
          const n = Math.min(src.length, STAGE - staged);
          stage.set(src.subarray(0, n), staged);
          staged += n;
          src = src.subarray(n);
          if (staged === STAGE) flush();
        }
        if (inFlight >= IN_HIGH_WATER) {
          await until(() => failure !== null || done !== null || inFlight < IN_HIGH_WATER);
        }
        // A decoder that stopped (an error, garbage after the last frame) reads nothing more.
        if (failure !== null || done !== null) break;
      }
      if (failure === null && done === null) {
        flush();
        worker.postMessage({ t: 'end' });
      }
    } catch (err) {
      fail(err);
    }
    await until(() => failure !== null || done !== null);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await worker.terminate();
  }
  const f = failure as { err: unknown } | null;
  if (f !== null) throw f.err;
  const d = done as { truncated: boolean } | { message: string; header: Uint8Array } | null;
  if (d !== null && 'message' in d) {
    throw zstdWindowError(d.message, windowLog, d.header) ?? new Error(d.message);
  }
  if (d?.truncated) throw new TruncatedStreamError('the stream ended in the middle of a zstd frame');
}
