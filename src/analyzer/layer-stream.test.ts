import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../core/digest.js';
import {
  CorruptInputError,
  DigestMismatchError,
  LimitExceededError,
  UnsupportedError,
} from '../core/errors.js';
import type { LayerFacts } from './facts.js';
import { type AnalyzeOptions, analyzeLayer, FACT_RECORD_BYTES } from './layer-stream.js';
import { compileSignature } from './signatures.js';
import { decodeTarName } from './tar-name.js';
import { importable, runInLimitedHeap } from './test-fixtures/heap-limited.js';
import {
  buildTree,
  chunked,
  coreutilsHashes,
  END_OF_ARCHIVE,
  gzipCli,
  LIBLZMA,
  LONG_FILE,
  packTar,
  paxMember,
  rawHeader,
  rawMember,
  tarCli,
  testRules,
  withChecksum,
  zstdCli,
} from './test-fixtures/layers.js';

const rules = testRules((p) => p.includes('liblzma') || p.endsWith('.so') || p.startsWith('/deep/'));
const analyze = (data: Uint8Array, opts: Partial<AnalyzeOptions> = {}, chunk?: number) =>
  analyzeLayer(chunked(data, chunk), { rules, ...opts });

let tree: string;
let ustarTree: string;
const tars: Record<string, Buffer> = {};

beforeAll(() => {
  tree = buildTree();
  ustarTree = buildTree({ longNames: false, sparse: false });
  tars.gnu = tarCli(tree, 'gnu', ['--sparse']);
  tars.pax = tarCli(tree, 'pax', ['--sparse']);
  tars.ustar = tarCli(ustarTree, 'ustar');
});

afterAll(() => {
  rmSync(tree, { recursive: true, force: true });
  rmSync(ustarTree, { recursive: true, force: true });
});

const fileByPath = (facts: LayerFacts, path: string) => facts.files.find((f) => f.path === path);

