/**
 * Digest verification of a layer blob on a worker thread. Hashing every compressed byte is the
 * largest single cost of a zstd layer after decoding; on its own thread it overlaps with reading,
 * decoding and tar parsing instead of adding to them.
 *
 * Bytes are copied into 1 MiB staging buffers (the source's chunks are not ours to transfer, and
 * the decoder still needs them), each buffer is transferred to the worker, hashed there and
 * transferred back for reuse: no allocation per chunk, one message per MiB whatever the chunk
 * size, and at most HIGH_WATER bytes in flight, so memory stays bounded when the worker lags.
 * A worker that finished a layer waits, unref'd, for the next one (MAX_IDLE_WORKERS).
 */
import { Worker } from 'node:worker_threads';
import { type Digest, DigestVerifier, digestAlgorithm } from '../core/digest.js';
import { DigestMismatchError, RetryableError } from '../core/errors.js';

/** What analyzeLayer needs from a digest check, in-thread or not. */
export interface LayerDigest {
  /** Feeds the next bytes; a returned promise asks the caller to wait before feeding more. */
  update(chunk: Uint8Array): void | Promise<void>;
  /** Throws DigestMismatchError when the bytes fed do not hash to the expected digest. */
  verify(): void | Promise<void>;
  /** Releases what the check holds (the worker); safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Where a layer's digest is computed: this thread, a worker thread of its own, or 'auto': a
 * worker once the blob has passed AUTO_WORKER_BYTES (a small blob is not worth a thread).
 */
export type DigestThread = 'main' | 'worker' | 'auto';

/** Blob size from which 'auto' moves the digest to a worker thread. */
export const AUTO_WORKER_BYTES = 4 * 1024 * 1024;

/** The LayerDigest for `where`. */
export function layerDigest(expected: Digest, what: string, where: DigestThread): LayerDigest {
  if (where === 'main') return mainThreadDigest(expected, what);
  if (where === 'worker') return new WorkerDigest(expected, what);
  return new DeferredDigest(expected, what, AUTO_WORKER_BYTES);
}

/** The in-thread check, as a LayerDigest. */
export function mainThreadDigest(expected: Digest, what: string): LayerDigest {
  const v = new DigestVerifier(expected, what);
  return { update: (c) => v.update(c), verify: () => v.verify(), close: async () => undefined };
}

/**
 * Holds on to the first chunks (references, not copies: source chunks are never reused) until
 * `threshold` bytes have passed, then starts a worker and feeds it everything; a blob that ends
 * first is hashed here. Either way the digest covers every byte in order.
 */
class DeferredDigest implements LayerDigest {
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private worker: WorkerDigest | null = null;

  constructor(
    private readonly expected: Digest,
    private readonly what: string,
    private readonly threshold: number,
  ) {}

  update(chunk: Uint8Array): void | Promise<void> {
    if (this.worker !== null) return this.worker.update(chunk);
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes < this.threshold) return;
    this.worker = new WorkerDigest(this.expected, this.what);
    return this.feed(this.worker, this.release());
  }

  verify(): void | Promise<void> {
    if (this.worker !== null) return this.worker.verify();
    const v = new DigestVerifier(this.expected, this.what);
    for (const c of this.release()) v.update(c);
    v.verify();
  }

  close(): Promise<void> {
    this.held = [];
    return this.worker?.close() ?? Promise.resolve();
  }

  private release(): Uint8Array[] {
    const held = this.held;
    this.held = [];
    return held;
  }

  private async feed(worker: WorkerDigest, chunks: Uint8Array[]): Promise<void> {
    for (const c of chunks) await worker.update(c);
  }
}

const STAGE = 1024 * 1024;
const HIGH_WATER = 8 * STAGE;

