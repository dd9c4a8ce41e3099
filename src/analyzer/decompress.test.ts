import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CorruptInputError, UnsupportedError } from '../core/errors.js';
import { decompressInto, detectCompression } from './decompress.js';
import { chunked } from './test-fixtures/layers.js';

const bytes = (...b: number[]) => Uint8Array.from(b);

describe('detectCompression', () => {
  it('knows gzip and zstd by their magic bytes and treats anything else as a plain tar', () => {
    expect(detectCompression(bytes(0x1f, 0x8b, 8, 0))).toBe('gzip');
    expect(detectCompression(bytes(0x28, 0xb5, 0x2f, 0xfd, 0))).toBe('zstd');
    expect(detectCompression(Buffer.from('usr/lib/x\0\0\0'))).toBe('none');
    expect(detectCompression(bytes())).toBe('none');
  });

  it('refuses xz and bzip2 with UnsupportedError', () => {
    expect(() => detectCompression(bytes(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0))).toThrow(UnsupportedError);
    expect(() => detectCompression(Buffer.from('BZh91AY'))).toThrow(UnsupportedError);
  });
});

/** 64 MiB of zeros compressed: a few KiB in, a lot out. */
const bomb = (tool: 'gzip' | 'zstd') =>
  execFileSync('sh', ['-c', `head -c 67108864 /dev/zero | ${tool} -c -q`], { maxBuffer: 1 << 24 });

describe('decompressInto', () => {
  for (const tool of ['gzip', 'zstd'] as const) {
    it(`hands ${tool} output to the sink in pieces of at most 128 KiB, even from one small input chunk`, async () => {
      let largest = 0;
      let total = 0;
      await decompressInto(
        tool,
        chunked(bomb(tool)),
        (c) => {
          largest = Math.max(largest, c.length);
          total += c.length;
        },
        { complete: () => false },
      );
      expect(total).toBe(64 * 1024 * 1024);
      expect(largest).toBeLessThanOrEqual(128 * 1024);
    });

    it(`stops decompressing ${tool} as soon as the sink throws, and rethrows that error`, async () => {
      const stop = new Error('enough');
      let calls = 0;
      const run = decompressInto(
        tool,
        chunked(bomb(tool)),
        () => {
          calls++;
          if (calls === 3) throw stop;
        },
        { complete: () => false },
      );
      await expect(run).rejects.toBe(stop);
      expect(calls).toBe(3);
    });

    it(`reports a truncated ${tool} stream as corrupt even when the consumer already has what it needs`, async () => {
      const data = bomb(tool);
      const run = decompressInto(tool, chunked(data.subarray(0, data.length - 3)), () => {}, {
        complete: () => true,
      });
      await expect(run).rejects.toBeInstanceOf(CorruptInputError);
    });
  }
});