describe('analyzeLayer on GNU tar output', () => {
  for (const format of ['gnu', 'pax', 'ustar'] as const) {
    for (const compression of ['none', 'gzip', 'zstd'] as const) {
      it(`yields identical facts for a ${format} tar (${compression}) fed whole and one byte at a time`, async () => {
        const tar = tars[format] as Buffer;
        const blob = compression === 'gzip' ? gzipCli(tar) : compression === 'zstd' ? zstdCli(tar) : tar;
        const whole = await analyze(blob);
        const bytewise = await analyze(blob, {}, 1);
        expect(bytewise).toEqual(whole);
        expect(whole.compression).toBe(compression);
        expect(whole.compressedBytes).toBe(blob.length);
        expect(whole.uncompressedBytes).toBe(tar.length);
        expect(fileByPath(whole, LIBLZMA)).toBeDefined();
      });
    }
  }

  it('hashes candidate files exactly as sha256sum and md5sum do', async () => {
    const facts = await analyze(gzipCli(tars.gnu as Buffer));
    for (const rel of [LIBLZMA, '/usr/lib/sparse.so', `/${LONG_FILE}`, '/var/lib/dpkg/status']) {
      const fact = fileByPath(facts, rel);
      expect(fact, rel).toBeDefined();
      expect({ sha256: fact?.sha256, md5: fact?.md5 }).toEqual(coreutilsHashes(join(tree, rel)));
    }
  });

  it('does not record regular files that are neither candidates nor parsed', async () => {
    const facts = await analyze(tars.gnu as Buffer);
    expect(fileByPath(facts, '/usr/share/doc/readme')).toBeUndefined();
  });

  for (const version of ['0.0', '0.1', '1.0']) {
    it(`reconstructs a pax ${version} sparse file so its hashes are those of the real content`, async () => {
      const tar = tarCli(tree, 'pax', ['--sparse', `--sparse-version=${version}`]);
      const facts = await analyze(tar, {}, 4093);
      const fact = fileByPath(facts, '/usr/lib/sparse.so');
      expect(fact?.size).toBe(3 * 1024 * 1024);
      expect({ sha256: fact?.sha256, md5: fact?.md5 }).toEqual(
        coreutilsHashes(join(tree, 'usr/lib/sparse.so')),
      );
    });
  }

  it('stores much less than the sparse file size in the archive (the fixture really is sparse)', () => {
    expect((tars.gnu as Buffer).length).toBeLessThan(1024 * 1024);
  });

  it('records a whiteout as the removed path and an opaque marker as its directory', async () => {
    const facts = await analyze(tars.pax as Buffer);
    expect(facts.whiteouts).toEqual(
      expect.arrayContaining([
        { path: '/etc/removed.conf', opaque: false },
        { path: '/opt/app', opaque: true },
      ]),
    );
    expect(facts.whiteouts).toHaveLength(2);
    expect(facts.files.some((f) => f.path.includes('.wh.'))).toBe(false);
  });

  it('parses the dpkg status, md5sums and os-release files and records them as files too', async () => {
    const facts = await analyze(tars.gnu as Buffer);
    expect(facts.packages.map((p) => `${p.name}=${p.version}`)).toEqual([
      'liblzma5=5.6.1-1',
      'base-files=12.4+deb12u5',
    ]);
    expect(facts.packages[0]?.source).toBe('xz-utils');
    expect(facts.md5sums).toEqual([
      {
        package: 'liblzma5',
        infoFile: '/var/lib/dpkg/info/liblzma5:amd64.md5sums',
        md5: 'd41d8cd98f00b204e9800998ecf8427e',
        path: LIBLZMA,
      },
    ]);
    expect(facts.osRelease.map((o) => o.path).sort()).toEqual(['/etc/debian_version', '/usr/lib/os-release']);
    for (const p of ['/var/lib/dpkg/status', '/usr/lib/os-release', '/etc/debian_version']) {
      expect(fileByPath(facts, p)?.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('gives an md5sums path that is not UTF-8 the text of the member it names, and keeps two such paths apart', async () => {
    const name = Buffer.from('usr/lib/liblzma\xff.so', 'latin1');
    const other = Buffer.from('usr/lib/liblzma\xfe.so', 'latin1');
    const list = Buffer.concat([
      Buffer.from(`${'0'.repeat(32)}  `),
      name,
      Buffer.from(`\n${'1'.repeat(32)}  `),
      other,
      Buffer.from('\n'),
    ]);
    const header = (n: Buffer, size: number) => {
      const h = rawHeader({ name: '', size });
      n.copy(h, 0);
      return withChecksum(h);
    };
    const facts = await analyze(
      Buffer.concat([
        rawMember(rawHeader({ name: 'var/lib/dpkg/info/liblzma5:amd64.md5sums', size: list.length }), list),
        rawMember(header(name, 3), 'elf'),
        END_OF_ARCHIVE,
      ]),
    );
    const listed = facts.md5sums.map((m) => m.path);
    expect(listed).toHaveLength(2);
    expect(listed[0]).not.toBe(listed[1]);
    expect(facts.files.map((f) => f.path)).toContain(listed[0]);
  });

  it('gives a hardlink to a recorded file the same hashes under its own path', async () => {
    const facts = await analyze(tars.gnu as Buffer);
    const link = fileByPath(facts, '/usr/lib/liblzma-hardlink.so');
    const target = fileByPath(facts, LIBLZMA);
    expect(link?.sha256).toBeDefined();
    expect(link?.sha256).toBe(target?.sha256);
  });

  it('records a candidate hardlink to an unrecorded file with null hashes, as one pass cannot go back', async () => {
    const tar = Buffer.concat([
      rawMember(rawHeader({ name: 'opt/blob', size: 4 }), 'data'),
      rawHeader({ name: 'usr/lib/liblzma.so.5', size: 0, typeflag: '1', linkname: 'opt/blob' }),
      END_OF_ARCHIVE,
    ]);
    const facts = await analyze(tar);
    // With the target it names, so that matching knows the row's bytes are unknown, not another file's.
    expect(facts.files).toStrictEqual([
      {
        path: '/usr/lib/liblzma.so.5',
        size: 0,
        mode: 0o644,
        sha256: null,
        md5: null,
        linkTarget: '/opt/blob',
      },
    ]);
  });

  it('records a candidate hardlink to a lower layer’s file with its normalized target, as do links to it', async () => {
    const tar = Buffer.concat([
      rawHeader({ name: './usr/lib/liblzma.so.5', size: 0, typeflag: '1', linkname: './opt//backup/' }),
      rawHeader({
        name: 'usr/lib/liblzma.so.5.6.1',
        size: 0,
        typeflag: '1',
        linkname: 'usr/lib/liblzma.so.5',
      }),
      rawMember(rawHeader({ name: 'usr/lib/liblzma.so', size: 4 }), 'data'),
      END_OF_ARCHIVE,
    ]);
    const facts = await analyze(tar);
    // A link to the first link has the same unknown bytes; a recorded file has no target at all.
    expect(facts.files.map((f) => [f.path, f.linkTarget])).toEqual([
      ['/usr/lib/liblzma.so.5', '/opt/backup'],
      ['/usr/lib/liblzma.so.5.6.1', '/opt/backup'],
      ['/usr/lib/liblzma.so', undefined],
    ]);
    expect(facts.files[2]).not.toHaveProperty('linkTarget');
  });

  it('records symlinks as nothing: /etc/os-release links to /usr/lib/os-release', async () => {
    const facts = await analyze(tars.gnu as Buffer);
    expect(fileByPath(facts, '/etc/os-release')).toBeUndefined();
  });

  it('counts every member and records the rule fingerprint as the selection', async () => {
    const facts = await analyze(tars.gnu as Buffer);
    const listed = execFileSync('tar', ['-t'], { input: tars.gnu }).toString().trim().split('\n');
    expect(facts.entryCount).toBe(listed.length);
    expect(facts.selection).toBe('test-rules');
  });

  it('reports byte-signature hits in candidate files, also when the match straddles chunks', async () => {
    const sig = compileSignature('f30f1efa554889f5??89ce5389fb81e7', {
      iocSetId: 'xz',
      ruleId: 'sig-1',
      elfOnly: true,
    });
    // Both names of the hardlinked library are candidates: GNU tar stores the data under whichever comes first.
    const withSig = testRules((p) => p.includes('liblzma'), [sig]);
    const whole = await analyzeLayer(chunked(tars.gnu as Buffer), { rules: withSig });
    const split = await analyzeLayer(chunked(tars.gnu as Buffer, 7), { rules: withSig });
    expect(whole.signatureHits).toContainEqual({
      path: LIBLZMA,
      iocSetId: 'xz',
      ruleId: 'sig-1',
      offset: 123_457,
      // What the hit answers, kept so a rule edited to another pattern or paths does not take it over.
      hex: 'f30f1efa554889f5??89ce5389fb81e7',
      inElf: true,
      // GNU tar stored the bytes under the other name, which came first: the link carries its hits.
      scannedPath: '/usr/lib/liblzma-hardlink.so',
    });
    expect(split.signatureHits).toEqual(whole.signatureHits);
  });

  it('keeps size but records null hashes for a file above maxHashBytesPerFile', async () => {
    const facts = await analyze(tars.gnu as Buffer, { limits: { maxHashBytesPerFile: 1000 } });
    expect(fileByPath(facts, LIBLZMA)).toMatchObject({ size: 300_000, sha256: null, md5: null });
  });
});

describe('analyzeLayer digest verification', () => {
  it('accepts a blob whose bytes hash to the expected digest', async () => {
    const blob = gzipCli(tars.ustar as Buffer);
    const facts = await analyze(blob, { expectedDigest: sha256Digest(blob) });
    expect(facts.entryCount).toBeGreaterThan(0);
  });

  it('rejects with DigestMismatchError when one byte differs', async () => {
    const blob = gzipCli(tars.ustar as Buffer);
    const other = sha256Digest(Buffer.concat([blob, Buffer.from([0])]));
    await expect(analyze(blob, { expectedDigest: other })).rejects.toBeInstanceOf(DigestMismatchError);
  });
});

describe('analyzeLayer limits and corrupt input', () => {
  it('stops a gzip bomb with LimitExceededError on the compression ratio', async () => {
    const bomb = execFileSync('sh', ['-c', 'head -c 100000000 /dev/zero | gzip -9 -c'], {
      maxBuffer: 1 << 26,
    });
    const err = await analyze(bomb).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).limit).toBe('maxCompressionRatio');
  });

  it('stops at maxUncompressedBytes', async () => {
    const err = await analyze(gzipCli(tars.gnu as Buffer), {
      limits: { maxUncompressedBytes: 10_000 },
    }).catch((e: unknown) => e);
    expect((err as LimitExceededError).limit).toBe('maxUncompressedBytes');
  });

  it('stops at maxEntries', async () => {
    const err = await analyze(tars.gnu as Buffer, { limits: { maxEntries: 3 } }).catch((e: unknown) => e);
    expect((err as LimitExceededError).limit).toBe('maxEntries');
  });

  it('refuses a dpkg status larger than maxCaptureBytes', async () => {
    const err = await analyze(tars.gnu as Buffer, { limits: { maxCaptureBytes: 100 } }).catch(
      (e: unknown) => e,
    );
    expect((err as LimitExceededError).limit).toBe('maxCaptureBytes');
  });

  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    it(`rejects a ${compression} layer cut short with CorruptInputError`, async () => {
      const tar = tars.ustar as Buffer;
      const blob = compression === 'gzip' ? gzipCli(tar) : compression === 'zstd' ? zstdCli(tar) : tar;
      const cut = blob.subarray(0, Math.floor(blob.length * 0.6));
      await expect(analyze(cut)).rejects.toBeInstanceOf(CorruptInputError);
    });
  }

  // The cut lands in the data of /usr/lib/os-release. A cut between members is no error: Go's
  // archive/tar reads it as the end of the archive (src/analyzer/tar-go-reader.test.ts).
  it('rejects a tar cut inside a member', async () => {
    const tar = tars.ustar as Buffer;
    await expect(analyze(tar.subarray(0, tar.length - 10240))).rejects.toBeInstanceOf(CorruptInputError);
  });

  it('rejects a header whose checksum does not match', async () => {
    const tar = Buffer.from(tars.ustar as Buffer);
    tar[10] = (tar[10] as number) ^ 0x01;
    const err = await analyze(tar).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptInputError);
    expect(String((err as Error).message)).toMatch(/checksum/);
  });

  it('rejects bytes that are not a tar at all', async () => {
    await expect(analyze(Buffer.from('hello, this is not an archive'.repeat(40)))).rejects.toBeInstanceOf(
      CorruptInputError,
    );
  });

  it('rejects an xz-compressed blob as unsupported', async () => {
    const xz = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]);
    await expect(analyze(xz)).rejects.toBeInstanceOf(UnsupportedError);
  });

  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    it(`tolerates anything after the tar end-of-archive marker in a ${compression} layer`, async () => {
      const tar = Buffer.concat([
        tars.ustar as Buffer,
        Buffer.from('trailing garbage, not a header'.repeat(50)),
      ]);
      const blob = compression === 'gzip' ? gzipCli(tar) : compression === 'zstd' ? zstdCli(tar) : tar;
      const facts = await analyze(blob, {}, 1000);
      expect(fileByPath(facts, LIBLZMA)).toBeDefined();
      expect(facts.uncompressedBytes).toBe(tar.length);
    });
  }

  for (const [compression, tail] of [
    ['gzip', Buffer.alloc(4096)],
    ['zstd', Buffer.from('trailing garbage after the last frame')],
  ] as const) {
    it(`tolerates ${compression === 'gzip' ? 'zero padding' : 'garbage'} after a ${compression} stream and verifies the digest over it`, async () => {
      const tar = tars.ustar as Buffer;
      const blob = Buffer.concat([compression === 'gzip' ? gzipCli(tar) : zstdCli(tar), tail]);
      const facts = await analyze(blob, { expectedDigest: sha256Digest(blob) }, 1000);
      expect(facts.compressedBytes).toBe(blob.length);
      expect(fileByPath(facts, LIBLZMA)).toBeDefined();
    });
  }

  // Go's archive/tar reads the block after a lone zero block through the decompressor and fails on it.
  for (const [compression, tail] of [
    ['gzip', Buffer.from('trailing garbage after the gzip member, not zeros')],
    ['zstd', Buffer.from('trailing garbage after the last frame')],
  ] as const) {
    it(`refuses a ${compression} stream with garbage after a tar that ends in a lone zero block`, async () => {
      const tar = Buffer.concat([
        rawMember(rawHeader({ name: LIBLZMA.slice(1), size: 4 }), 'data'),
        Buffer.alloc(512),
      ]);
      const clean = compression === 'gzip' ? gzipCli(tar) : zstdCli(tar);
      const err = await analyze(Buffer.concat([clean, tail]), {}, 1000).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CorruptInputError);
      expect((err as Error).message).toMatch(new RegExp(`^${compression} stream is corrupt`));
      // The same tar without the garbage ends cleanly there.
      expect(fileByPath(await analyze(clean, {}, 1000), LIBLZMA)).toBeDefined();
    });
  }

  it('refuses pax records larger than maxHeaderBytes', async () => {
    const tar = await packTar([{ header: { name: `a/${'x'.repeat(3000)}`, type: 'file' }, body: 'x' }]);
    const err = await analyze(tar, { limits: { maxHeaderBytes: 1024 } }).catch((e: unknown) => e);
    expect((err as LimitExceededError).limit).toBe('maxHeaderBytes');
  });

  it('stops once the facts hold more than maxFactBytes: paths and link targets recorded, dpkg text parsed', async () => {
    const status =
      'Package: xz-utils\nStatus: install ok installed\nVersion: 5.6.1-1\nArchitecture: amd64\n\n';
    const tar = await packTar([
      { header: { name: 'opt/app/', type: 'directory' } },
      { header: { name: 'usr/lib/liblzma.so.5', type: 'symlink', linkname: 'liblzma.so.5.6.1' } },
      { header: { name: 'usr/lib/liblzma.so.5.6.1', type: 'file' }, body: 'elf' },
      { header: { name: 'usr/lib/liblzma.so.5.6.2', type: 'link', linkname: 'usr/lib/liblzma.so.5.6.1' } },
      { header: { name: 'etc/.wh.motd', type: 'file' }, body: '' },
      { header: { name: 'var/lib/dpkg/status', type: 'file' }, body: status },
    ]);
    // Each path recorded, a symlink's target, the status text parsed (the whiteout at the path it removes),
    // the hashes of the two files read (sha256 and md5: 96 characters each; the hardlink shares them), and
    // eight records: the directory, the symlink, the two files and the hardlink, the whiteout, and two for
    // the status, counted before parsing as one per paragraph (its text ends with a blank line).
    const chars = [
      '/opt/app',
      '/usr/lib/liblzma.so.5',
      'liblzma.so.5.6.1',
      '/usr/lib/liblzma.so.5.6.1',
      '/usr/lib/liblzma.so.5.6.2',
      '/etc/motd',
      '/var/lib/dpkg/status',
      status,
    ].join('').length;
    const held = chars + 2 * 96 + 8 * FACT_RECORD_BYTES;
    const facts = await analyze(tar, { limits: { maxFactBytes: held } });
    expect(facts.packages.map((p) => p.version)).toEqual(['5.6.1-1']);
    const err = await analyze(tar, { limits: { maxFactBytes: held - 1 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).limit).toBe('maxFactBytes');
    expect((err as Error).message).toBe(
      `layer's facts exceed maxFactBytes (${held - 1} bytes, estimated) at /var/lib/dpkg/status; ` +
        'a layer that records this much is crafted or extraordinary: raise limits.maxFactBytes to analyze it',
    );
  });

  it('counts every signature hit a hardlink copies toward maxFactBytes', async () => {
    // Three patterns in one file, and a thousand hardlinks to it: each link holds a copy of every hit.
    const patterns = ['11223344', '55667788', '99aabbcc'];
    const sigs = patterns.map((hex, i) => compileSignature(hex, { iocSetId: 's', ruleId: `r${i}` }));
    const withSigs = testRules((p) => p.includes('liblzma'), sigs);
    const body = Buffer.from(patterns.join(''), 'hex');
    const links = Array.from({ length: 1000 }, (_, i) => ({
      header: { name: `l${String(i).padStart(3, '0')}`, type: 'link' as const, linkname: 'lib/liblzma.so.5' },
    }));
    const tar = await packTar([{ header: { name: 'lib/liblzma.so.5', type: 'file' }, body }, ...links]);
    const facts = await analyzeLayer(chunked(tar), { rules: withSigs });
    expect(facts.signatureHits).toHaveLength(3 * 1001);
    // The file (its path, hashes, itself and its three hits), then each link (its path, itself, three hits).
    const held =
      '/lib/liblzma.so.5'.length +
      96 +
      4 * FACT_RECORD_BYTES +
      1000 * ('/l000'.length + 4 * FACT_RECORD_BYTES);
    await analyzeLayer(chunked(tar), { rules: withSigs, limits: { maxFactBytes: held } });
    const err = await analyzeLayer(chunked(tar), {
      rules: withSigs,
      limits: { maxFactBytes: held - 1 },
    }).catch((e: unknown) => e);
    expect((err as LimitExceededError).limit).toBe('maxFactBytes');
    expect((err as Error).message).toContain(' at /l999; ');
  });

  it('counts an md5sums list toward maxFactBytes as the text its paths decode to, a record a line', async () => {
    const md5 = 'af0e525fd86aa1ea0899f6152cd6a756';
    // Escaped bytes (3 characters each), a U+FFFD of its own (doubled), an astral character (2), a
    // line that is not an md5sums line, and a last line without its newline: four records.
    const list = Buffer.concat([
      Buffer.from(`${md5}  usr/lib/a\xff\xfe\n`, 'latin1'),
      Buffer.from(`${md5}  usr/lib/\uFFFD🦀\n`),
      Buffer.from('\xc0\xaf garbage\n', 'latin1'),
      Buffer.from(`${md5}  usr/lib/b`),
    ]);
    const info = '/var/lib/dpkg/info/x.md5sums';
    const tar = Buffer.concat([
      rawMember(rawHeader({ name: info.slice(1), size: list.length }), list),
      END_OF_ARCHIVE,
    ]);
    // The list's own file (its path, hashes and record), then its text and lines.
    const held = info.length + 96 + FACT_RECORD_BYTES + decodeTarName(list).length + 4 * FACT_RECORD_BYTES;
    const facts = await analyze(tar, { limits: { maxFactBytes: held } });
    expect(facts.md5sums.map((m) => m.path)).toEqual([
      '/usr/lib/a\uFFFDff\uFFFDfe',
      '/usr/lib/\uFFFD\uFFFD🦀',
      '/usr/lib/b',
    ]);
    const err = await analyze(tar, { limits: { maxFactBytes: held - 1 } }).catch((e: unknown) => e);
    expect((err as LimitExceededError).limit).toBe('maxFactBytes');
    expect((err as Error).message).toContain(` at ${info}; `);
  });

  it('reads a 63 MiB md5sums list of invalid bytes in a 128 MiB heap, never building its text', () => {
    // 0xff bytes (64 KB gzipped) decode to 3 UTF-16 units each: the list was decoded whole, a 126 MiB
    // string from Node's decoder and a 378 MiB one from decodeTarName, 1.1 GiB RSS, and this child died
    // out of heap. Not one line of it is an md5sums line, so nothing of it is kept.
    const script = [
      `import { analyzeLayer } from ${importable('./layer-stream.ts', import.meta.url)};`,
      `import { END_OF_ARCHIVE, rawHeader, testRules } from ${importable('./test-fixtures/layers.ts', import.meta.url)};`,
      'async function* layer() {',
      "  yield rawHeader({ name: 'var/lib/dpkg/info/x.md5sums', size: 63 * 2 ** 20 });",
      '  const mebibyte = Buffer.alloc(2 ** 20, 0xff);',
      '  for (let i = 0; i < 63; i++) yield mebibyte;',
      '  yield END_OF_ARCHIVE;',
      '}',
      'const facts = await analyzeLayer(layer(), { rules: testRules(() => false) });',
      "process.stdout.write(facts.files.length + ' ' + facts.md5sums.length);",
    ];
    const run = runInLimitedHeap(128, script);
    expect(run.stderr).not.toMatch(/heap/i);
    expect(run.stdout).toBe('1 0');
  });

  it('parses an md5sums file of more lines than a spread can pass as arguments, not calling it corrupt', async () => {
    // A package with 200 000 files: real ones come near (fonts, documentation, kernel headers).
    const lines = Array.from(
      { length: 200_000 },
      (_, i) => `${i.toString(16).padStart(32, '0')}  usr/share/f${i}\n`,
    );
    const tar = await packTar([
      { header: { name: 'var/lib/dpkg/info/big.md5sums', type: 'file' }, body: lines.join('') },
    ]);
    const facts = await analyze(tar);
    expect(facts.md5sums).toHaveLength(200_000);
    expect(facts.md5sums.at(-1)).toMatchObject({ package: 'big', path: '/usr/share/f199999' });
  });

  it('bounds the directory paths a layer of long names makes it hold', async () => {
    // A thousand directories of 1000-character names: a million characters, past a 120 000 bound (1200 a
    // directory, with its record) at the 101st. The same shape, a million entries of 4096 characters, used
    // to take gigabytes.
    const dirs = Array.from({ length: 1000 }, (_, i) => ({
      header: { name: `${String(i).padStart(4, '0')}${'x'.repeat(995)}/`, type: 'directory' as const },
    }));
    const tar = await packTar(dirs);
    const err = await analyze(tar, { limits: { maxFactBytes: 120_000 } }).catch((e: unknown) => e);
    expect((err as LimitExceededError).limit).toBe('maxFactBytes');
    expect((err as Error).message).toContain(`at /0100${'x'.repeat(195)};`);
    expect((await analyze(tar)).dirs).toHaveLength(1000);
  });

  it('refuses a path longer than maxPathLength', async () => {
    const tar = await packTar([{ header: { name: `a/${'x'.repeat(3000)}`, type: 'file' }, body: 'x' }]);
    const err = await analyze(tar, { limits: { maxPathLength: 1000 } }).catch((e: unknown) => e);
    expect((err as LimitExceededError).limit).toBe('maxPathLength');
  });
});

