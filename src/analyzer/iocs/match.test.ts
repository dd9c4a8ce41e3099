import { describe, expect, it } from 'vitest';
import type { LayerFacts, PackageFact } from '../facts.js';
import { normalizeHex } from '../signatures.js';
import { layerFacts as facts } from '../test-fixtures/facts.js';
import { builtinIocSets } from './builtin.js';
import { parseIocSet } from './load.js';
import { matchLayer, matchLayerLocated, packageMatchesRule } from './match.js';
import type { DpkgVersionRule, IocSet } from './schema.js';

const set = (rules: unknown[]) =>
  parseIocSet({ id: 's', version: '7', title: 't', references: [], rules }, 'test');
const pkg = (name: string, version: string, p: Partial<PackageFact> = {}): PackageFact => ({
  name,
  version,
  architecture: 'amd64',
  source: null,
  status: 'install ok installed',
  statusFile: '/var/lib/dpkg/status',
  ...p,
});
const SHA = 'a'.repeat(64);
const MD5 = 'b'.repeat(32);
const LIB = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
const file = (
  path: string,
  p: Partial<{ size: number; sha256: string | null; md5: string | null }> = {},
) => ({
  path,
  size: 10,
  mode: 0o644,
  sha256: SHA,
  md5: MD5,
  ...p,
});

/** The hex of a byte-signature rule of the built-in XZ set. */
function xzSignatureHex(ruleId: string): string {
  const rule = builtinIocSets()[0]!.rules.find((r) => r.id === ruleId);
  if (rule?.kind !== 'byte-signature') throw new Error(`no signature rule ${ruleId}`);
  return rule.hex;
}

