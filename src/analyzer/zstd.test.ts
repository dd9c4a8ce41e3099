import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../core/digest.js';
import { CorruptInputError, LimitExceededError, RetryableError, UnsupportedError } from '../core/errors.js';
import { decompressInto } from './decompress.js';
import { type AnalyzeOptions, analyzeLayer } from './layer-stream.js';
import { buildTree, chunked, LIBLZMA, tarCli, testRules, zstdCli } from './test-fixtures/layers.js';
import { liveZstdWorkers } from './zstd-worker.js';

const rules = testRules((p) => p.includes('liblzma') || p.endsWith('.so') || p.startsWith('/deep/'));
const analyze = (data: Uint8Array, opts: Partial<AnalyzeOptions> = {}, chunk?: number) =>
  analyzeLayer(chunked(data, chunk), { rules, ...opts });

/** Pids of this process's children running the zstd binary (vitest runs each file in its own fork). */
function zstdChildren(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === 'zstd' && ppid === process.pid) pids.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

let tree: string;
const tars: Record<string, Buffer> = {};

beforeAll(() => {
  tree = buildTree();
  tars.gnu = tarCli(tree, 'gnu', ['--sparse']);
  tars.pax = tarCli(tree, 'pax', ['--sparse']);
});

afterAll(() => rmSync(tree, { recursive: true, force: true }));

