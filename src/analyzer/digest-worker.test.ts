import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../core/digest.js';
import { CorruptInputError, DigestMismatchError } from '../core/errors.js';
import {
  AUTO_WORKER_BYTES,
  busyDigestWorkers,
  closeIdleDigestWorkers,
  layerDigest,
  liveDigestWorkers,
  prestartDigestWorker,
  spareStagingBuffers,
  startedDigestWorkers,
  WorkerDigest,
} from './digest-worker.js';
import { type AnalyzeOptions, analyzeLayer, prepareAnalyzer } from './layer-stream.js';
import { buildTree, chunked, LIBLZMA, tarCli, testRules, zstdCli } from './test-fixtures/layers.js';

const MiB = 1024 * 1024;

afterAll(closeIdleDigestWorkers);

async function feed(d: { update(c: Uint8Array): void | Promise<void> }, data: Uint8Array, size: number) {
  for (let i = 0; i < data.length; i += size) await d.update(data.subarray(i, i + size));
}

describe('WorkerDigest', () => {
  it('accepts the bytes of its digest fed in chunks that do not line up with its 1 MiB buffers', async () => {
    const data = randomBytes(20 * MiB + 12345);
    for (const size of [MiB + 1, 333_333, 7]) {
      const d = new WorkerDigest(sha256Digest(data), 'test blob');
      try {
        await feed(d, size === 7 ? data.subarray(0, 100_000) : data, size);
        if (size === 7) await feed(d, data.subarray(100_000), MiB);
        await d.verify();
      } finally {
        await d.close();
      }
    }
    expect(busyDigestWorkers()).toBe(0);
  });

  it('rejects bytes that differ in one bit with DigestMismatchError', async () => {
    const data = randomBytes(3 * MiB);
    const d = new WorkerDigest(sha256Digest(data), 'test blob');
    const flipped = Buffer.from(data);
    flipped[MiB + 5] = (flipped[MiB + 5] as number) ^ 1;
    try {
      await feed(d, flipped, 64 * 1024);
      await expect(d.verify()).rejects.toBeInstanceOf(DigestMismatchError);
    } finally {
      await d.close();
    }
  });

  it('reuses the worker of a finished layer for the next one, and parks at most two', async () => {
    await closeIdleDigestWorkers();
    const data = randomBytes(2 * MiB);
    const started = startedDigestWorkers();
    for (let i = 0; i < 3; i++) {
      const d = new WorkerDigest(sha256Digest(data), `layer ${i}`);
      await feed(d, data, 256 * 1024);
      await d.verify();
      await d.close();
    }
    // One thread served three layers in turn.
    expect(startedDigestWorkers() - started).toBe(1);
    expect(liveDigestWorkers()).toBe(1);

    // Three at once need three threads; two of them stay for later layers, the third ends.
    const at = startedDigestWorkers();
    const three = [0, 1, 2].map((i) => new WorkerDigest(sha256Digest(data), `parallel ${i}`));
    await Promise.all(three.map((d) => feed(d, data, MiB)));
    await Promise.all(three.map((d) => d.verify()));
    await Promise.all(three.map((d) => d.close()));
    expect(startedDigestWorkers() - at).toBe(2);
    expect(busyDigestWorkers()).toBe(0);
    expect(liveDigestWorkers()).toBe(2);
  });

  it('parks a worker after a digest mismatch (its hash ended) but ends one left mid-layer', async () => {
    await closeIdleDigestWorkers();
    const data = randomBytes(2 * MiB);
    const mismatch = new WorkerDigest(sha256Digest('other'), 'mismatch');
    await feed(mismatch, data, MiB);
    await expect(mismatch.verify()).rejects.toBeInstanceOf(DigestMismatchError);
    await mismatch.close();
    expect(liveDigestWorkers()).toBe(1);

    // The parked worker serves the next layer, which is abandoned half-fed: that worker must not return.
    const started = startedDigestWorkers();
    const abandoned = new WorkerDigest(sha256Digest(data), 'abandoned');
    await feed(abandoned, data.subarray(0, MiB), MiB);
    await abandoned.close();
    expect(startedDigestWorkers()).toBe(started);
    expect(liveDigestWorkers()).toBe(0);

    // And a fresh one hashes correctly from its first byte.
    const next = new WorkerDigest(sha256Digest(data), 'next');
    await feed(next, data, 100_000);
    await next.verify();
    await next.close();
  });

  it('does not park a worker that died after answering: the next layer gets a live one', async () => {
    await closeIdleDigestWorkers();
    const data = randomBytes(2 * MiB);
    const d = new WorkerDigest(sha256Digest(data), 'died after');
    await feed(d, data, MiB);
    await d.verify();
    // Fault injection: the thread ends between its answer and close().
    await (d as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await d.close();
    expect([liveDigestWorkers(), busyDigestWorkers()]).toEqual([0, 0]);
    const next = new WorkerDigest(sha256Digest(data), 'next');
    await feed(next, data, MiB);
    await next.verify();
    await next.close();
  });

  it('starts one parked worker ahead of the first layer, which that layer then uses', async () => {
    await closeIdleDigestWorkers();
    const started = startedDigestWorkers();
    prestartDigestWorker();
    prestartDigestWorker(); // one is idle already: no second thread
    expect([startedDigestWorkers() - started, liveDigestWorkers(), busyDigestWorkers()]).toEqual([1, 1, 0]);
    const data = randomBytes(2 * MiB);
    const d = new WorkerDigest(sha256Digest(data), 'first layer');
    expect(busyDigestWorkers()).toBe(1);
    await feed(d, data, MiB);
    await d.verify();
    await d.close();
    expect([startedDigestWorkers() - started, liveDigestWorkers()]).toEqual([1, 1]);
  });

  it("keeps a clean layer's staging buffers for the next layer, whose digest they do not taint", async () => {
    await closeIdleDigestWorkers();
    expect(spareStagingBuffers()).toBe(0);
    const first = randomBytes(5 * MiB + 7);
    const d = new WorkerDigest(sha256Digest(first), 'first');
    await feed(d, first, MiB);
    await d.verify();
    await d.close();
    const spares = spareStagingBuffers();
    expect(spares).toBeGreaterThan(0);

    // Shorter than the first: a stale tail in a reused buffer would change the digest.
    const second = randomBytes(MiB + 3);
    const ok = new WorkerDigest(sha256Digest(second), 'second');
    await feed(ok, second, 4096);
    await ok.verify();
    await ok.close();
    const flipped = Buffer.from(second);
    flipped[MiB + 1] = (flipped[MiB + 1] as number) ^ 1;
    const bad = new WorkerDigest(sha256Digest(second), 'flipped');
    await feed(bad, flipped, MiB);
    await expect(bad.verify()).rejects.toBeInstanceOf(DigestMismatchError);
    await bad.close();

    // The next layer stages into the pooled buffers; abandoned mid-way (not finished, so some may
    // still be at the worker), it puts none back.
    const pooled = spareStagingBuffers();
    expect(pooled).toBeGreaterThan(0);
    const abandoned = new WorkerDigest(sha256Digest(first), 'abandoned');
    await feed(abandoned, first.subarray(0, 3 * MiB), MiB);
    await abandoned.close();
    expect(spareStagingBuffers()).toBeLessThan(pooled);
    await closeIdleDigestWorkers();
    expect(spareStagingBuffers()).toBe(0);
  });

  it("'auto' hashes a blob below 4 MiB on this thread and starts a worker only once past it", async () => {
    const data = randomBytes(AUTO_WORKER_BYTES + MiB);
    const small = layerDigest(sha256Digest(data.subarray(0, MiB)), 'small', 'auto');
    await feed(small, data.subarray(0, MiB), 64 * 1024);
    expect(busyDigestWorkers()).toBe(0);
    await small.verify();
    await small.close();

    const big = layerDigest(sha256Digest(data), 'big', 'auto');
    await feed(big, data.subarray(0, AUTO_WORKER_BYTES - 1), 64 * 1024);
    expect(busyDigestWorkers()).toBe(0);
    await feed(big, data.subarray(AUTO_WORKER_BYTES - 1), 64 * 1024);
    expect(busyDigestWorkers()).toBe(1);
    await big.verify();
    await big.close();
    expect(busyDigestWorkers()).toBe(0);
  });
});

describe('analyzeLayer with the digest on a worker thread', () => {
  const rules = testRules((p) => p.includes('liblzma') || p.endsWith('.so') || p.startsWith('/deep/'));
  const analyze = (data: Uint8Array, opts: Partial<AnalyzeOptions> = {}, chunk?: number) =>
    analyzeLayer(chunked(data, chunk), { rules, ...opts });
  let tree: string;
  let blob: Buffer;
  /** A zstd layer past the 'auto' threshold: the fixture tree plus 6 MiB of incompressible bytes. */
  let bigBlob: Buffer;

  beforeAll(() => {
    tree = buildTree();
    blob = zstdCli(tarCli(tree, 'gnu', ['--sparse']));
    const tar = tarCli(tree, 'gnu', ['--sparse']);
    bigBlob = Buffer.concat([zstdCli(tar), zstdCli(randomBytes(6 * MiB))]);
  });

  afterAll(() => rmSync(tree, { recursive: true, force: true }));

  it('yields the same facts as the digest on this thread, fed whole and one byte at a time', async () => {
    const digest = sha256Digest(blob);
    const main = await analyze(blob, { expectedDigest: digest, digestThread: 'main' });
    expect(await analyze(blob, { expectedDigest: digest, digestThread: 'worker' })).toEqual(main);
    expect(await analyze(blob, { expectedDigest: digest, digestThread: 'worker' }, 1)).toEqual(main);
    expect(main.files.some((f) => f.path === LIBLZMA)).toBe(true);
  });

  it('prepareAnalyzer parks a worker that the first zstd layer past 4 MiB then uses', async () => {
    await closeIdleDigestWorkers();
    const started = startedDigestWorkers();
    prepareAnalyzer();
    expect([liveDigestWorkers(), busyDigestWorkers()]).toEqual([1, 0]);
    const facts = await analyze(bigBlob, { expectedDigest: sha256Digest(bigBlob) }, 64 * 1024);
    expect(facts.compressedBytes).toBe(bigBlob.length);
    expect(startedDigestWorkers() - started).toBe(1);
  });

  it('rejects a zstd layer past 4 MiB whose digest differs with DigestMismatchError, by default', async () => {
    const other = sha256Digest(Buffer.concat([bigBlob, Buffer.from([0])]));
    await expect(analyze(bigBlob, { expectedDigest: other }, 64 * 1024)).rejects.toBeInstanceOf(
      DigestMismatchError,
    );
    const facts = await analyze(bigBlob, { expectedDigest: sha256Digest(bigBlob) }, 64 * 1024);
    expect(facts.compressedBytes).toBe(bigBlob.length);
    expect(busyDigestWorkers()).toBe(0);
  });

  it('reports a blob read to its end with a wrong digest as DigestMismatchError, not as corrupt', async () => {
    // Bytes missing at the end: the decoder or the tar parser fails only once the source has ended, and the
    // digest says why (the bytes changed on the way), on the worker and on this thread alike.
    const tar = tarCli(tree, 'gnu', []);
    const cases: Array<[string, Buffer]> = [
      ['zstd past 4 MiB, cut short', bigBlob.subarray(0, bigBlob.length - 3)],
      ['plain tar, cut inside an entry', tar.subarray(0, 700)],
    ];
    for (const [what, bytes] of cases) {
      const expectedDigest = sha256Digest(what.startsWith('zstd') ? bigBlob : tar);
      for (const digestThread of ['worker', 'main'] as const) {
        const err = await analyze(bytes, { expectedDigest, digestThread }, 64 * 1024).catch(
          (e: unknown) => e,
        );
        expect(err, `${what}, ${digestThread}`).toBeInstanceOf(DigestMismatchError);
      }
      // Without a digest to check, the same bytes are corrupt input.
      await expect(analyze(bytes, {}, 64 * 1024)).rejects.toBeInstanceOf(CorruptInputError);
    }
    expect(busyDigestWorkers()).toBe(0);
  });

  it('leaves no worker running after a success, a digest mismatch, corrupt input and an abort', async () => {
    const digest = sha256Digest(blob);
    await analyze(blob, { expectedDigest: digest, digestThread: 'worker' });
    expect(busyDigestWorkers()).toBe(0);

    await expect(
      analyze(blob, { expectedDigest: sha256Digest('other'), digestThread: 'worker' }),
    ).rejects.toBeInstanceOf(DigestMismatchError);
    expect(busyDigestWorkers()).toBe(0);

    const corrupt = Buffer.from(blob);
    corrupt.fill(0x55, 100, 400);
    await expect(analyze(corrupt, { expectedDigest: digest, digestThread: 'worker' })).rejects.toBeInstanceOf(
      CorruptInputError,
    );
    expect(busyDigestWorkers()).toBe(0);

    const controller = new AbortController();
    const reason = new Error('stop');
    let during = -1;
    async function* slow() {
      yield bigBlob.subarray(0, AUTO_WORKER_BYTES + 1000);
      during = busyDigestWorkers();
      controller.abort(reason);
      yield bigBlob.subarray(AUTO_WORKER_BYTES + 1000);
    }
    const aborted = analyzeLayer(slow(), {
      rules,
      expectedDigest: sha256Digest(bigBlob),
      signal: controller.signal,
    });
    await expect(aborted).rejects.toBe(reason);
    expect(during).toBe(1);
    expect(busyDigestWorkers()).toBe(0);
  });
});
