import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptInputError } from '../core/errors.js';
import {
  cString,
  goParsesNumeric,
  headerName,
  parseDecimal,
  parseGoInt,
  parseNumeric,
  parseNumericLenient,
  readNumeric,
  verifyChecksum,
} from './tar-fields.js';

const ctx = { corrupt: (what: string) => new CorruptInputError(what) };

/** The first header block GNU tar writes for `name`, after `setup` created it in a temp dir. */
function firstHeader(name: string, tarArgs: string[], setup: (path: string) => void): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-tar-fields-'));
  try {
    setup(join(dir, name));
    return execFileSync('tar', [...tarArgs, '-C', dir, '-cf', '-', name]).subarray(0, 512);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const plainFile = (path: string) => writeFileSync(path, 'hi\n');

describe('parseNumeric', () => {
  it('reads the octal size field GNU tar writes', () => {
    const blk = firstHeader('f', ['--format=gnu'], plainFile);
    expect(parseNumeric(blk, 124, 12, 'size', ctx)).toBe(3);
  });

  it('reads the base-256 real size GNU tar writes for a sparse file of 9 GiB', () => {
    const blk = firstHeader('big', ['--format=gnu', '--sparse'], (path) =>
      execFileSync('truncate', ['-s', '9G', path]),
    );
    expect(blk[483]).toBe(0x80); // octal stops at 8 GiB: GNU tar really switched to base-256
    expect(parseNumeric(blk, 483, 12, 'sparse real size', ctx)).toBe(9 * 2 ** 30);
  });

  it('rejects the negative base-256 mtime GNU tar writes for a file from 1900', () => {
    const blk = firstHeader('old', ['--format=gnu'], (path) => {
      plainFile(path);
      execFileSync('touch', ['-d', '1900-01-01', path]);
    });
    expect(() => parseNumeric(blk, 136, 12, 'mtime', ctx)).toThrow(/negative base-256 mtime/);
  });

  it('rejects a checksum field of spaces only', () => {
    const blk = firstHeader('f', ['--format=gnu'], plainFile);
    blk.fill(0x20, 148, 156);
    expect(() => parseNumeric(blk, 148, 8, 'checksum', ctx)).toThrow(/empty checksum field/);
  });
});

describe('parseNumericLenient', () => {
  it('reads a malformed mode field as 0 instead of throwing', () => {
    const blk = firstHeader('f', ['--format=gnu'], plainFile);
    expect(parseNumericLenient(blk, 100, 8)).toBe(0o644);
    blk.write('06x4\0', 100, 'latin1');
    expect(parseNumericLenient(blk, 100, 8)).toBe(0);
  });
});

describe('readNumeric', () => {
  /** An 8-byte field (the size of mode) holding `bytes`, at offset 100 of a header block. */
  const field = (bytes: string | number[]) => {
    const blk = Buffer.alloc(512);
    if (typeof bytes === 'string') blk.write(bytes, 100, 'latin1');
    else Buffer.from(bytes).copy(blk, 100);
    return blk;
  };
  const cases: [string, string | number[], number | string][] = [
    ['zero-padded and NUL-terminated', '0000644\0', 0o644],
    ['all eight digits, no terminator', '00000644', 0o644],
    ['space-padded on both sides', '   644  ', 0o644],
    ['NUL-padded after the digits', '644\0\0\0\0\0', 0o644],
    ['a leading NUL before the digits', '\x00644\0\0\0\0', 0o644],
    ['space then NUL after the digits', '000644 \0', 0o644],
    ['all NULs', '\0\0\0\0\0\0\0\0', 'empty'],
    ['all spaces', '        ', 'empty'],
    ['a digit after the terminating space', '0006 44\0', 'not-octal'],
    ['anything after a NUL that ends the digits (Go stops there)', '644\0xyz', 0o644],
    ['a space before the NUL that ends the digits, then more', '644 \0xy', 'not-octal'],
    ['a non-octal digit', '0000648\0', 'not-octal'],
    ['a letter', '06x4\0', 'not-octal'],
    ['base-256', [0x80, 0, 0, 0, 0, 0, 0x01, 0xa4], 0o644],
    ['base-256 at the largest safe integer', [0x80, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 2 ** 53 - 1],
    ['base-256 past the largest safe integer', [0x80, 0x20, 0, 0, 0, 0, 0, 0], 'too-large'],
    ['negative base-256', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 'negative'],
    ['base-256 with the sign bit of the first byte set', [0xc0, 0, 0, 0, 0, 0, 0, 1], 'negative'],
  ];

  for (const [what, bytes, expected] of cases) {
    it(`reads ${what} as ${expected}, and the lenient and strict readers agree`, () => {
      const blk = field(bytes);
      expect(readNumeric(blk, 100, 8)).toBe(expected);
      expect(parseNumericLenient(blk, 100, 8)).toBe(typeof expected === 'number' ? expected : 0);
      const strict = () => parseNumeric(blk, 100, 8, 'mode', ctx);
      if (typeof expected === 'number') expect(strict()).toBe(expected);
      else if (expected === 'empty') expect(strict()).toBe(0);
      else expect(strict).toThrow(CorruptInputError);
    });
  }
});

describe('goParsesNumeric', () => {
  /** A 12-byte field (atime, ctime) holding `bytes`, at offset 345. */
  const field = (bytes: string | number[]) => {
    const blk = Buffer.alloc(512);
    if (typeof bytes === 'string') blk.write(bytes, 345, 'latin1');
    else Buffer.from(bytes).copy(blk, 345);
    return blk;
  };

  it('accepts what Go parses: octal, empty, negative and past-2^53 base-256', () => {
    for (const bytes of [
      '14572000000\0',
      '\0'.repeat(12),
      [0xff, ...Array(11).fill(0xff)],
      [0x80, 0, 0, 0, 0, 0x7f],
    ]) {
      expect(goParsesNumeric(field(bytes), 345, 12), String(bytes)).toBe(true);
    }
  });

  it('refuses what Go refuses: text, and base-256 past 63 bits', () => {
    for (const bytes of ['usr/lib/x86_', '12 34', [0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0]]) {
      expect(goParsesNumeric(field(bytes), 345, 12), String(bytes)).toBe(false);
    }
  });
});

describe('verifyChecksum', () => {
  it('accepts the checksum GNU tar writes', () => {
    const blk = firstHeader('f', ['--format=gnu'], plainFile);
    expect(() => verifyChecksum(blk, ctx)).not.toThrow();
  });

  it('rejects a header changed after it was checksummed', () => {
    const blk = firstHeader('f', ['--format=gnu'], plainFile);
    blk[0] = 'g'.charCodeAt(0);
    expect(() => verifyChecksum(blk, ctx)).toThrow(/checksum \d+ does not match/);
  });

  it('accepts the signed-byte sum old writers stored for a non-ASCII name', () => {
    const blk = firstHeader('café', ['--format=gnu'], plainFile);
    let signed = 8 * 0x20;
    blk.forEach((b, i) => {
      if (i < 148 || i >= 156) signed += b > 127 ? b - 256 : b;
    });
    const unsigned = parseNumeric(blk, 148, 8, 'checksum', ctx);
    expect(signed).not.toBe(unsigned);
    blk.write(`${signed.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect(() => verifyChecksum(blk, ctx)).not.toThrow();
  });
});

describe('parseDecimal', () => {
  it('reads the decimal numbers pax records carry', () => {
    expect(parseDecimal('9663676416', 'size', ctx)).toBe(9 * 2 ** 30);
  });

  it('reads a plus sign and leading zeros, as Go strconv.ParseInt does', () => {
    expect(parseDecimal('+5', 'size', ctx)).toBe(5);
    expect(parseDecimal(`${'0'.repeat(30)}7`, 'size', ctx)).toBe(7);
  });

  it('rejects a minus sign, blanks and words', () => {
    for (const bad of ['-1', ' 1', '1 ', '', '+', '0x10', '1_000']) {
      expect(() => parseDecimal(bad, 'size', ctx), bad).toThrow(/not a decimal number/);
    }
  });

  it('rejects numbers past 2^53', () => {
    expect(() => parseDecimal('9007199254740993', 'size', ctx)).toThrow(/size is too large/);
    expect(() => parseDecimal('1'.repeat(40), 'size', ctx)).toThrow(/not a decimal number/);
  });
});

describe('parseGoInt', () => {
  it('reads a pax value of a megabyte, leading zeros and all, in linear time', () => {
    // A backtracking pattern took minutes on this; the test timeout is the deadline.
    expect(parseGoInt(`${'0'.repeat(2 ** 20)}x`)).toBeNull();
    expect(parseGoInt(`${'0'.repeat(2 ** 20)}7`)).toBe(7);
  });

  it('reads what strconv.ParseInt(s, 10, 64) reads, signs included, and nothing else', () => {
    expect(['-5', '+0', '9223372036854775807', '-9223372036854775808'].map(parseGoInt)).toEqual([
      -5,
      0,
      2 ** 63,
      -(2 ** 63),
    ]);
    expect(['9223372036854775808', '-9223372036854775809', '', '-', '1e3', ' 1'].map(parseGoInt)).toEqual(
      Array(6).fill(null),
    );
  });
});

describe('cString', () => {
  it('reads a ustar name that fills its whole field without a NUL', () => {
    const name = 'n'.repeat(100);
    const blk = firstHeader(name, ['--format=ustar'], plainFile);
    expect(blk[100]).not.toBe(0); // the mode field follows the name directly
    expect(cString(blk, 0, 100)).toBe(name);
  });
});

describe('headerName', () => {
  it('joins the prefix and name GNU tar splits a long ustar path into', () => {
    const rel = `${'d'.repeat(120)}/${'f'.repeat(50)}`;
    const blk = firstHeader(rel, ['--format=ustar'], (path) => {
      mkdirSync(dirname(path));
      plainFile(path);
    });
    expect(cString(blk, 0, 100)).toBe('f'.repeat(50));
    expect(headerName(blk)).toBe(rel);
  });

  it('ignores the atime and ctime GNU incremental dumps keep where ustar has its prefix', () => {
    const blk = firstHeader('f', ['--format=gnu', '--incremental'], plainFile);
    expect(blk[345]).not.toBe(0);
    expect(headerName(blk)).toBe('f');
  });

  it('reads that area as the prefix when its times do not parse, as Go does for pre-1.8 Go writers', () => {
    const blk = firstHeader('f', ['--format=gnu'], plainFile);
    blk.write('usr/lib/x86_64-linux-gnu\0', 345, 'latin1');
    expect(headerName(blk)).toBe('usr/lib/x86_64-linux-gnu/f');
  });

  it('reads no prefix from a v7 header whatever sits at offset 345', () => {
    const blk = firstHeader('f', ['--format=v7'], plainFile);
    blk.write('usr/lib\0', 345, 'latin1');
    expect(headerName(blk)).toBe('f');
  });
});