describe('the zstd CLI decoder', () => {
  for (const format of ['gnu', 'pax'] as const) {
    it(`yields the same facts as zstd-napi for a ${format} tar, fed whole and one byte at a time`, async () => {
      const blob = zstdCli(tars[format] as Buffer);
      const napi = await analyze(blob, { zstdDecoder: 'napi' });
      expect(await analyze(blob, { zstdDecoder: 'cli' })).toEqual(napi);
      expect(await analyze(blob, { zstdDecoder: 'cli' }, 1)).toEqual(napi);
      expect(napi.files.some((f) => f.path === LIBLZMA)).toBe(true);
    });
  }

  it('rejects a truncated zstd layer with CorruptInputError', async () => {
    const blob = zstdCli(tars.gnu as Buffer);
    const cut = blob.subarray(0, Math.floor(blob.length * 0.6));
    await expect(analyze(cut, { zstdDecoder: 'cli' })).rejects.toBeInstanceOf(CorruptInputError);
  });

  it('reports a stream cut inside its last frame as corrupt even when the consumer is complete', async () => {
    const blob = zstdCli(tars.gnu as Buffer);
    const run = decompressInto('zstd', chunked(blob.subarray(0, blob.length - 3)), () => {}, {
      complete: () => true,
      zstd: 'cli',
    });
    await expect(run).rejects.toBeInstanceOf(CorruptInputError);
  });

  it('tolerates garbage after the last frame and verifies the digest over it', async () => {
    const blob = Buffer.concat([
      zstdCli(tars.gnu as Buffer),
      Buffer.from('trailing garbage after the frame'),
    ]);
    const facts = await analyze(blob, { zstdDecoder: 'cli', expectedDigest: sha256Digest(blob) }, 1000);
    expect(facts).toEqual(await analyze(blob, { zstdDecoder: 'napi' }, 1000));
  });

  it('hands the sink pieces of at most 128 KiB and stops when the sink throws', async () => {
    const bomb = execFileSync('sh', ['-c', 'head -c 67108864 /dev/zero | zstd -c -q'], {
      maxBuffer: 1 << 24,
    });
    let largest = 0;
    let calls = 0;
    const stop = new Error('enough');
    const run = decompressInto(
      'zstd',
      chunked(bomb),
      (c) => {
        largest = Math.max(largest, c.length);
        if (++calls === 20) throw stop;
      },
      { complete: () => false, zstd: 'cli' },
    );
    await expect(run).rejects.toBe(stop);
    expect(calls).toBe(20);
    expect(largest).toBeLessThanOrEqual(128 * 1024);
    expect(zstdChildren()).toEqual([]);
  });

  it('rejects with RetryableError when the decoder process is killed, and leaves none behind', async () => {
    const blob = zstdCli(Buffer.concat([tars.gnu as Buffer, tars.pax as Buffer]));
    const half = Math.floor(blob.length / 2);
    let killed: number[] = [];
    async function* source() {
      yield blob.subarray(0, half);
      // Let the child start and take the first half before it is killed from outside.
      await new Promise((r) => setTimeout(r, 200));
      killed = zstdChildren();
      for (const pid of killed) process.kill(pid, 'SIGKILL');
      yield blob.subarray(half);
    }
    const err = await analyzeLayer(source(), { rules, zstdDecoder: 'cli' }).catch((e: unknown) => e);
    expect(killed).toHaveLength(1);
    expect(err).toBeInstanceOf(RetryableError);
    expect(zstdChildren()).toEqual([]);
  });

  it('leaves no zstd process running after a success, a corrupt layer and an abort', async () => {
    const blob = zstdCli(tars.gnu as Buffer);
    await analyze(blob, { zstdDecoder: 'cli' });
    expect(zstdChildren()).toEqual([]);

    const corrupt = Buffer.from(blob);
    corrupt.fill(0x55, 100, 400);
    await expect(analyze(corrupt, { zstdDecoder: 'cli' })).rejects.toBeInstanceOf(CorruptInputError);
    expect(zstdChildren()).toEqual([]);

    const controller = new AbortController();
    const reason = new Error('stop');
    let running: number[] = [];
    async function* slow() {
      yield blob.subarray(0, 1000);
      await new Promise((r) => setTimeout(r, 100));
      running = zstdChildren();
      controller.abort(reason);
      yield blob.subarray(1000);
    }
    const aborted = analyzeLayer(slow(), { rules, zstdDecoder: 'cli', signal: controller.signal });
    await expect(aborted).rejects.toBe(reason);
    expect(running).toHaveLength(1);
    expect(zstdChildren()).toEqual([]);
  });

  it("refuses zstdDecoder 'cli' with UnsupportedError when zstd is not on PATH, and 'auto' falls back to zstd-napi", async () => {
    const blob = zstdCli(tars.gnu as Buffer);
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(analyze(blob, { zstdDecoder: 'cli' })).rejects.toBeInstanceOf(UnsupportedError);
      const facts = await analyze(blob, { zstdDecoder: 'auto' });
      expect(facts.files.some((f) => f.path === LIBLZMA)).toBe(true);
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('the zstd window limit', () => {
  // From stdin zstd cannot size the window to the input, so --long=27 declares the full 128 MiB.
  const bigWindow = () => zstdCli(tars.gnu as Buffer, ['-3', '--long=27']);
  const MiB = 1024 * 1024;

  for (const zstdDecoder of ['napi', 'worker', 'cli'] as const) {
    it(`refuses a frame asking for a 128 MiB window by default, naming that window, fed whole or one byte at a time (${zstdDecoder})`, async () => {
      const blob = bigWindow();
      for (const chunk of [undefined, 1]) {
        const err = await analyze(blob, { zstdDecoder }, chunk).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LimitExceededError);
        expect((err as LimitExceededError).limit).toBe('maxZstdWindowBytes');
        expect((err as LimitExceededError).value).toBe(128 * MiB);
        expect((err as Error).message).toMatch(
          /asks for a 134217728-byte window, more than maxZstdWindowBytes allows \(33554432 bytes\); raise the limit/,
        );
      }
    });

    it(`names the content size as the window of a refused single-segment frame (${zstdDecoder})`, async () => {
      // Knowing the size, zstd shrinks the window to 64 MiB and declares the 40 MiB content instead.
      const blob = zstdCli(Buffer.alloc(40 * MiB), ['-1', '--long=27', `--stream-size=${40 * MiB}`]);
      expect((blob[4] as number) & 0x20).toBe(0x20); // Single_Segment_flag
      const err = await analyze(blob, { zstdDecoder }).catch((e: unknown) => e);
      expect((err as LimitExceededError).value).toBe(40 * MiB);
    });

    it(`decodes the same frame once maxZstdWindowBytes allows 128 MiB (${zstdDecoder})`, async () => {
      const expected = await analyze(zstdCli(tars.gnu as Buffer));
      const blob = bigWindow();
      const facts = await analyze(blob, { zstdDecoder, limits: { maxZstdWindowBytes: 128 * MiB } });
      expect(facts).toEqual({ ...expected, compressedBytes: blob.length });
    });
  }

  /** What decoding `blob` in `chunk`-byte pieces under a 32 MiB window limit throws, and the bytes it decoded before. */
  async function refusal(blob: Buffer, chunk: number | undefined, zstd: 'napi' | 'worker') {
    let decoded = 0;
    const sink = (c: Uint8Array) => {
      decoded += c.length;
    };
    const options = { complete: () => false, zstd, zstdWindowLog: 25 };
    const err = await decompressInto('zstd', chunked(blob, chunk), sink, options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    return { value: (err as LimitExceededError).value, decoded };
  }

  for (const zstd of ['napi', 'worker'] as const) {
    it(`names the window of a refused frame that follows other frames and a skippable one (${zstd})`, async () => {
      const skippable = Buffer.concat([
        Buffer.from([0x53, 0x2a, 0x4d, 0x18, 5, 0, 0, 0]),
        Buffer.from('hello'),
      ]);
      const blob = Buffer.concat([
        zstdCli(Buffer.alloc(300_000, 1)), // more than one output piece, so frame ends are flushed late
        skippable,
        zstdCli(Buffer.alloc(1000, 2), ['--stream-size=1000']),
        zstdCli(Buffer.alloc(100_000), ['--long=28']),
      ]);
      for (const chunk of [undefined, 1, 7]) {
        expect(await refusal(blob, chunk, zstd)).toEqual({ value: 256 * MiB, decoded: 301_000 });
      }
    });
  }

  it('names the window of a refused frame whose header straddles two staging buffers (worker)', async () => {
    const first = zstdCli(Buffer.alloc(300_000, 1));
    // A skippable frame pads the stream so the next frame's header starts 3 bytes before the
    // worker's first 1 MiB staging buffer ends.
    const pad = MiB - 3 - first.length - 8;
    const skippable = Buffer.alloc(8 + pad);
    skippable.writeUInt32LE(0x184d2a50, 0);
    skippable.writeUInt32LE(pad, 4);
    const blob = Buffer.concat([first, skippable, zstdCli(Buffer.alloc(100_000), ['--long=28'])]);
    for (const chunk of [undefined, 4096]) {
      expect(await refusal(blob, chunk, 'worker')).toEqual({ value: 256 * MiB, decoded: 300_000 });
    }
    expect(liveZstdWorkers()).toBe(0);
  });

  it('treats a big-window frame after a complete archive as trailing garbage, not as a refused layer', async () => {
    const blob = Buffer.concat([zstdCli(tars.gnu as Buffer), bigWindow()]);
    const facts = await analyze(blob, { expectedDigest: sha256Digest(blob) });
    expect(facts.entryCount).toBe((await analyze(zstdCli(tars.gnu as Buffer))).entryCount);
  });
});