describe('analyzeLayer entry kinds from tar-stream', () => {
  it('records device files, fifos, directories and symlinks as no file facts while counting them', async () => {
    const tar = await packTar([
      { header: { name: 'dev/', type: 'directory' } },
      { header: { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 } },
      { header: { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 } },
      { header: { name: 'run/fifo', type: 'fifo' } },
      { header: { name: 'usr/lib/liblzma.so.5', type: 'symlink', linkname: 'liblzma.so.5.6.1' } },
      { header: { name: './usr/lib/liblzma.so.5.6.1', type: 'file' }, body: 'elf' },
    ]);
    const facts = await analyze(tar, {}, 1);
    expect(facts.entryCount).toBe(6);
    expect(facts.files.map((f) => f.path)).toEqual(['/usr/lib/liblzma.so.5.6.1']);
  });

  it('keeps every symlink the layer leaves, where it landed, and drops one a later member replaced', async () => {
    const tar = await packTar([
      { header: { name: 'lib', type: 'symlink', linkname: 'usr/lib' } },
      { header: { name: 'lib/x86_64-linux-gnu/libz.so.1', type: 'symlink', linkname: 'libz.so.1.3' } },
      { header: { name: 'etc/alternatives/awk', type: 'symlink', linkname: '/usr/bin/mawk' } },
      { header: { name: 'opt/gone', type: 'symlink', linkname: 'elsewhere' } },
      { header: { name: 'opt/gone', type: 'file' }, body: 'a file now' },
    ]);
    const facts = await analyze(tar);
    expect(facts.symlinks).toEqual([
      { path: '/lib', target: 'usr/lib' },
      { path: '/usr/lib/x86_64-linux-gnu/libz.so.1', target: 'libz.so.1.3' },
      { path: '/etc/alternatives/awk', target: '/usr/bin/mawk' },
    ]);
  });

  it('keeps every directory entry where it landed, once each, the root left out', async () => {
    const tar = await packTar([
      { header: { name: './', type: 'directory' } },
      { header: { name: 'lib', type: 'symlink', linkname: 'usr/lib' } },
      { header: { name: 'lib/x86_64-linux-gnu/', type: 'directory' } },
      { header: { name: './opt/', type: 'directory' } },
      { header: { name: 'opt/tools/', type: 'directory' } },
      { header: { name: 'opt/', type: 'directory' } },
      { header: { name: 'opt/tools/x', type: 'file' }, body: 'not a directory' },
    ]);
    const facts = await analyze(tar);
    expect(facts.dirs).toEqual(['/usr/lib/x86_64-linux-gnu', '/opt', '/opt/tools']);
    expect(facts.lateDirs).toEqual([]);
  });

  it('keeps apart a directory entry listed after a member below it', async () => {
    const tar = await packTar([
      { header: { name: 'opt/alias/x', type: 'file' }, body: 'went through whatever opt/alias was' },
      { header: { name: 'opt/alias/', type: 'directory' } },
      { header: { name: 'opt/', type: 'directory' } },
      { header: { name: 'opt/other/', type: 'directory' } },
      { header: { name: 'opt/other/y', type: 'file' }, body: 'in order' },
      { header: { name: 'opt/other/', type: 'directory' } },
    ]);
    const facts = await analyze(tar);
    expect(facts.dirs).toEqual(['/opt/other']);
    expect(facts.lateDirs).toEqual(['/opt/alias', '/opt']);
  });

  it('takes a directory listed after a hardlink whose target is below it for late', async () => {
    const tar = await packTar([
      { header: { name: 'srv/link', type: 'link', linkname: 'opt/alias/x' } },
      { header: { name: 'opt/alias/', type: 'directory' } },
    ]);
    expect((await analyze(tar)).lateDirs).toEqual(['/opt/alias']);
  });

  it('cannot be made to record a path above the root with ..', async () => {
    const tar = await packTar([
      { header: { name: '../../../usr/lib/liblzma.so.5', type: 'file' }, body: 'x' },
    ]);
    const facts = await analyze(tar);
    expect(facts.files.map((f) => f.path)).toEqual(['/usr/lib/liblzma.so.5']);
  });

  it('applies a pax size override, so the data after it still lines up', async () => {
    const tar = Buffer.concat([
      paxMember({ size: '5' }),
      rawMember(rawHeader({ name: 'usr/lib/liblzma.so.1', size: 0 }), 'first'),
      rawMember(rawHeader({ name: 'usr/lib/liblzma.so.2', size: 6 }), 'second'),
      END_OF_ARCHIVE,
    ]);
    const facts = await analyze(tar);
    expect(facts.files.map((f) => [f.path, f.size])).toEqual([
      ['/usr/lib/liblzma.so.1', 5],
      ['/usr/lib/liblzma.so.2', 6],
    ]);
  });
});

