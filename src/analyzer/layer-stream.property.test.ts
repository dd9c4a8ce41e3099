/**
 * Property tests: whatever bytes arrive — random, cut short, or with bits flipped — the analyzer
 * resolves with facts or rejects with one of our typed errors, and it never hangs. Each run gets
 * its own deadline: passing it fails the property (a hang), it is not a speed assertion.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Digest, sha256Digest } from '../core/digest.js';
import { CorruptInputError, DigestMismatchError, HubcrawlError } from '../core/errors.js';
import type { LayerFacts } from './facts.js';
import { analyzeLayer } from './layer-stream.js';
import { chunked, gzipCli, packTar, testRules, zstdCli } from './test-fixtures/layers.js';

const rules = testRules(() => true);
const RUN_DEADLINE_MS = 10_000;

/** Runs the analyzer with a per-run deadline; returns facts or the typed error, throws on anything else. */
async function outcome(
  data: Uint8Array,
  chunk: number,
  digest?: Digest,
): Promise<LayerFacts | HubcrawlError> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`analyzer did not settle within ${RUN_DEADLINE_MS} ms: it hangs`));
    }, RUN_DEADLINE_MS);
  });
  try {
    return await Promise.race([
      analyzeLayer(chunked(data, chunk), { rules, signal: controller.signal, expectedDigest: digest }),
      hang,
    ]);
  } catch (err) {
    if (err instanceof HubcrawlError) return err;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

const layers: Record<'none' | 'gzip' | 'zstd', Buffer> = {
  none: Buffer.alloc(0),
  gzip: Buffer.alloc(0),
  zstd: Buffer.alloc(0),
};
let endOfEntries = 0;

beforeAll(async () => {
  const tar = await packTar([
    {
      header: { name: 'var/lib/dpkg/status', type: 'file' },
      body: 'Package: a\nVersion: 1\nStatus: install ok installed\n\n',
    },
    {
      header: { name: `usr/lib/${'long'.repeat(40)}/liblzma.so.5`, type: 'file' },
      body: Buffer.alloc(3000, 7),
    },
    { header: { name: 'etc/.wh.x', type: 'file' } },
    { header: { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 } },
    { header: { name: 'lnk', type: 'symlink', linkname: 'x' } },
  ]);
  layers.none = tar;
  layers.gzip = gzipCli(tar);
  layers.zstd = zstdCli(tar);
  endOfEntries = tar.length - 1024; // tar-stream ends with exactly two zero blocks
});

/** Whether `tar` cut at a given length still reads to its end in Go's archive/tar. */
function cleanEnds(tar: Buffer, endOfEntries: number): (cut: number) => boolean {
  const ends: Array<[number, number]> = [
    [endOfEntries, endOfEntries],
    [endOfEntries + 512, endOfEntries + 512],
  ];
  for (let off = 0; off < endOfEntries; ) {
    const size = Number.parseInt(tar.toString('latin1', off + 124, off + 136), 8) || 0;
    const next = off + 512 + Math.ceil(size / 512) * 512;
    ends.push([off, off], [off + 512 + size, next]); // a header boundary; the member's padding
    off = next;
  }
  return (cut) => ends.some(([from, to]) => cut >= from && cut <= to);
}

const chunkSize = fc.constantFrom(1, 7, 512, 4096, Number.POSITIVE_INFINITY);

describe('analyzeLayer on hostile input', () => {
  it('never crashes or hangs on random bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), chunkSize, async (data, chunk) => {
        const r = await outcome(data, chunk);
        expect(r instanceof HubcrawlError || Array.isArray(r.files)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('never crashes or hangs on random bytes behind a gzip or zstd magic', async () => {
    const magic = fc.constantFrom(Uint8Array.of(0x1f, 0x8b, 8, 0), Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd));
    await fc.assert(
      fc.asyncProperty(magic, fc.uint8Array({ maxLength: 4096 }), chunkSize, async (m, rest, chunk) => {
        const r = await outcome(Buffer.concat([m, rest]), chunk);
        expect(r instanceof HubcrawlError || Array.isArray(r.files)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  // Cut 0 is left out: an empty blob is an empty plain tar, which Go's archive/tar reads too.
  for (const compression of ['gzip', 'zstd'] as const) {
    it(`rejects every truncation of a ${compression} layer with CorruptInputError`, async () => {
      const layer = layers[compression];
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: layer.length - 1 }), chunkSize, async (cut, chunk) => {
          const r = await outcome(layer.subarray(0, cut), chunk);
          expect(r).toBeInstanceOf(CorruptInputError);
        }),
        { numRuns: 200 },
      );
    });
  }

  // Go's archive/tar (Docker, containerd) takes the end of the stream between two members, inside a
  // member's padding once its data is whole, or after a lone zero block as the end of the archive.
  it('rejects every truncation of a plain tar layer that cuts inside a header or a member', async () => {
    const ends = cleanEnds(layers.none, endOfEntries);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: layers.none.length - 1 }), chunkSize, async (cut, chunk) => {
        const r = await outcome(layers.none.subarray(0, cut), chunk);
        if (ends(cut)) expect(r).not.toBeInstanceOf(HubcrawlError);
        else expect(r).toBeInstanceOf(CorruptInputError);
      }),
      { numRuns: 200 },
    );
  });

  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    it(`never accepts a ${compression} layer with a flipped bit when its digest is known`, async () => {
      const layer = layers[compression];
      const digest = sha256Digest(layer);
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: layer.length - 1 }),
          fc.integer({ min: 0, max: 7 }),
          chunkSize,
          async (at, bit, chunk) => {
            const flipped = Buffer.from(layer);
            flipped[at] = (flipped[at] as number) ^ (1 << bit);
            const r = await outcome(flipped, chunk, digest);
            expect(r).toBeInstanceOf(HubcrawlError);
          },
        ),
        { numRuns: 200 },
      );
    });
  }
});

