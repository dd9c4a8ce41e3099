/**
 * Crafted archives read as Go's archive/tar reads them (src/archive/tar/reader.go: next, mergePAX,
 * parsePAX, readGNUSparsePAXHeaders, readHeader). Docker, containerd and Podman apply layers with
 * that reader, so wherever ours differs an attacker chooses which name hubcrawl sees and which one
 * the runtime writes. The tNN names are the cases of the exploratory test that found the gaps;
 * test/reliability/hostile/go-tar-oracle.test.ts checks the same shapes against umoci.
 */
import { describe, expect, it } from 'vitest';
import { CorruptInputError, LimitExceededError } from '../core/errors.js';
import { DEFAULT_LIMITS } from './limits.js';
import {
  CLEAN,
  EVIL,
  file,
  gnuLong,
  header,
  LIB,
  member,
  nulMember,
  padded,
  pax,
  readEntries,
  tarOf,
} from './test-fixtures/crafted-tar.js';

const CHUNKS = [Number.POSITIVE_INFINITY, 512, 7, 1];

/** The names of the members of `tar`, checked to be the same in every chunking. */
function names(tar: Buffer): string[] {
  const [first, ...rest] = CHUNKS.map((c) => readEntries(tar, c).map((e) => e.entry.name));
  for (const other of rest) expect(other).toEqual(first);
  return first as string[];
}

describe('an x header replaces the records of an earlier one (Go keeps the last map)', () => {
  it('t04: the path of a first x header no longer names the member after a second x', () => {
    expect(names(tarOf(pax({ path: 'opt/decoy.bin' }), pax({ mtime: '1' }), file(LIB, EVIL)))).toEqual([LIB]);
  });

  it('t10b, t10d: a replaced x cannot turn a member into the backdoor path or a whiteout of it', () => {
    const whiteout = 'usr/lib/x86_64-linux-gnu/.wh.liblzma.so.5.6.1';
    for (const path of [LIB, whiteout]) {
      expect(names(tarOf(pax({ path }), pax({ mtime: '1' }), file('opt/unrelated.bin', CLEAN)))).toEqual([
        'opt/unrelated.bin',
      ]);
    }
  });

  it('keeps a GNU long name that came before the second x header', () => {
    expect(names(tarOf(gnuLong(LIB), pax({ mtime: '1' }), file('short', EVIL)))).toEqual([LIB]);
  });

  it('drops the sparse records of a replaced x, so the member is read as a plain file', () => {
    const sparse = pax([
      ['GNU.sparse.major', '1'],
      ['GNU.sparse.minor', '0'],
      ['GNU.sparse.realsize', '100'],
    ]);
    const [e] = readEntries(tarOf(sparse, pax({ mtime: '1' }), file(LIB, 'plain')));
    expect(e?.entry.sparse).toBe(false);
    expect(e?.data.toString()).toBe('plain');
  });
});

describe('a pax global header (g) is an entry of its own, which Docker ignores', () => {
  it('t06: drops a pending x, so the member keeps its own name', () => {
    const g = pax({ comment: 'c' }, 'g');
    expect(names(tarOf(pax({ path: 'opt/decoy.bin' }), g, file(LIB, EVIL)))).toEqual([LIB]);
  });

  it('drops pending GNU long names and link targets too', () => {
    const g = pax({ comment: 'c' }, 'g');
    const tar = tarOf(
      gnuLong('opt/decoy.bin'),
      gnuLong('decoy-target', 'K'),
      g,
      header({ name: LIB, typeflag: '2', linkname: 'x' }),
    );
    expect(readEntries(tar).map((e) => [e.entry.name, e.entry.linkname])).toEqual([[LIB, 'x']]);
  });

  it('is not handed to the visitor, and neither it nor its path record names a member', () => {
    const tar = tarOf(pax({ path: LIB }, 'g'), file('a', '1'));
    expect(names(tar)).toEqual(['a']);
  });

  it('fails the layer when its records are malformed, as it fails in Go', () => {
    const g = member({ name: 'GlobalHead.0', typeflag: 'g' }, '99 comment=c\n');
    expect(() => readEntries(tarOf(g, file('a', '1')))).toThrow(CorruptInputError);
  });
});

