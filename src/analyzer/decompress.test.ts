import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../core/digest.js';
import { CorruptInputError, LimitExceededError, UnsupportedError } from '../core/errors.js';
import { decompressInto, detectCompression } from './decompress.js';
import { analyzeLayer } from './layer-stream.js';
import {
  chunked,
  END_OF_ARCHIVE,
  LIBLZMA,
  rawHeader,
  rawMember,
  testRules,
  withChecksum,
  zstdCli,
} from './test-fixtures/layers.js';

const bytes = (...b: number[]) => Uint8Array.from(b);

/** A zstd skippable frame (RFC 8878 section 3.1.2): magic, payload size, payload. */
function skippableFrame(magic: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(magic, 0);
  head.writeUInt32LE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

/** A one-file ustar archive. */
const oneFileTar = (path: string, body: string) =>
  Buffer.concat([rawMember(rawHeader({ name: path, size: body.length }), body), END_OF_ARCHIVE]);

/** A valid one-file ustar archive whose member name starts with these raw bytes. */
function tarNamedFrom(start: number[]): Buffer {
  const tar = oneFileTar('placeholder-name', 'x');
  tar.set(start, 0);
  withChecksum(tar.subarray(0, 512));
  return tar;
}

const rules = testRules((p) => p.includes('liblzma'));

describe('detectCompression', () => {
  it('knows gzip and zstd by their magic bytes and treats anything else as a plain tar', () => {
    expect(detectCompression(bytes(0x1f, 0x8b, 8, 0))).toBe('gzip');
    expect(detectCompression(bytes(0x28, 0xb5, 0x2f, 0xfd, 0))).toBe('zstd');
    expect(detectCompression(Buffer.from('usr/lib/x\0\0\0'))).toBe('none');
    expect(detectCompression(bytes())).toBe('none');
  });

  it('knows a blob starting with any of the 16 zstd skippable frame magics as zstd, as containerd does', () => {
    for (let magic = 0x184d2a50; magic <= 0x184d2a5f; magic++) {
      expect(detectCompression(skippableFrame(magic, Buffer.from('index'))), magic.toString(16)).toBe('zstd');
    }
    for (const magic of [0x184d2a4f, 0x184d2a60, 0x284d2a50]) {
      expect(detectCompression(skippableFrame(magic, Buffer.from('index'))), magic.toString(16)).toBe('none');
    }
  });

  it('takes a tar whose first name starts like a skippable frame for zstd, as containerd does', () => {
    expect(detectCompression(tarNamedFrom([0x50, 0x2a, 0x4d, 0x18]))).toBe('zstd'); // "P*M\x18"
    expect(detectCompression(tarNamedFrom([0x5f, 0x2a, 0x4d, 0x18]))).toBe('zstd'); // "_*M\x18"
  });

  it('takes the gzip magic without the deflate method byte for a plain tar, as containerd does', () => {
    expect(detectCompression(bytes(0x1f, 0x8b, 0x07, 0, 0, 0))).toBe('none');
    expect(detectCompression(tarNamedFrom([0x1f, 0x8b, 0x07]))).toBe('none');
  });

  it("leaves xz's and bzip2's magics to decompressInto: containerd's DetectCompression knows neither", () => {
    expect(detectCompression(bytes(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0))).toBe('none');
    expect(detectCompression(Buffer.from('BZh91AY'))).toBe('none');
  });
});

describe('a blob starting with the bzip2 or xz magic', () => {
  const magics: Array<[string, number[]]> = [
    ['bzip2', [0x42, 0x5a, 0x68]], // "BZh"
    ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ];

  for (const [what, magic] of magics) {
    it(`is refused as ${what}-compressed when it is not a tar, in any chunking`, async () => {
      const blob = Buffer.concat([Buffer.from(magic), Buffer.alloc(600, 0x41)]);
      for (const chunk of [Number.POSITIVE_INFINITY, 7, 1]) {
        const err = await analyzeLayer(chunked(blob, chunk), { rules }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UnsupportedError);
        expect((err as Error).message).toContain(`${what}-compressed`);
      }
      // Shorter than a tar header, it cannot be one either.
      await expect(analyzeLayer(chunked(Buffer.from(magic)), { rules })).rejects.toBeInstanceOf(
        UnsupportedError,
      );
    });

    it(`is read as the plain tar containerd unpacks when its first block is a tar header (${what})`, async () => {
      // The first member's name starts with the magic; the library follows it.
      const lib = 'payload';
      const tar = Buffer.concat([
        tarNamedFrom(magic).subarray(0, 1024),
        rawMember(rawHeader({ name: LIBLZMA.slice(1), size: lib.length }), lib),
        END_OF_ARCHIVE,
      ]);
      for (const chunk of [Number.POSITIVE_INFINITY, 7, 1]) {
        const facts = await analyzeLayer(chunked(tar, chunk), { rules });
        expect(facts.compression).toBe('none');
        expect(facts.entryCount).toBe(2);
        expect(facts.files.map((f) => f.path)).toEqual([LIBLZMA]);
      }
    });
  }
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

describe('a zstd layer that starts with a skippable frame', () => {
  const tar = oneFileTar(LIBLZMA.slice(1), 'backdoor stand-in');
  const blob = Buffer.concat([skippableFrame(0x184d2a5e, Buffer.from('seekable zstd index')), zstdCli(tar)]);

  it('yields the facts of the tar `zstd -dc` gives, with every decoder, whole and one byte at a time', async () => {
    const oracle = execFileSync('zstd', ['-dc'], { input: blob });
    expect(oracle).toEqual(tar);
    const plain = await analyzeLayer(chunked(oracle), { rules });
    expect(plain.files.map((f) => f.path)).toEqual([LIBLZMA]);
    for (const zstdDecoder of ['napi', 'worker', 'cli'] as const) {
      for (const chunk of [undefined, 1]) {
        const facts = await analyzeLayer(chunked(blob, chunk), {
          rules,
          zstdDecoder,
          expectedDigest: sha256Digest(blob),
        });
        expect(facts, `${zstdDecoder} ${chunk}`).toEqual({
          ...plain,
          compression: 'zstd',
          compressedBytes: blob.length,
        });
      }
    }
  });

  for (const zstdDecoder of ['napi', 'worker'] as const) {
    it(`names the window of a refused frame that follows the skippable frame (${zstdDecoder})`, async () => {
      const big = Buffer.concat([
        skippableFrame(0x184d2a50, Buffer.from('index')),
        zstdCli(Buffer.alloc(100_000), ['--long=28']),
      ]);
      for (const chunk of [undefined, 1]) {
        const err = await analyzeLayer(chunked(big, chunk), { rules, zstdDecoder }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LimitExceededError);
        expect((err as LimitExceededError).value).toBe(2 ** 28);
      }
    });
  }

  it('is read as zstd when it is also a plain tar, so the analyzer sees what containerd unpacks', async () => {
    // A tar whose first name opens a skippable frame spanning the whole tar, then a zstd frame: a
    // tar reader lists a harmless member, containerd (and now the analyzer) decodes the zstd frame.
    const cover = tarNamedFrom([0x50, 0x2a, 0x4d, 0x18, 0xf8, 0x07, 0, 0]); // frame size 2048 - 8
    expect(cover).toHaveLength(2048);
    const polyglot = Buffer.concat([cover, zstdCli(tar)]);
    expect(execFileSync('zstd', ['-dc'], { input: polyglot })).toEqual(tar);
    expect(execFileSync('tar', ['-t'], { input: polyglot }).toString()).not.toContain('liblzma');
    const facts = await analyzeLayer(chunked(polyglot), { rules });
    expect(facts.compression).toBe('zstd');
    expect(facts.files.map((f) => f.path)).toEqual([LIBLZMA]);
  });
});