/**
 * A blob cut exactly where a member (plain tar), a gzip member or a zstd frame ends reads as a
 * whole, smaller layer, as Go's archive/tar reads it; only the digest of the whole blob tells the
 * two apart. The pipeline always passes it, and this pins that it is what rejects the cut.
 */
describe('analyzeLayer on a blob cut at a member boundary', () => {
  /**
   * The plain tar in pieces: each entry with its data and padding (and the pax records before it),
   * then the end-of-archive marker.
   */
  function members(tar: Buffer): Buffer[] {
    const parts: Buffer[] = [];
    let start = 0;
    let off = 0;
    while (off < endOfEntries) {
      const size = Number.parseInt(tar.toString('latin1', off + 124, off + 136), 8) || 0;
      const meta = 'xgLK'.includes(tar.toString('latin1', off + 156, off + 157));
      off += 512 + Math.ceil(size / 512) * 512;
      if (meta) continue;
      parts.push(tar.subarray(start, off));
      start = off;
    }
    parts.push(tar.subarray(start));
    return parts;
  }
  const encode = { none: (b: Buffer) => b, gzip: gzipCli, zstd: (b: Buffer) => zstdCli(b) };

  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    it(`rejects every such cut of a ${compression} layer with DigestMismatchError, given the whole blob's digest`, async () => {
      const pieces = members(layers.none).map(encode[compression]);
      const whole = Buffer.concat(pieces);
      const digest = sha256Digest(whole);
      expect((await outcome(whole, Number.POSITIVE_INFINITY, digest)) as LayerFacts).toMatchObject({
        entryCount: 5,
      });
      let cut = 0;
      for (const [i, piece] of pieces.slice(0, -1).entries()) {
        cut += piece.length;
        const prefix = whole.subarray(0, cut);
        // Without the digest the prefix is a complete archive of the first members…
        const alone = await outcome(prefix, Number.POSITIVE_INFINITY);
        expect(alone, `cut after member ${i + 1}`).not.toBeInstanceOf(HubcrawlError);
        expect((alone as LayerFacts).entryCount).toBe(i + 1);
        // …and with it, the cut is found.
        for (const chunk of [Number.POSITIVE_INFINITY, 7]) {
          expect(await outcome(prefix, chunk, digest), `cut after member ${i + 1}`).toBeInstanceOf(
            DigestMismatchError,
          );
        }
      }
    });
  }
});
