import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTarName } from '../tar-name.js';
import { normalizeListedPath, packageFromInfoFile, parseMd5sums, parseMd5sumsBytes } from './md5sums.js';

const INFO = '/var/lib/dpkg/info/liblzma5:amd64.md5sums';
const real = readFileSync(new URL('../fixtures/dpkg/liblzma5:amd64.md5sums', import.meta.url), 'utf8');

describe('parseMd5sums', () => {
  it('reads every line of a real md5sums file with absolute paths', () => {
    const facts = parseMd5sums(real, INFO);
    expect(facts).toHaveLength(real.trim().split('\n').length);
    expect(facts[0]).toEqual({
      package: 'liblzma5',
      infoFile: INFO,
      md5: 'af0e525fd86aa1ea0899f6152cd6a756',
      path: '/lib/x86_64-linux-gnu/liblzma.so.5.4.1',
    });
    expect(facts.every((f) => f.path.startsWith('/') && f.package === 'liblzma5')).toBe(true);
  });

  it('matches the md5sums line of the backdoored 5.6.1-1 package from the reference notes', () => {
    const line = '53d82bb511b71a5d4794cf2d8a2072c1  usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
    expect(parseMd5sums(`${line}\n`, INFO)).toEqual([
      {
        package: 'liblzma5',
        infoFile: INFO,
        md5: '53d82bb511b71a5d4794cf2d8a2072c1',
        path: '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1',
      },
    ]);
  });

  it('skips malformed lines, lowercases md5s, accepts binary-mode markers and CRLF', () => {
    const text = [
      'not an md5 line',
      'AF0E525FD86AA1EA0899F6152CD6A756  ./usr/lib/a',
      '0123456789abcdef0123456789abcde  usr/short-md5',
      'af0e525fd86aa1ea0899f6152cd6a756 *usr/lib/b\r',
      'af0e525fd86aa1ea0899f6152cd6a756usr/lib/no-space',
      'af0e525fd86aa1ea0899f6152cd6a756  ',
      '',
    ].join('\n');
    expect(
      parseMd5sums(text, '/var/lib/dpkg/info/x.md5sums').map((f) => [f.md5.slice(0, 4), f.path]),
    ).toEqual([
      ['af0e', '/usr/lib/a'],
      ['af0e', '/usr/lib/b'],
    ]);
  });
});

describe('parseMd5sumsBytes', () => {
  const bytes = (...parts: (string | number[])[]) =>
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
  const md5 = 'af0e525fd86aa1ea0899f6152cd6a756';

  it('reads a real md5sums file as parseMd5sums reads its text', () => {
    expect(parseMd5sumsBytes(Buffer.from(real), INFO)).toEqual(parseMd5sums(real, INFO));
  });

  it("decodes a path as a tar name and skips one that JavaScript's `.` would not match", () => {
    const list = bytes(
      `${md5}  usr/lib/a\xff\n`,
      `${md5}  usr/lib/b\r\r\n`,
      `${md5}  usr/lib/c`,
      [0xe2, 0x80, 0xa8],
      `\n${md5}  usr/lib/d`,
      [0xe2, 0x80, 0xa9],
      `\n${md5}  \xff\n`,
    );
    expect(parseMd5sumsBytes(list, INFO).map((f) => f.path)).toEqual(['/usr/lib/a\uFFFDff', '/\uFFFDff']);
    expect(parseMd5sumsBytes(list, INFO)).toEqual(parseMd5sums(decodeTarName(list), INFO));
  });

  it('gives what parseMd5sums gives for the text decodeTarName makes of the same bytes', () => {
    // Now and then a character beside a range of hex digits, so that most prefixes are right.
    const hex = fc.oneof(
      { weight: 90, arbitrary: fc.constantFrom(...'0123456789abcdefABCDEF') },
      fc.constantFrom(...'/:@G`g'),
    );
    const hexes = (n: number) => fc.array(hex, { minLength: n, maxLength: n }).map((h) => h.join(''));
    const prefix = fc.oneof(
      { weight: 4, arbitrary: fc.tuple(hexes(32), fc.constantFrom('  ', ' *')).map(([h, s]) => h + s) },
      fc
        .tuple(fc.oneof(hexes(31), hexes(33)), fc.constantFrom('  ', ' *', ' ', '\t ', ' x'))
        .map(([h, s]) => h + s),
    );
    // Path bytes near every edge: line ends the regex refuses (CR, U+2028, U+2029), invalid and cut
    // sequences, a real U+FFFD, path separators that normalize away.
    const fragment = fc.oneof(
      fc
        .constantFrom('usr/', 'lib', '.', '/', './', ' ', '*', '\r', '\xff', '\xfe', '\xc3', '\x80')
        .map((t) => Buffer.from(t, 'latin1')),
      fc
        .constantFrom(
          [0xe2, 0x80, 0xa8],
          [0xe2, 0x80, 0xa9],
          [0xe2, 0x80],
          [0xef, 0xbf, 0xbd],
          [0xed, 0xa0, 0x80],
        )
        .map((b) => Buffer.from(b)),
      fc.string({ unit: 'binary', maxLength: 3 }).map((t) => Buffer.from(t)),
      fc.uint8Array({ maxLength: 3 }).map((b) => Buffer.from(b)),
    );
    const path = fc.array(fragment, { maxLength: 8 }).map((f) => Buffer.concat(f));
    const line = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(prefix, path).map(([p, b]) => Buffer.concat([Buffer.from(p), b])) },
      fc.constantFrom('', '\r', `${md5}  `, `${md5}  \r`).map((t) => Buffer.from(t, 'latin1')),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    );
    const list = fc
      .tuple(fc.array(line, { maxLength: 8 }), fc.boolean())
      .map(([lines, finalNewline]) =>
        Buffer.concat(
          lines.flatMap((l, i) => (i < lines.length - 1 || finalNewline ? [l, Buffer.of(0x0a)] : [l])),
        ),
      );
    fc.assert(
      fc.property(
        fc.oneof({ weight: 4, arbitrary: list }, fc.uint8Array({ maxLength: 200 }).map(Buffer.from)),
        (buf) => {
          expect(parseMd5sumsBytes(buf, INFO)).toEqual(parseMd5sums(decodeTarName(buf), INFO));
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('packageFromInfoFile', () => {
  it('strips the architecture qualifier and the extension', () => {
    expect(packageFromInfoFile(INFO)).toBe('liblzma5');
    expect(packageFromInfoFile('/var/lib/dpkg/info/bash.md5sums')).toBe('bash');
    expect(packageFromInfoFile('/var/lib/dpkg/status.d/libssl3.md5sums')).toBe('libssl3');
  });

  it('normalizes listed paths to absolute form', () => {
    expect(normalizeListedPath('./usr//lib/./x')).toBe('/usr/lib/x');
    expect(normalizeListedPath('usr/lib/x')).toBe('/usr/lib/x');
  });
});
