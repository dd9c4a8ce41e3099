import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorruptInputError, LimitExceededError } from '../core/errors.js';
import type { LayerFacts } from './facts.js';
import { type AnalyzeOptions, analyzeLayer } from './layer-stream.js';
import { buildTree, chunked, tarCli, testRules, zstdCli } from './test-fixtures/layers.js';
import { createdZstdContexts, KEEP_WINDOW_MAX } from './zstd.js';

const MiB = 1024 * 1024;
const rules = testRules((p) => p.includes('liblzma') || p.endsWith('.so'));
const analyze = (data: Uint8Array, opts: Partial<AnalyzeOptions> = {}, chunk?: number) =>
  analyzeLayer(chunked(data, chunk), { rules, zstdDecoder: 'napi', ...opts });

let tree: string;
let tar: Buffer;
let layer: Buffer;
let expected: LayerFacts;

beforeAll(async () => {
  tree = buildTree();
  tar = tarCli(tree, 'gnu', []);
  layer = zstdCli(tar);
  // The facts the same tar yields with no zstd involved: what every reuse below must reproduce.
  expected = {
    ...(await analyzeLayer(chunked(tar), { rules })),
    compression: 'zstd',
    compressedBytes: layer.length,
  };
});

afterAll(() => rmSync(tree, { recursive: true, force: true }));

describe('zstd-napi context reuse', () => {
  it('decodes the next layer with the context of a layer that ended cleanly', async () => {
    expect(await analyze(layer)).toEqual(expected);
    const created = createdZstdContexts();
    for (const chunk of [undefined, 1, 4096]) expect(await analyze(layer, {}, chunk)).toEqual(expected);
    expect(createdZstdContexts()).toBe(created);
  });

  it('decodes a different layer, then the first again, with the context each left', async () => {
    // Other files, another tar format and another zstd level: history or parameters left over from
    // the previous layer would garble this one.
    const otherTree = buildTree({ longNames: false, sparse: false });
    try {
      const otherTar = tarCli(otherTree, 'pax', []);
      const other = zstdCli(otherTar, ['-9']);
      const otherExpected = {
        ...(await analyzeLayer(chunked(otherTar), { rules })),
        compression: 'zstd',
        compressedBytes: other.length,
      };
      expect(otherExpected.files).not.toEqual(expected.files);
      await analyze(layer);
      const created = createdZstdContexts();
      expect(await analyze(other, {}, 4096)).toEqual(otherExpected);
      expect(await analyze(layer, {}, 1000)).toEqual(expected);
      expect(createdZstdContexts()).toBe(created);
    } finally {
      rmSync(otherTree, { recursive: true, force: true });
    }
  });

  it("applies each layer's own window limit to a reused context", async () => {
    await analyze(layer);
    const created = createdZstdContexts();
    // From stdin zstd -3 declares its level's 2 MiB window; the kept context last ran under 32 MiB.
    const twoMiB = zstdCli(tar, ['-3', '--zstd=wlog=21']);
    const err = await analyze(twoMiB, { limits: { maxZstdWindowBytes: MiB } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).value).toBe(2 * MiB);
    expect(createdZstdContexts()).toBe(created);
    // The refused layer's context is dropped; the next layer starts a fresh one and decodes in full.
    expect(await analyze(layer)).toEqual(expected);
    expect(createdZstdContexts()).toBe(created + 1);
  });

  it('drops the context of a truncated layer, and the next layer decodes in full', async () => {
    await analyze(layer);
    const created = createdZstdContexts();
    const err = await analyze(layer.subarray(0, layer.length - 10)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptInputError);
    expect(await analyze(layer, {}, 7)).toEqual(expected);
    expect(createdZstdContexts()).toBe(created + 1);
  });

  it(`does not keep a context whose window was larger than ${KEEP_WINDOW_MAX / MiB} MiB`, async () => {
    const longWindow = zstdCli(tar, ['-3', '--long=24']);
    const facts = await analyze(longWindow, { limits: { maxZstdWindowBytes: 16 * MiB } });
    expect(facts).toEqual({ ...expected, compressedBytes: longWindow.length });
    const created = createdZstdContexts();
    expect(await analyze(layer)).toEqual(expected);
    expect(createdZstdContexts()).toBe(created + 1);
  });
});