describe('matchLayer', () => {
  it('turns a file hash matching a rule under its glob into file-sha256 and file-md5 evidence', () => {
    const s = set([
      { id: 'sha', kind: 'file-sha256', sha256: SHA, paths: ['/usr/lib/**/liblzma.so.5*'] },
      { id: 'md5', kind: 'file-md5', md5: MD5 },
    ]);
    expect(matchLayer(facts({ files: [file(LIB)] }), 'sha256:L', [s])).toEqual([
      {
        kind: 'file-sha256',
        iocSetId: 's',
        iocSetVersion: '7',
        ruleId: 'sha',
        path: LIB,
        value: SHA,
        layerDigest: 'sha256:L',
      },
      {
        kind: 'file-md5',
        iocSetId: 's',
        iocSetVersion: '7',
        ruleId: 'md5',
        path: LIB,
        value: MD5,
        layerDigest: 'sha256:L',
      },
    ]);
  });

  it('counts a known-bad hash wherever a hashed file sits: paths and size only choose what is hashed', () => {
    const s = set([
      { id: 'sha', kind: 'file-sha256', sha256: SHA, paths: ['/usr/lib/**/liblzma.so.5*'], size: 10 },
    ]);
    // A renamed copy (hashed for another rule, or with --hash-all-files) behind a liblzma.so.5 symlink.
    const renamed = '/usr/lib/x86_64-linux-gnu/libz-helper.so';
    expect(matchLayer(facts({ files: [file(renamed)] }), 'L', [s]).map((e) => [e.ruleId, e.path])).toEqual([
      ['sha', renamed],
    ]);
    expect(matchLayer(facts({ files: [file(LIB, { sha256: null, md5: null })] }), 'L', [s])).toEqual([]);
  });

  it('turns an md5sums line with a known-bad md5 into dpkg-md5sums evidence at the listed path', () => {
    const s = set([{ id: 'md5', kind: 'file-md5', md5: MD5, paths: ['/**/liblzma.so.5*'], size: 247800 }]);
    const md5sums = [
      { package: 'liblzma5', infoFile: '/var/lib/dpkg/info/liblzma5:amd64.md5sums', md5: MD5, path: LIB },
    ];
    expect(matchLayer(facts({ md5sums }), 'L', [s])).toEqual([
      {
        kind: 'dpkg-md5sums',
        iocSetId: 's',
        iocSetVersion: '7',
        ruleId: 'md5',
        path: LIB,
        value: MD5,
        layerDigest: 'L',
      },
    ]);
    expect(matchLayer(facts({ md5sums: [{ ...md5sums[0]!, path: '/usr/share/doc/x' }] }), 'L', [s])).toEqual(
      [],
    );
  });

  it('takes a glob naming a merged-/usr folder for both spellings of an md5sums line', () => {
    // A rule copied from `dpkg -L` names /lib; an md5sums list written after DEP17's move names /usr/lib.
    const s = set([
      { id: 'md5', kind: 'file-md5', md5: MD5, paths: ['/lib/x86_64-linux-gnu/liblzma.so.5*'] },
    ]);
    const md5sums = [
      { package: 'liblzma5', infoFile: '/var/lib/dpkg/info/liblzma5:amd64.md5sums', md5: MD5, path: LIB },
    ];
    expect(matchLayer(facts({ md5sums }), 'L', [s]).map((e) => [e.kind, e.path])).toEqual([
      ['dpkg-md5sums', LIB],
    ]);
  });

  it('matches dpkg versions from a list by Debian equality, reporting the status file', () => {
    const s = set([{ id: 'v', kind: 'dpkg-version', package: 'liblzma5', versions: ['5.6.1-1'] }]);
    const ev = matchLayer(
      facts({ packages: [pkg('liblzma5', '0:5.6.1-1'), pkg('liblzma5', '5.6.1-2')] }),
      'L',
      [s],
    );
    expect(ev).toEqual([
      {
        kind: 'dpkg-version',
        iocSetId: 's',
        iocSetVersion: '7',
        ruleId: 'v',
        path: '/var/lib/dpkg/status',
        value: 'liblzma5=0:5.6.1-1',
        layerDigest: 'L',
      },
    ]);
  });

  it('reports signature hits only for byte-signature rules of the same set', () => {
    const s = set([{ id: 'sig', kind: 'byte-signature', hex: '41', paths: ['/**'] }]);
    const found = { hex: '41', inElf: false, scannedPath: LIB };
    const signatureHits = [
      { path: LIB, iocSetId: 's', ruleId: 'sig', offset: 18416, ...found },
      { path: LIB, iocSetId: 'other', ruleId: 'sig', offset: 1, ...found },
      { path: LIB, iocSetId: 's', ruleId: 'gone', offset: 1, ...found },
    ];
    expect(matchLayer(facts({ signatureHits }), 'L', [s]).map((e) => [e.kind, e.ruleId, e.value])).toEqual([
      ['byte-signature', 'sig', 'offset=18416'],
    ]);
  });

  it("counts a stored hit for a rule only when the rule's own pattern found it, in a file its paths cover", () => {
    // What `rematch` meets after a set's new version changed the rule: the stored hit is the old pattern's.
    const rule = (r: Record<string, unknown>) =>
      set([{ id: 'sig', kind: 'byte-signature', hex: 'de ad ?? ef', paths: ['/usr/lib/*.so'], ...r }]);
    const lib = '/usr/lib/libsig.so';
    const stored = (h: Record<string, unknown>) => ({
      signatureHits: [
        {
          path: lib,
          iocSetId: 's',
          ruleId: 'sig',
          offset: 25,
          hex: 'dead??ef',
          inElf: false,
          scannedPath: lib,
          ...h,
        },
      ],
    });
    const found = (s: IocSet, h: Record<string, unknown> = {}) =>
      matchLayer(facts(stored(h)), 'L', [s]).map((e) => e.value);
    expect(found(rule({}))).toEqual(['offset=25']);
    // The same pattern written otherwise (case, spacing) is the same pattern.
    expect(found(rule({ hex: 'DE AD ?? EF' }))).toEqual(['offset=25']);
    expect(found(rule({ hex: 'aa bb cc dd' }))).toEqual([]);
    expect(found(rule({ paths: ['/nowhere/*.so'] }))).toEqual([]);
    // On a merged-/usr image `/lib/…` names the file at `/usr/lib/…`: either spelling covers it.
    expect(found(rule({ paths: ['/lib/*.so'] }))).toEqual(['offset=25']);
    // elfOnly now: a hit counts only if its file is an ELF, whatever rule found it.
    expect(found(rule({ elfOnly: true }))).toEqual([]);
    expect(found(rule({ elfOnly: true }), { inElf: true })).toEqual(['offset=25']);
    expect(found(rule({}), { inElf: true })).toEqual(['offset=25']);
    // A hardlink carries its target's hits: the paths that count are the scanned file's, not the link's.
    const viaLink = { path: '/usr/share/x/libsig-copy', scannedPath: lib };
    expect(found(rule({}), viaLink)).toEqual(['offset=25']);
    expect(found(rule({}), { path: lib, scannedPath: '/opt/libsig.so' })).toEqual([]);
    // A hit recorded before hits kept what they answer counts for any rule of its id, as it did.
    const legacy = { hex: null, inElf: null, scannedPath: null };
    expect(found(rule({ hex: 'aa bb cc dd' }), legacy)).toEqual(['offset=25']);
    expect(found(rule({ paths: ['/nowhere/*.so'], elfOnly: true }), legacy)).toEqual(['offset=25']);
  });

  it('finds all evidence kinds of the XZ set in facts shaped like a backdoored Debian sid layer', () => {
    const sha = '605861f833fc181c7cdcabd5577ddb8989bea332648a8f498b4eef89b8f85ad4';
    const md5 = '53d82bb511b71a5d4794cf2d8a2072c1';
    const f = facts({
      files: [{ path: LIB, size: 247800, mode: 0o644, sha256: sha, md5 }],
      packages: [
        pkg('liblzma5', '5.6.1-1', { source: 'xz-utils' }),
        pkg('xz-utils', '5.6.1-1'),
        pkg('bash', '5.2.21-2'),
      ],
      md5sums: [
        { package: 'liblzma5', infoFile: '/var/lib/dpkg/info/liblzma5:amd64.md5sums', md5, path: LIB },
      ],
      signatureHits: [
        {
          path: LIB,
          iocSetId: 'xz-cve-2024-3094',
          ruleId: 'sig-detect-sh-prologue',
          offset: 0x47f0,
          hex: normalizeHex(xzSignatureHex('sig-detect-sh-prologue')),
          inElf: true,
          scannedPath: LIB,
        },
      ],
    });
    const ev = matchLayer(f, 'sha256:layer', builtinIocSets());
    expect(ev.map((e) => `${e.kind} ${e.ruleId}`).sort()).toEqual([
      'byte-signature sig-detect-sh-prologue',
      'dpkg-md5sums liblzma-so-5.6.1-debian-amd64-md5',
      'dpkg-version dpkg-liblzma5-affected',
      'dpkg-version dpkg-liblzma5-payload-expected',
      'dpkg-version dpkg-xz-utils-affected',
      'file-md5 liblzma-so-5.6.1-debian-amd64-md5',
      'file-sha256 liblzma-so-5.6.1-debian-amd64-sha256',
    ]);
  });

  it('finds nothing in the fixed Debian version', () => {
    const f = facts({
      packages: [pkg('liblzma5', '5.6.1+really5.4.5-1'), pkg('xz-utils', '5.6.1+really5.4.5-1')],
    });
    expect(matchLayer(f, 'L', builtinIocSets())).toEqual([]);
  });
});