describe('an empty pax value keeps the header field (Go mergePAX: "Keep the original USTAR value")', () => {
  it('t02: an empty path record leaves the ustar name', () => {
    expect(names(tarOf(pax({ path: '' }), file(LIB, EVIL)))).toEqual([LIB]);
  });

  it('t09: an empty size record leaves the header size, so the data is read', () => {
    const [e] = readEntries(tarOf(pax({ size: '' }), file(LIB, EVIL)));
    expect(e?.data.equals(EVIL)).toBe(true);
  });

  it('an empty linkpath record leaves the ustar link target', () => {
    const tar = tarOf(pax({ linkpath: '' }), header({ name: 'l', typeflag: '2', linkname: 'target' }));
    expect(readEntries(tar)[0]?.entry.linkname).toBe('target');
  });

  it('an empty value later in the same x cancels an earlier one', () => {
    expect(
      names(
        tarOf(
          pax([
            ['path', 'opt/decoy.bin'],
            ['path', ''],
          ]),
          file(LIB, EVIL),
        ),
      ),
    ).toEqual([LIB]);
  });
});

describe('a GNU long name or link beats pax path and linkpath, in either order', () => {
  it('t03, t03b: the long name wins over the pax path before or after it', () => {
    const decoy = pax({ path: 'opt/decoy.bin' });
    expect(names(tarOf(decoy, gnuLong(LIB), file('opt/short', EVIL)))).toEqual([LIB]);
    expect(names(tarOf(gnuLong(LIB), decoy, file('opt/short', EVIL)))).toEqual([LIB]);
  });

  it('t10: a pax path cannot name the backdoor when a long name says otherwise', () => {
    expect(names(tarOf(gnuLong('opt/unrelated.bin'), pax({ path: LIB }), file('x', CLEAN)))).toEqual([
      'opt/unrelated.bin',
    ]);
  });

  it('the long link target wins over the pax linkpath before or after it', () => {
    const link = header({ name: 'l', typeflag: '2', linkname: 'ustar' });
    for (const records of [
      [pax({ linkpath: 'pax' }), gnuLong('gnu', 'K')],
      [gnuLong('gnu', 'K'), pax({ linkpath: 'pax' })],
    ]) {
      expect(readEntries(tarOf(...records, link))[0]?.entry.linkname).toBe('gnu');
    }
  });

  it('an empty long name names nothing, leaving the pax path', () => {
    expect(names(tarOf(pax({ path: 'from-pax' }), gnuLong(''), file('ustar', '1')))).toEqual(['from-pax']);
  });
});