describe('analyzeLayer and its source', () => {
  it('rethrows an error of the source unchanged and closes nothing twice', async () => {
    const boom = new Error('connection reset');
    async function* failing() {
      yield gzipCli(tars.ustar as Buffer).subarray(0, 1000);
      throw boom;
    }
    await expect(analyzeLayer(failing(), { rules })).rejects.toBe(boom);
  });

  it('stops reading and closes the source when the layer fails early', async () => {
    let closed = false;
    let pulled = 0;
    const source: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          pulled++;
          return {
            value: Buffer.from('not a tar header at all, definitely corrupt'.repeat(20)),
            done: false,
          };
        },
        return: async () => {
          closed = true;
          return { value: undefined, done: true };
        },
      }),
    };
    await expect(analyzeLayer(source, { rules })).rejects.toBeInstanceOf(CorruptInputError);
    expect(closed).toBe(true);
    expect(pulled).toBeLessThan(5);
  });

  it('rejects with the abort reason once the signal fires', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    async function* slow() {
      yield (tars.ustar as Buffer).subarray(0, 512);
      controller.abort(reason);
      yield (tars.ustar as Buffer).subarray(512);
    }
    await expect(analyzeLayer(slow(), { rules, signal: controller.signal })).rejects.toBe(reason);
  });
});