describe('matchLayerLocated: an entry replaced later in the same layer', () => {
  // A tar may hold a path twice; unpacked, the later entry wins. Facts keep stream order per array.
  const CLEAN_SHA = 'c'.repeat(64);
  const CLEAN_MD5 = 'd'.repeat(32);
  const clean = (path: string, size = 10) => file(path, { size, sha256: CLEAN_SHA, md5: CLEAN_MD5 });
  const symlink = (path: string) => file(path, { size: 0, sha256: null, md5: null });
  const STATUS = '/var/lib/dpkg/status';
  const INFO = '/var/lib/dpkg/info/liblzma5:amd64.md5sums';
  const s = set([
    { id: 'sha', kind: 'file-sha256', sha256: SHA, paths: ['/**/liblzma.so.5*'] },
    { id: 'ver', kind: 'dpkg-version', package: 'liblzma5', versions: ['5.6.1-1'] },
    { id: 'md5', kind: 'file-md5', md5: MD5, paths: ['/**/liblzma.so.5*'] },
    { id: 'sig', kind: 'byte-signature', hex: '41', paths: ['/**/liblzma.so.5*'] },
    { id: 'sig2', kind: 'byte-signature', hex: '42', paths: ['/**/liblzma.so.5*'] },
  ]);
  const located = (p: Partial<LayerFacts>) =>
    matchLayerLocated(facts(p), 'L', [s]).map((l) => [l.evidence.kind, l.evidence.value, l.replacedInLayer]);
  const hit = (ruleId: string, offset: number, path = LIB) => ({
    path,
    iocSetId: 's',
    ruleId,
    offset,
    hex: ruleId === 'sig' ? '41' : '42',
    inElf: false,
    scannedPath: path,
  });

  it('marks a file a later clean copy at the same path replaces, and not the copy itself', () => {
    expect(located({ files: [file(LIB), clean('/etc/hostname'), clean(LIB)] })).toEqual([
      ['file-sha256', SHA, true],
      ['file-md5', MD5, true],
    ]);
    // A layer's whiteouts hide lower layers only, never its own entries, in whatever order.
    expect(located({ files: [file(LIB)], whiteouts: [{ path: LIB, opaque: false }] })).toEqual([
      ['file-sha256', SHA, false],
      ['file-md5', MD5, false],
    ]);
  });

  it('marks a file a later symlink, hardlink or directory at its path replaces, or a file at an ancestor', () => {
    expect(located({ files: [file(LIB), symlink(LIB)] })[0]).toEqual(['file-sha256', SHA, true]);
    expect(located({ files: [file(LIB), clean(`${LIB}/README`)] })[0]).toEqual(['file-sha256', SHA, true]);
    expect(located({ files: [file(LIB), symlink('/usr/lib/x86_64-linux-gnu')] })[0]).toEqual([
      'file-sha256',
      SHA,
      true,
    ]);
    // Before the file, the same entries are replaced by it instead.
    expect(located({ files: [symlink(LIB), clean(`${LIB}.d/x`), file(LIB)] })[0]).toEqual([
      'file-sha256',
      SHA,
      false,
    ]);
    expect(located({ files: [clean(`${LIB}/README`), file(LIB)] })[0]).toEqual(['file-sha256', SHA, false]);
  });

  it('does not mark a copy replaced by a later hardlink at its path whose bytes were not recorded', () => {
    // The link may name the same bytes (a lower layer's copy): they survive, as every gap leans.
    const link = (path: string) => ({ ...symlink(path), linkTarget: '/opt/blob' });
    expect(located({ files: [file(LIB), link(LIB)] })).toEqual([
      ['file-sha256', SHA, false],
      ['file-md5', MD5, false],
    ]);
    expect(located({ files: [clean(STATUS), link(STATUS)], packages: [pkg('liblzma5', '5.6.1-1')] })).toEqual(
      [['dpkg-version', 'liblzma5=5.6.1-1', false]],
    );
    // At an ancestor it is still no directory, and below the path it still makes one.
    expect(located({ files: [file(LIB), link('/usr/lib')] })[0]).toEqual(['file-sha256', SHA, true]);
    expect(located({ files: [file(LIB), link(`${LIB}/x`)] })[0]).toEqual(['file-sha256', SHA, true]);
  });

  it('marks the earlier of two matching copies replaced, by index, and read facts by what a copy could hold', () => {
    expect(located({ files: [file(LIB), file(LIB)] })).toEqual([
      ['file-sha256', SHA, true],
      ['file-md5', MD5, true],
      ['file-sha256', SHA, false],
      ['file-md5', MD5, false],
    ]);
    // Hits and paragraphs are not tied to a copy: the later copy could hold them, so they survive.
    const signatureHits = [hit('sig', 5), hit('sig', 7)];
    expect(located({ files: [file(LIB), file(LIB)], signatureHits }).slice(4)).toEqual([
      ['byte-signature', 'offset=5', false],
      ['byte-signature', 'offset=7', false],
    ]);
  });

  it('marks dpkg evidence replaced only when no later copy of the database has bytes to list it', () => {
    // A later symlink or empty file there lists nothing: every paragraph came from the replaced file.
    for (const later of [symlink(STATUS), clean(STATUS, 0)]) {
      expect(located({ files: [clean(STATUS), later], packages: [pkg('liblzma5', '5.6.1-1')] })).toEqual([
        ['dpkg-version', 'liblzma5=5.6.1-1', true],
      ]);
    }
    // Two non-empty copies: the facts cannot say which listed it, and the order of paragraphs is the
    // layer author's to forge (a decoy database before the real one), so it survives.
    const packages = [
      pkg('base-files', '12.4'),
      pkg('liblzma5', '5.6.1-1'),
      pkg('base-files', '12.4'),
      pkg('liblzma5', '5.6.1+really5.4.5-1'),
    ];
    expect(located({ files: [clean(STATUS), clean(STATUS)], packages })).toEqual([
      ['dpkg-version', 'liblzma5=5.6.1-1', false],
    ]);
    expect(
      located({
        files: [clean(STATUS), clean(STATUS)],
        packages: [pkg('base-files', '12.4'), pkg('liblzma5', '5.6.1-1')],
      }),
    ).toEqual([['dpkg-version', 'liblzma5=5.6.1-1', false]]);
    // A status file never recorded as a file: nothing to say it was replaced.
    expect(located({ files: [], packages: [pkg('liblzma5', '5.6.1-1')] })).toEqual([
      ['dpkg-version', 'liblzma5=5.6.1-1', false],
    ]);
  });

  it('marks dpkg-md5sums evidence replaced only when no later md5sums copy has bytes', () => {
    const line = (md5: string) => ({ package: 'liblzma5', infoFile: INFO, md5, path: LIB });
    expect(located({ files: [clean(INFO), symlink(INFO)], md5sums: [line(MD5)] })).toEqual([
      ['dpkg-md5sums', MD5, true],
    ]);
    expect(located({ files: [clean(INFO), clean(INFO)], md5sums: [line(MD5), line(CLEAN_MD5)] })).toEqual([
      ['dpkg-md5sums', MD5, false],
    ]);
  });

  it('marks a signature hit replaced only when no later copy can have held it', () => {
    // Either copy could hold it: it survives (the lean of every in_final_fs gap).
    expect(located({ files: [clean(LIB, 300), clean(LIB, 300)], signatureHits: [hit('sig', 40)] })).toEqual([
      ['byte-signature', 'offset=40', false],
    ]);
    // A symlink has no bytes, and a shorter copy ends before the hit: only the earlier copy held it.
    expect(located({ files: [clean(LIB, 300), symlink(LIB)], signatureHits: [hit('sig', 40)] })).toEqual([
      ['byte-signature', 'offset=40', true],
    ]);
    expect(located({ files: [clean(LIB, 300), clean(LIB, 30)], signatureHits: [hit('sig', 40)] })).toEqual([
      ['byte-signature', 'offset=40', true],
    ]);
    // A hit past the end of the earlier copy can only be the later copy's.
    expect(located({ files: [clean(LIB, 30), clean(LIB, 300)], signatureHits: [hit('sig', 40)] })).toEqual([
      ['byte-signature', 'offset=40', false],
    ]);
    // A copy replaced by a later directory (a file recorded below its path) holds nothing any more.
    expect(
      located({ files: [clean(LIB, 300), clean(`${LIB}/README`)], signatureHits: [hit('sig', 40)] }),
    ).toEqual([['byte-signature', 'offset=40', true]]);
  });
});

