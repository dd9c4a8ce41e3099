import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FRAME_HEADER_MAX, joinHeader, ZstdFrameHeader, zstdFrameWindowSize } from './zstd-frame.js';

const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-zstd-frame-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The frame the zstd binary writes for `content` with `args`, and the window `zstd -lv` reads from it. */
function zstdFrame(name: string, content: Buffer, args: string[]): { frame: Buffer; window: number } {
  const path = join(dir, `${name}.zst`);
  const frame = execFileSync('zstd', ['-c', '-q', ...args], { input: content, maxBuffer: 1 << 26 });
  writeFileSync(path, frame);
  const listing = execFileSync('zstd', ['-lv', path]).toString();
  const window = /Window Size: .*\((\d+) B\)/.exec(listing)?.[1];
  if (window === undefined) throw new Error(`zstd -lv named no window:\n${listing}`);
  return { frame, window: Number(window) };
}

const MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

describe('zstdFrameWindowSize', () => {
  // [what, content, zstd flags, Frame_Content_Size_flag and Single_Segment_flag of the result]
  const real: [string, Buffer, string[], number][] = [
    ['a Window_Descriptor (--long=28, size unknown)', Buffer.alloc(100_000), ['--long=28'], 0x00],
    ['a 1-byte content size', Buffer.alloc(200, 1), ['--stream-size=200'], 0x20],
    ['a 2-byte content size', Buffer.alloc(1000, 2), ['--stream-size=1000'], 0x60],
    ['a 4-byte content size', Buffer.alloc(70_000, 3), ['--stream-size=70000'], 0xa0],
  ];
  for (const [what, content, args, flags] of real) {
    it(`reads the window zstd -lv reads from a frame with ${what}`, () => {
      const { frame, window } = zstdFrame(`f${content.length}`, content, args);
      expect((frame[4] as number) & 0xe0).toBe(flags);
      expect(zstdFrameWindowSize(frame.subarray(0, FRAME_HEADER_MAX))).toBe(window);
    });
  }

  it('adds the mantissa eighths to the window base', () => {
    // Exponent 17, mantissa 5: 2^27 + 5 * 2^24.
    expect(zstdFrameWindowSize(Uint8Array.from([...MAGIC, 0x00, (17 << 3) | 5]))).toBe(2 ** 27 + 5 * 2 ** 24);
  });

  it('reads an 8-byte content size after a 4-byte dictionary id in a single-segment frame', () => {
    const fcs = [0x05, 0, 0, 0, 0x01, 0, 0, 0]; // 2^32 + 5, little-endian
    expect(zstdFrameWindowSize(Uint8Array.from([...MAGIC, 0xe3, 9, 9, 9, 9, ...fcs]))).toBe(2 ** 32 + 5);
  });

  it('reads the Window_Descriptor of the longest header, not its content size', () => {
    const header = Uint8Array.from([...MAGIC, 0xc3, 0x90, 9, 9, 9, 9, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(header).toHaveLength(FRAME_HEADER_MAX);
    expect(zstdFrameWindowSize(header)).toBe(2 ** 28);
  });

  it('gives null for bytes that are not a readable frame header', () => {
    for (const bytes of [
      [...MAGIC, 0x00], // the Window_Descriptor is missing
      [...MAGIC, 0xa0, 1, 2, 3], // a 4-byte content size cut short
      [...MAGIC, 0x08, 0x90], // Reserved_bit set
      [0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0], // a skippable frame has no window
      [0x28, 0xb5, 0x2f, 0xfe, 0x00, 0x90], // not the magic number
    ]) {
      expect(zstdFrameWindowSize(Uint8Array.from(bytes)), String(bytes)).toBeNull();
    }
  });
});

describe('ZstdFrameHeader', () => {
  it('keeps the first bytes of the current frame however the decoder consumed them', () => {
    const header = new ZstdFrameHeader();
    header.step(Uint8Array.from([1, 2, 3]), 3, 0); // a whole earlier frame: forgotten at its end
    header.step(Uint8Array.from([0x28, 0xb5, 9]), 2, 7); // only two of three bytes consumed
    header.step(Uint8Array.from([0x2f]), 1, 6);
    expect([...header.completedBy(Uint8Array.from([0xfd, 0x00, 0x90, 0xaa]))]).toEqual([
      ...MAGIC,
      0x00,
      0x90,
      0xaa,
    ]);
  });

  it('remembers the largest window of the frames decoded to their end', () => {
    const header = new ZstdFrameHeader();
    const frame = (exponent: number) => Uint8Array.from([...MAGIC, 0x00, exponent << 3]);
    header.step(frame(11), 6, 0); // 2 MiB, ended
    header.step(Uint8Array.from([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]), 8, 0); // skippable: no window
    header.step(frame(14), 6, 0); // 16 MiB, ended
    header.step(frame(17), 6, 9); // 128 MiB, still open: not counted
    expect(header.largestWindow).toBe(16 * 1024 * 1024);
  });

  it('copies no more than FRAME_HEADER_MAX bytes of a frame', () => {
    const header = new ZstdFrameHeader();
    header.step(new Uint8Array(1000).fill(7), 1000, 3);
    expect(header.completedBy(new Uint8Array(100))).toEqual(new Uint8Array(FRAME_HEADER_MAX).fill(7));
    expect(joinHeader(new Uint8Array(2), new Uint8Array(1))).toHaveLength(3);
  });
});