describe('GNU.sparse.name counts only for a pax sparse member (Go readGNUSparsePAXHeaders)', () => {
  /** A GNU 1.0 sparse member: its map ("1 run: 4 bytes at offset 6") fills the first data block. */
  const sparse10 = (records: Record<string, string>) =>
    tarOf(
      pax({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.realsize': '10', ...records }),
      member(
        { name: 'GNUSparseFile.0/sp' },
        Buffer.concat([Buffer.from('1\n6\n4\n'.padEnd(512, '\0')), Buffer.from('data')]),
      ),
    );

  it('t05, t10c: on a member without sparse records it changes nothing', () => {
    expect(names(tarOf(pax({ 'GNU.sparse.name': 'opt/decoy.bin' }), file(LIB, EVIL)))).toEqual([LIB]);
    expect(names(tarOf(pax({ 'GNU.sparse.name': LIB }), file('opt/unrelated.bin', CLEAN)))).toEqual([
      'opt/unrelated.bin',
    ]);
  });

  it('names a real pax sparse member, even over a GNU long name (Go applies it last)', () => {
    const [e] = readEntries(sparse10({ 'GNU.sparse.name': 'sp' }));
    expect([e?.entry.name, e?.data.toString('latin1')]).toEqual(['sp', `${'\0'.repeat(6)}data`]);
    const withLong = Buffer.concat([gnuLong('long'), sparse10({ 'GNU.sparse.name': 'sp' })]);
    expect(names(withLong)).toEqual(['sp']);
  });

  it('reads a member with a GNU sparse version Go does not know as a regular file', () => {
    const tar = tarOf(
      pax({
        'GNU.sparse.major': '2',
        'GNU.sparse.minor': '0',
        'GNU.sparse.name': LIB,
        'GNU.sparse.realsize': '9',
      }),
      file('opt/unrelated.bin', 'as stored'),
    );
    const [e] = readEntries(tar);
    expect([e?.entry.name, e?.entry.sparse, e?.data.toString()]).toEqual([
      'opt/unrelated.bin',
      false,
      'as stored',
    ]);
  });

  it('takes the real size from GNU.sparse.size before GNU.sparse.realsize, as Go does', () => {
    const [e] = readEntries(sparse10({ 'GNU.sparse.size': '12' }));
    expect(e?.entry.size).toBe(12);
    expect(e?.data.toString('latin1')).toBe(`${'\0'.repeat(6)}data\0\0`);
  });
});

describe("an old-GNU header's atime/ctime area, read as a prefix where Go reads it so", () => {
  const gnu = (name: string, at345: string, data: Buffer) => member({ name, format: 'gnu', at345 }, data);

  it('t12b: an empty name and a path in that area name the file by the path', () => {
    expect(names(tarOf(gnu('', LIB, EVIL)))).toEqual([`${LIB}/`]);
  });

  it('t12c: a name and a directory in that area join, as a pre-Go 1.8 writer meant', () => {
    expect(names(tarOf(gnu('liblzma.so.5.6.1', 'usr/lib/x86_64-linux-gnu', CLEAN)))).toEqual([LIB]);
  });

  it('leaves times Go parses alone, garbage after a NUL included', () => {
    const times = '14572000000\0' + '1\0garbage\0\0\0';
    expect(names(tarOf(gnu('liblzma.so.5.6.1', times, EVIL)))).toEqual(['liblzma.so.5.6.1']);
  });

  it('ignores that area when it is not ASCII', () => {
    expect(names(tarOf(gnu('liblzma.so.5.6.1', 'usr/lib/\u00e9', EVIL)))).toEqual(['liblzma.so.5.6.1']);
  });

  it('reads only 131 prefix bytes from a star header, whose atime and ctime follow them', () => {
    // 155 bytes of prefix to a ustar reader; to Go, 131 of path (no NUL) and two octal times.
    const prefix = `opt/${'d'.repeat(127)}${'0'.repeat(24)}`;
    const tar = tarOf(member({ name: 'x', format: 'star', at345: prefix }, 'data'));
    expect(names(tar)).toEqual([`opt/${'d'.repeat(127)}/x`]);
  });
});

describe('where an archive may end (Go: io.EOF at a header boundary is the end)', () => {
  it('t08: reads an archive that ends after its last member, without the end-of-archive marker', () => {
    const tar = file(LIB, EVIL);
    for (const chunk of CHUNKS) expect(readEntries(tar, chunk)[0]?.data.equals(EVIL)).toBe(true);
  });

  it("accepts an end inside the last member's padding, once its data is whole", () => {
    const tar = file(LIB, 'abc').subarray(0, 512 + 100);
    for (const chunk of CHUNKS) expect(readEntries(tar, chunk)[0]?.data.toString()).toBe('abc');
  });

  it('accepts an empty stream and one that ends after metadata records, as empty archives', () => {
    expect(names(Buffer.alloc(0))).toEqual([]);
    expect(names(Buffer.concat([file('a', '1'), pax({ path: 'b' })]))).toEqual(['a']);
  });

  it("still refuses an end inside a header or inside a member's data", () => {
    const whole = file(LIB, 'abc');
    expect(() => readEntries(Buffer.concat([whole, header({ name: 'b' }).subarray(0, 100)]))).toThrow(
      /truncated: it ended at byte 1124 inside a header \(100 of 512 bytes\)/,
    );
    expect(() => readEntries(whole.subarray(0, 514))).toThrow(/truncated.*inside a member/);
  });
});

describe('names that are not valid UTF-8 stay distinct', () => {
  const lib = (dir: number) =>
    Buffer.concat([Buffer.from('opt/lib'), Buffer.of(dir), Buffer.from('/liblzma.so.5.6.1')]);

  it('t14, t14b: \\xff and \\xfe in a ustar name give two names', () => {
    expect(names(tarOf(file(lib(0xff), EVIL), file(lib(0xfe), CLEAN)))).toEqual([
      'opt/lib\uFFFDff/liblzma.so.5.6.1',
      'opt/lib\uFFFDfe/liblzma.so.5.6.1',
    ]);
  });

  it('in pax paths, GNU long names, link targets and the ustar prefix alike', () => {
    const bad = Buffer.from([0x61, 0xc3]); // "a" and a lead byte with nothing after it
    const tar = tarOf(
      pax({ path: bad }),
      file('x', '1'),
      gnuLong(bad),
      gnuLong(bad, 'K'),
      header({ name: 'y', typeflag: '2', linkname: 'z' }),
      header({ name: 'n', typeflag: '2', linkname: bad, at345: bad }),
    );
    expect(readEntries(tar).map((e) => [e.entry.name, e.entry.linkname])).toEqual([
      ['a\uFFFDc3', ''],
      ['a\uFFFDc3', 'a\uFFFDc3'],
      ['a\uFFFDc3/n', 'a\uFFFDc3'],
    ]);
  });

  it('counts an escaped byte as one character against maxPathLength', () => {
    const tar = tarOf(file(Buffer.alloc(100, 0xff), '1'));
    const limits = { ...DEFAULT_LIMITS, maxPathLength: 100 };
    expect(readEntries(tar, 512, limits)[0]?.entry.name).toBe('\uFFFDff'.repeat(100));
    expect(() => readEntries(tar, 512, { ...limits, maxPathLength: 99 })).toThrow(LimitExceededError);
  });
});

describe('sizes of header-only members, which Go never reads data for', () => {
  it('accepts a negative size on a symlink, in the header or in a pax record', () => {
    const negative = Buffer.alloc(12, 0xff);
    const tar = tarOf(
      header({ name: 'a', typeflag: '2', linkname: 't', sizeField: negative }),
      pax({ size: '-1' }),
      header({ name: 'b', typeflag: '2', linkname: 't' }),
      file('c', '1'),
    );
    expect(names(tar)).toEqual(['a', 'b', 'c']);
  });

  it('still refuses a negative size on a regular file', () => {
    expect(() => readEntries(tarOf(pax({ size: '-1' }), file('a', '1')))).toThrow(/pax size "-1"/);
  });
});

describe("a v7 regular file (typeflag NUL) whose final name ends in '/' is a directory (Go reader.go next)", () => {
  const inner = file(LIB, EVIL);
  /** [name, type, data] of every member, checked to be the same in every chunking. */
  const read = (tar: Buffer) => {
    const [first, ...rest] = CHUNKS.map((c) =>
      readEntries(tar, c).map((e) => [e.entry.name, e.entry.type, e.data.toString('latin1')]),
    );
    for (const other of rest) expect(other).toEqual(first);
    return first;
  };
  const smuggled = [
    [LIB, 'file', EVIL.toString('latin1')],
    ['opt/after', 'file', 'after'],
  ];

  it('r1: reads no data for it, so the member its size field covered is read as the next member', () => {
    for (const format of ['ustar', 'v7'] as const) {
      const tar = tarOf(nulMember('opt/x/', inner, { format }), file('opt/after', 'after'));
      expect(read(tar)).toEqual([['opt/x/', 'directory', ''], ...smuggled]);
    }
  });

  it('r3: the slash may come from a pax path or a GNU long name over a plain header name', () => {
    const viaPax = tarOf(pax({ path: 'opt/y/' }), nulMember('opt/plain', inner), file('opt/after', 'after'));
    expect(read(viaPax)).toEqual([['opt/y/', 'directory', ''], ...smuggled]);
    const viaLong = tarOf(gnuLong('opt/z/'), nulMember('opt/plain', inner), file('opt/after', 'after'));
    expect(read(viaLong)).toEqual([['opt/z/', 'directory', ''], ...smuggled]);
  });

  it("reads a NUL member without the slash, and a '0' member with it, as regular files with data", () => {
    expect(read(tarOf(nulMember('opt/plain', inner)))).toEqual([
      ['opt/plain', 'file', inner.toString('latin1')],
    ]);
    const zero = Buffer.concat([header({ name: 'opt/x/', size: inner.length }), padded(inner)]);
    expect(read(tarOf(zero))).toEqual([['opt/x/', 'file', inner.toString('latin1')]]);
  });

  it('a slash the pax path removes leaves a regular file', () => {
    expect(read(tarOf(pax({ path: 'opt/f' }), nulMember('opt/x/', inner)))).toEqual([
      ['opt/f', 'file', inner.toString('latin1')],
    ]);
  });

  it('refuses pax sparse records on such a directory, as Go does (header-only types cannot be sparse)', () => {
    const tar = tarOf(
      pax({
        'GNU.sparse.major': '0',
        'GNU.sparse.minor': '1',
        'GNU.sparse.map': '0,1',
        'GNU.sparse.numblocks': '1',
      }),
      nulMember('opt/x/', Buffer.from('d')),
    );
    expect(() => readEntries(tar)).toThrow(CorruptInputError);
  });
});

describe('GNU sparse 0.0 offset/numbytes records are read only for a pax sparse member', () => {
  it('r4: with a sparse version Go does not know, numbers that are not numbers do not fail the layer', () => {
    const records = pax([
      ['GNU.sparse.major', '9'],
      ['GNU.sparse.minor', '9'],
      ['GNU.sparse.offset', 'x'],
      ['GNU.sparse.numbytes', 'y'],
    ]);
    const [e] = readEntries(tarOf(records, file(LIB, EVIL)));
    expect([e?.entry.name, e?.entry.sparse, e?.data.equals(EVIL)]).toEqual([LIB, false, true]);
  });

  it('still fails a member they make sparse (no version, so Go guesses 0.0) when they are not numbers', () => {
    const records = pax([
      ['GNU.sparse.offset', 'x'],
      ['GNU.sparse.numbytes', 'y'],
    ]);
    expect(() => readEntries(tarOf(records, file(LIB, EVIL)))).toThrow(/not a decimal number/);
  });

  it('still fails records out of order, even on a member Go reads as a plain file (Go parsePAX)', () => {
    const records = pax([
      ['GNU.sparse.major', '9'],
      ['GNU.sparse.numbytes', '1'],
    ]);
    expect(() => readEntries(tarOf(records, file(LIB, EVIL)))).toThrow(CorruptInputError);
  });
});

describe('maxHeaderBytes bounds each metadata record, as Go bounds each special file (1 MiB)', () => {
  it('r6: reads a member after two pax headers that together pass the limit, the second replacing the first', () => {
    const big = 'x'.repeat(600 * 1024);
    const tar = tarOf(pax({ comment: big }), pax({ comment: big }), file(LIB, EVIL));
    expect(readEntries(tar, 4096).map((e) => e.entry.name)).toEqual([LIB]);
  });

  it('lets an x, an L and a K each reach the limit before one member', () => {
    const limits = { ...DEFAULT_LIMITS, maxHeaderBytes: 2048 };
    const near = (n: number) => 'n'.repeat(n);
    const tar = tarOf(
      gnuLong(`opt/${near(1900)}`),
      gnuLong(`opt/${near(1900)}`, 'K'),
      pax({ comment: near(1900) }),
      header({ name: 'l', typeflag: '2' }),
    );
    expect(readEntries(tar, 512, limits).map((e) => e.entry.name)).toEqual([`opt/${near(1900)}`]);
  });

  it('still fails one record larger than the limit', () => {
    const limits = { ...DEFAULT_LIMITS, maxHeaderBytes: 2048 };
    const err = (() => {
      try {
        readEntries(tarOf(pax({ comment: 'n'.repeat(2100) }), file('f')), 512, limits);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).limit).toBe('maxHeaderBytes');
  });
});

describe("an old-GNU sparse member ('S') stores as many bytes as its pax size says (Go mergePAX)", () => {
  it('r2: a pax size of 0 leaves nothing stored, so the bytes its header size covers are the next member', () => {
    const inner = file(LIB, EVIL);
    const s = header({ name: 'opt/sp', typeflag: 'S', format: 'gnu', size: inner.length });
    const entries = readEntries(tarOf(pax({ size: '0' }), s, padded(inner)), 7);
    expect(entries.map((e) => [e.entry.name, e.entry.size])).toEqual([
      ['opt/sp', 0],
      [LIB, EVIL.length],
    ]);
    expect(entries[1]?.data.equals(EVIL)).toBe(true);
  });
});