// Plain CommonJS evaluated in the worker, so it runs the same under tsx, vitest and compiled JS. One
// worker serves one layer at a time: `start` opens a hash, buffers feed it, `end` answers its digest.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let hash = null;
parentPort.on('message', (m) => {
  if (m.start) {
    hash = createHash(m.start);
    return;
  }
  if (m.end) {
    parentPort.postMessage({ hex: hash.digest('hex') });
    hash = null;
    return;
  }
  hash.update(new Uint8Array(m.buf, 0, m.len));
  parentPort.postMessage({ buf: m.buf, len: m.len }, [m.buf]);
});
`;

/**
 * Idle digest workers kept for the next layer. Starting a worker thread costs about 60 ms of CPU
 * and, until it answers, stalls the layer once 8 MiB wait for it (docs/benchmarks.md): real money
 * over the thousands of layers of a crawl. A worker goes back to the pool only after a layer whose
 * digest it finished; any other end (an error, an abort) terminates it, so no half-fed hash is ever
 * reused. Idle workers are unref'd: they never keep the process alive.
 */
const MAX_IDLE_WORKERS = 2;
const idle: Worker[] = [];
let liveWorkers = 0;
let startedWorkers = 0;

/** Digest worker threads alive in this process, busy or idle (for tests). */
export function liveDigestWorkers(): number {
  return liveWorkers;
}

/** Digest worker threads serving a layer right now (for tests: none may outlive its layer). */
export function busyDigestWorkers(): number {
  return liveWorkers - idle.length;
}

/** Digest worker threads started since the process began (for tests: idle ones are reused). */
export function startedDigestWorkers(): number {
  return startedWorkers;
}

/** Terminates the idle workers and drops the spare staging buffers (tests; a long-lived embedder that is done analyzing). */
export async function closeIdleDigestWorkers(): Promise<void> {
  spareStages.length = 0;
  await Promise.all(idle.splice(0).map((w) => w.terminate()));
}

/**
 * Starts a digest worker now and parks it, so the first layer of a crawl finds one ready instead of
 * waiting for a thread to boot; does nothing when one is idle already. The worker is unref'd like
 * any idle one, and one that fails to start just leaves the pool (the layer then starts its own).
 */
export function prestartDigestWorker(): void {
  if (idle.length === 0) void returnWorker(takeWorker());
}

/**
 * Staging buffers of layers that ended cleanly, for the next layer: memory the process has not
 * touched yet is slow to fault in (docs/benchmarks.md, 2026-12-06 second session), and a layer
 * would otherwise allocate up to HIGH_WATER of fresh buffers. Enough for one layer are kept.
 */
const spareStages: ArrayBuffer[] = [];
const MAX_SPARE_STAGES = HIGH_WATER / STAGE + 1;

/** Staging buffers kept for the next layer (for tests). */
export function spareStagingBuffers(): number {
  return spareStages.length;
}

function takeWorker(): Worker {
  let worker = idle.pop();
  if (worker !== undefined) {
    // Drops the idle-time listeners; the busy-time ones are added below and by WorkerDigest.
    worker.removeAllListeners('exit');
    worker.removeAllListeners('error');
    worker.ref();
  } else {
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // A hashing loop needs little heap; keeps a stray worker from growing RSS.
      resourceLimits: { maxOldGenerationSizeMb: 32 },
    });
    liveWorkers++;
    startedWorkers++;
  }
  worker.once('exit', () => {
    liveWorkers--;
  });
  return worker;
}

/** Parks a worker whose last job ended cleanly, or terminates it when the pool is full. */
function returnWorker(worker: Worker): Promise<void> {
  worker.removeAllListeners('message');
  worker.removeAllListeners('error');
  if (idle.length >= MAX_IDLE_WORKERS) return worker.terminate().then(() => undefined);
  // The job's listeners and the busy-time count go; an idle worker that dies also leaves the pool, and
  // its 'error' (an out-of-memory end, say) must have a listener or it would throw in this thread.
  worker.removeAllListeners('exit');
  worker.on('error', () => undefined);
  worker.once('exit', () => {
    liveWorkers--;
    const i = idle.indexOf(worker);
    if (i >= 0) idle.splice(i, 1);
  });
  worker.unref();
  idle.push(worker);
  return Promise.resolve();
}

/** sha256/sha512 of the fed bytes on a worker thread, checked against `expected`. */
export class WorkerDigest implements LayerDigest {
  private readonly worker: Worker;
  private readonly free: ArrayBuffer[] = [];
  private stage: Uint8Array | null = null;
  private staged = 0;
  private inFlight = 0;
  private failure: unknown = undefined;
  private wake: (() => void) | null = null;
  private result: ((hex: string) => void) | null = null;
  private closed: Promise<void> | null = null;
  /** The worker answered this layer's digest: it may serve the next layer. */
  private finished = false;

  constructor(
    readonly expected: Digest,
    readonly what: string,
  ) {
    this.worker = takeWorker();
    this.worker.on('message', (m: { buf?: ArrayBuffer; len?: number; hex?: string }) => {
      if (m.hex !== undefined) {
        this.result?.(m.hex);
        return;
      }
      this.inFlight -= m.len as number;
      this.free.push(m.buf as ArrayBuffer);
      this.signal();
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`the digest worker exited with code ${code}`)));
    this.worker.postMessage({ start: digestAlgorithm(expected) });
  }

  update(chunk: Uint8Array): void | Promise<void> {
    this.throwIfFailed();
    let src = chunk;
    while (src.length > 0) {
      if (this.stage === null) {
        this.stage = new Uint8Array(this.free.pop() ?? spareStages.pop() ?? new ArrayBuffer(STAGE));
        this.staged = 0;
      }
      const n = Math.min(src.length, STAGE - this.staged);
      this.stage.set(src.subarray(0, n), this.staged);
      this.staged += n;
      src = src.subarray(n);
      if (this.staged === STAGE) this.flush();
    }
    if (this.inFlight >= HIGH_WATER) return this.waitBelow(HIGH_WATER);
  }

  async verify(): Promise<void> {
    this.throwIfFailed();
    // Messages arrive in order: the end marker is handled after every staged buffer.
    this.flush();
    const hex = await new Promise<string>((resolve, reject) => {
      this.result = resolve;
      this.wake = () => {
        if (this.failure !== undefined) reject(this.wrapped());
      };
      this.worker.postMessage({ end: true });
    });
    this.finished = true;
    const actual: Digest = `${digestAlgorithm(this.expected)}:${hex}`;
    if (actual !== this.expected) throw new DigestMismatchError(this.expected, actual, this.what);
  }

  close(): Promise<void> {
    // A worker that failed or exited after answering (its exit listener recorded a failure) is not parked:
    // the next layer would post to a dead thread and wait forever.
    const reusable = this.finished && this.failure === undefined && this.worker.threadId !== -1;
    if (this.finished) {
      // Every staged buffer came back before the digest did (messages arrive in order).
      spareStages.push(...this.free.splice(0, MAX_SPARE_STAGES - spareStages.length));
    }
    this.closed ??= reusable ? returnWorker(this.worker) : this.worker.terminate().then(() => undefined);
    return this.closed;
  }

  private flush(): void {
    if (this.stage === null || this.staged === 0) return;
    const buf = this.stage.buffer as ArrayBuffer;
    this.inFlight += this.staged;
    this.worker.postMessage({ buf, len: this.staged }, [buf]);
    this.stage = null;
    this.staged = 0;
  }

  private waitBelow(limit: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.failure !== undefined) reject(this.wrapped());
        else if (this.inFlight < limit) resolve();
        else {
          this.wake = check;
          return;
        }
        this.wake = null;
      };
      check();
    });
  }

  private signal(): void {
    this.wake?.();
  }

  private fail(err: unknown): void {
    if (this.closed !== null || this.failure !== undefined) return;
    this.failure = err;
    this.signal();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.wrapped();
  }

  private wrapped(): RetryableError {
    return new RetryableError(`the digest worker for the ${this.what} failed; the layer can be retried`, {
      cause: this.failure,
    });
  }
}