describe('packageMatchesRule', () => {
  const rule = (r: Partial<DpkgVersionRule>): DpkgVersionRule => ({
    id: 'r',
    kind: 'dpkg-version',
    package: 'liblzma5',
    ...r,
  });

  it('treats introduced as inclusive and fixed as exclusive, in Debian ordering', () => {
    const r = rule({ introduced: '5.5.1alpha-0.1', fixed: '5.6.1+really5.4.5-1' });
    expect(packageMatchesRule(pkg('liblzma5', '5.5.1alpha-0.1'), r)).toBe(true);
    expect(packageMatchesRule(pkg('liblzma5', '5.6.1-1'), r)).toBe(true);
    expect(packageMatchesRule(pkg('liblzma5', '5.6.1+really5.4.5-1'), r)).toBe(false);
    expect(packageMatchesRule(pkg('liblzma5', '5.4.5-0.2'), r)).toBe(false);
    expect(packageMatchesRule(pkg('liblzma5', '5.6.0~rc1-1'), rule({ fixed: '5.6.0-1' }))).toBe(true);
  });

  it('honours architectures and skips removed packages and other names', () => {
    const r = rule({ versions: ['5.6.1-1'], architectures: ['amd64'] });
    expect(packageMatchesRule(pkg('liblzma5', '5.6.1-1', { architecture: 'arm64' }), r)).toBe(false);
    expect(packageMatchesRule(pkg('liblzma5', '5.6.1-1', { architecture: null }), r)).toBe(false);
    expect(packageMatchesRule(pkg('liblzma5', '5.6.1-1', { status: 'deinstall ok config-files' }), r)).toBe(
      false,
    );
    // No Status field: installed in a distroless status.d file, not in the main status file (as dpkg-query).
    expect(
      packageMatchesRule(
        pkg('liblzma5', '5.6.1-1', { status: null, statusFile: '/var/lib/dpkg/status.d/liblzma5' }),
        r,
      ),
    ).toBe(true);
    expect(packageMatchesRule(pkg('liblzma5', '5.6.1-1', { status: null }), r)).toBe(false);
    expect(packageMatchesRule(pkg('xz-utils', '5.6.1-1'), r)).toBe(false);
  });

  it('never throws on a corrupt version in an image', () => {
    expect(packageMatchesRule(pkg('liblzma5', 'x:y z'), rule({ introduced: '1.0' }))).toBe(false);
    expect(packageMatchesRule(pkg('liblzma5', ''), rule({ versions: ['1.0'] }))).toBe(false);
  });
});
