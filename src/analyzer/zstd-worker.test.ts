import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../core/digest.js';
import { CorruptInputError, LimitExceededError } from '../core/errors.js';
import { decompressInto } from './decompress.js';
import { type AnalyzeOptions, analyzeLayer } from './layer-stream.js';
import { buildTree, chunked, LIBLZMA, tarCli, testRules, zstdCli } from './test-fixtures/layers.js';
import { liveZstdWorkers } from './zstd-worker.js';

const rules = testRules((p) => p.includes('liblzma') || p.endsWith('.so') || p.startsWith('/deep/'));
const analyze = (data: Uint8Array, opts: Partial<AnalyzeOptions> = {}, chunk?: number) =>
  analyzeLayer(chunked(data, chunk), { rules, ...opts });

/** 64 MiB of zeros compressed: a few KiB in, a lot out. */
const bomb = () =>
  execFileSync('sh', ['-c', 'head -c 67108864 /dev/zero | zstd -c -q'], { maxBuffer: 1 << 24 });

let tree: string;
const tars: Record<string, Buffer> = {};

beforeAll(() => {
  tree = buildTree();
  tars.gnu = tarCli(tree, 'gnu', ['--sparse']);
  tars.pax = tarCli(tree, 'pax', ['--sparse']);
});

afterAll(() => rmSync(tree, { recursive: true, force: true }));

describe('zstd-napi on a worker thread', () => {
  for (const format of ['gnu', 'pax'] as const) {
    it(`yields the same facts as on this thread for a ${format} tar, fed whole and one byte at a time`, async () => {
      const blob = zstdCli(tars[format] as Buffer);
      const napi = await analyze(blob, { zstdDecoder: 'napi' });
      expect(await analyze(blob, { zstdDecoder: 'worker' })).toEqual(napi);
      expect(await analyze(blob, { zstdDecoder: 'worker' }, 1)).toEqual(napi);
      expect(napi.files.some((f) => f.path === LIBLZMA)).toBe(true);
      expect(liveZstdWorkers()).toBe(0);
    });
  }

  it('yields the same facts for a layer of several frames spanning many staging buffers', async () => {
    const tar = Buffer.concat([tars.gnu as Buffer, Buffer.alloc(9 * 1024 * 1024, 7)]);
    const half = Math.floor(tar.length / 2);
    const blob = Buffer.concat([zstdCli(tar.subarray(0, half)), zstdCli(tar.subarray(half))]);
    const napi = await analyze(blob, { zstdDecoder: 'napi' }, 100_000);
    expect(await analyze(blob, { zstdDecoder: 'worker' }, 100_000)).toEqual(napi);
    expect(napi.uncompressedBytes).toBe(tar.length);
  });

  it('rejects a truncated layer with CorruptInputError, also when the consumer is already complete', async () => {
    const blob = zstdCli(tars.gnu as Buffer);
    const cut = blob.subarray(0, Math.floor(blob.length * 0.6));
    await expect(analyze(cut, { zstdDecoder: 'worker' })).rejects.toBeInstanceOf(CorruptInputError);
    const run = decompressInto('zstd', chunked(blob.subarray(0, blob.length - 3)), () => {}, {
      complete: () => true,
      zstd: 'worker',
    });
    await expect(run).rejects.toBeInstanceOf(CorruptInputError);
    expect(liveZstdWorkers()).toBe(0);
  });

  it('tolerates garbage after the last frame and verifies the digest over it', async () => {
    const blob = Buffer.concat([
      zstdCli(tars.gnu as Buffer),
      Buffer.from('trailing garbage after the frame'),
    ]);
    const facts = await analyze(blob, { zstdDecoder: 'worker', expectedDigest: sha256Digest(blob) }, 1000);
    expect(facts).toEqual(await analyze(blob, { zstdDecoder: 'napi' }, 1000));
  });

  it('hands the sink pieces of at most 128 KiB and stops a bomb at the ratio limit', async () => {
    let largest = 0;
    let total = 0;
    await decompressInto(
      'zstd',
      chunked(bomb()),
      (c) => {
        largest = Math.max(largest, c.length);
        total += c.length;
      },
      { complete: () => false, zstd: 'worker' },
    );
    expect(total).toBe(64 * 1024 * 1024);
    expect(largest).toBeLessThanOrEqual(128 * 1024);
    const err = await analyze(bomb(), {
      zstdDecoder: 'worker',
      limits: { maxUncompressedBytes: 1_000_000 },
    }).catch((e: unknown) => e);
    expect((err as LimitExceededError).limit).toBe('maxUncompressedBytes');
    expect(err).toBeInstanceOf(LimitExceededError);
  });

  it('stops as soon as the sink throws, rethrows that error and ends the worker', async () => {
    const stop = new Error('enough');
    let calls = 0;
    const run = decompressInto(
      'zstd',
      chunked(bomb()),
      () => {
        if (++calls === 3) throw stop;
      },
      { complete: () => false, zstd: 'worker' },
    );
    await expect(run).rejects.toBe(stop);
    expect(calls).toBe(3);
    expect(liveZstdWorkers()).toBe(0);
  });

  it('leaves no worker running after a corrupt layer, a source error and an abort', async () => {
    const blob = zstdCli(tars.gnu as Buffer);
    const corrupt = Buffer.from(blob);
    corrupt.fill(0x55, 100, 400);
    await expect(analyze(corrupt, { zstdDecoder: 'worker' })).rejects.toBeInstanceOf(CorruptInputError);
    expect(liveZstdWorkers()).toBe(0);

    const boom = new Error('connection reset');
    async function* failing() {
      yield blob.subarray(0, 1000);
      throw boom;
    }
    await expect(analyzeLayer(failing(), { rules, zstdDecoder: 'worker' })).rejects.toBe(boom);
    expect(liveZstdWorkers()).toBe(0);

    const controller = new AbortController();
    const reason = new Error('stop');
    let during = -1;
    async function* slow() {
      yield blob.subarray(0, 1000);
      during = liveZstdWorkers();
      controller.abort(reason);
      yield blob.subarray(1000);
    }
    const aborted = analyzeLayer(slow(), { rules, zstdDecoder: 'worker', signal: controller.signal });
    await expect(aborted).rejects.toBe(reason);
    expect(during).toBe(1);
    expect(liveZstdWorkers()).toBe(0);
  });
});
