import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodedTarNameLength, decodeTarName, storedNameLength } from './tar-name.js';

/** The bytes a decoded name came from, read back by the mapping's own rules (the test's oracle). */
function encode(name: string): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < name.length; ) {
    if (name[i] !== '\uFFFD') {
      const cp = name.codePointAt(i) as number;
      const ch = String.fromCodePoint(cp);
      parts.push(Buffer.from(ch, 'utf8'));
      i += ch.length;
    } else if (name[i + 1] === '\uFFFD') {
      parts.push(Buffer.from('\uFFFD', 'utf8'));
      i += 2;
    } else {
      const hex = name.slice(i + 1, i + 3);
      expect(hex).toMatch(/^[0-9a-f]{2}$/);
      parts.push(Buffer.from(hex, 'hex'));
      i += 3;
    }
  }
  return Buffer.concat(parts);
}

const decode = (bytes: number[] | Buffer) => decodeTarName(Buffer.from(bytes));

describe('decodeTarName', () => {
  it('leaves valid UTF-8 as Node decodes it: ASCII, accents, CJK, astral characters', () => {
    for (const name of ['usr/lib/liblzma.so.5', 'café/naïve', '日本語/ファイル', 'emoji/🦀.so', '']) {
      expect(decodeTarName(Buffer.from(name, 'utf8'))).toBe(name);
    }
  });

  it('writes each byte of an invalid sequence as U+FFFD and two lowercase hex digits', () => {
    expect(decode(Buffer.from('opt/lib\xff/x', 'latin1'))).toBe('opt/lib\uFFFDff/x');
    expect(decode([0x61, 0xe2, 0x82, 0x62])).toBe('a\uFFFDe2\uFFFD82b'); // a sequence cut short
    expect(decode([0xc0, 0xaf])).toBe('\uFFFDc0\uFFFDaf'); // an overlong "/"
    expect(decode([0xed, 0xa0, 0x80])).toBe('\uFFFDed\uFFFDa0\uFFFD80'); // a UTF-16 surrogate
    expect(decode([0xf4, 0x90, 0x80, 0x80])).toBe('\uFFFDf4\uFFFD90\uFFFD80\uFFFD80'); // past U+10FFFF
  });

  it('doubles a U+FFFD the name really holds', () => {
    expect(decodeTarName(Buffer.from('a\uFFFDff', 'utf8'))).toBe('a\uFFFD\uFFFDff');
    expect(decode([0xef, 0xbf, 0xbd, 0xff])).toBe('\uFFFD\uFFFD\uFFFDff');
  });

  it('keeps apart the names U+FFFD replacement would merge', () => {
    const names = [[0xff], [0xfe], [0xef, 0xbf, 0xbd], [0xc3], [0xc3, 0x28]].map(decode);
    expect(new Set(names).size).toBe(names.length);
  });

  it('decodes a slice of a buffer without looking outside it', () => {
    const buf = Buffer.from([0xff, 0x61, 0xc3, 0xa9, 0xff]);
    expect(decodeTarName(buf, 1, 4)).toBe('aé');
    expect(decodeTarName(buf, 1, 3)).toBe('a\uFFFDc3');
  });

  it('is injective: the bytes come back from any name it produced', () => {
    const bytes = fc.uint8Array({ maxLength: 40 });
    const nearUtf8 = fc
      .array(fc.oneof(fc.string({ unit: 'binary', maxLength: 4 }), fc.uint8Array({ maxLength: 3 })))
      .map((parts) =>
        Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))),
      );
    fc.assert(
      fc.property(
        fc.oneof(
          bytes.map((b) => Buffer.from(b)),
          nearUtf8,
        ),
        (buf) => {
          expect(encode(decodeTarName(buf)).equals(buf)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('decodedTarNameLength', () => {
  it('counts an escaped byte as three units, a doubled U+FFFD and an astral character as two', () => {
    expect(decodedTarNameLength(Buffer.from('usr/lib'))).toBe(7);
    expect(decodedTarNameLength(Buffer.of(0x61, 0xff))).toBe(4);
    expect(decodedTarNameLength(Buffer.of(0xef, 0xbf, 0xbd))).toBe(2);
    expect(decodedTarNameLength(Buffer.from('🦀é'))).toBe(3);
  });

  it('is the length of the text decodeTarName builds, for any bytes and any slice of them', () => {
    // Whole and cut sequences of each kind, and the sequences decodeTarName escapes byte by byte:
    // a surrogate, overlong forms, past U+10FFFF, bytes UTF-8 never uses, a lone continuation byte.
    const sequences = [
      [0xc3, 0xa9],
      [0xe2, 0x80, 0xa8],
      [0xef, 0xbf, 0xbd],
      [0xf0, 0x9f, 0xa6, 0x80],
      [0xf4, 0x8f, 0xbf, 0xbf],
      [0xc3],
      [0xe2, 0x80],
      [0xf0, 0x9f, 0xa6],
      [0xed, 0xa0, 0x80],
      [0xc0, 0xaf],
      [0xe0, 0x80, 0xaf],
      [0xf0, 0x80, 0x80, 0xaf],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf5],
      [0xff],
      [0x80],
    ];
    const part = fc.oneof(
      fc.constantFrom(...sequences).map((b) => Buffer.from(b)),
      fc.string({ unit: 'binary', maxLength: 4 }).map((t) => Buffer.from(t)),
      fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)),
    );
    const sliced = fc
      .array(part, { maxLength: 16 })
      .map((parts) => Buffer.concat(parts))
      .chain((buf) =>
        fc
          .tuple(fc.nat({ max: buf.length }), fc.nat({ max: buf.length }))
          .map(([a, b]) => ({ buf, start: Math.min(a, b), end: Math.max(a, b) })),
      );
    fc.assert(
      fc.property(sliced, ({ buf, start, end }) => {
        expect(decodedTarNameLength(buf, start, end)).toBe(decodeTarName(buf, start, end).length);
        expect(decodedTarNameLength(buf)).toBe(decodeTarName(buf).length);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('storedNameLength', () => {
  it('counts an escaped byte and a doubled U+FFFD as one character each', () => {
    expect(storedNameLength('plain')).toBe(5);
    expect(storedNameLength('a\uFFFDffb')).toBe(3);
    expect(storedNameLength('\uFFFD\uFFFD\uFFFDff')).toBe(2);
  });

  it('is the stored length: characters of the valid text plus one per invalid byte', () => {
    // 0xc0, 0xc1 and 0xf5–0xff never appear in UTF-8, and a lone 0x80–0xbf continues nothing here.
    const invalid = fc.constantFrom(0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xfe, 0xff);
    const part = fc.oneof(fc.string({ unit: 'binary', maxLength: 5 }), invalid);
    fc.assert(
      fc.property(fc.array(part, { maxLength: 12 }), (parts) => {
        const buf = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.of(p))));
        const expected = parts.reduce<number>((n, p) => n + (typeof p === 'string' ? p.length : 1), 0);
        expect(storedNameLength(decodeTarName(buf))).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});
