import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { LayerFacts } from '../facts.js';
import { analyzeLayer } from '../layer-stream.js';
import { layerFacts as facts } from '../test-fixtures/facts.js';
import { DPKG_STATUS, END_OF_ARCHIVE, rawHeader, rawMember } from '../test-fixtures/layers.js';
import { compileRules } from './compile.js';
import { matchImage } from './image-view.js';
import { parseIocSet } from './load.js';

const SHA = 'a'.repeat(64);
const MD5 = 'b'.repeat(32);
const LIB = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
const STATUS = '/var/lib/dpkg/status';
const INFO = '/var/lib/dpkg/info/liblzma5:amd64.md5sums';
const sets = [
  parseIocSet(
    {
      id: 's',
      version: '1',
      title: 't',
      references: [],
      rules: [
        { id: 'sha', kind: 'file-sha256', sha256: SHA, paths: ['/**/liblzma.so.5*'] },
        { id: 'md5', kind: 'file-md5', md5: MD5, paths: ['/**/liblzma.so.5*'] },
        { id: 'ver', kind: 'dpkg-version', package: 'liblzma5', versions: ['5.6.1-1'] },
      ],
    },
    'test',
  ),
];
const badLib = (path = LIB) => ({ path, size: 10, mode: 0o644, sha256: SHA, md5: 'c'.repeat(32) });
const cleanFile = (path: string) => ({
  path,
  size: 10,
  mode: 0o644,
  sha256: 'd'.repeat(64),
  md5: 'e'.repeat(32),
});
const pkg = {
  name: 'liblzma5',
  version: '5.6.1-1',
  architecture: 'amd64',
  source: null,
  status: 'install ok installed',
};

/** Evidence of the base layer for the given upper layers. */
const baseEvidence = (base: Partial<LayerFacts>, ...upper: Array<Partial<LayerFacts>>) =>
  matchImage(
    [base, ...upper].map((f, i) => ({ digest: `sha256:${i}`, facts: facts(f) })),
    sets,
  ).filter((e) => e.layerIndex === 0);

describe('matchImage', () => {
  it('keeps evidence of a file no upper layer touches in the final filesystem', () => {
    const ev = baseEvidence({ files: [badLib()] }, { files: [cleanFile('/etc/hostname')] });
    expect(ev).toEqual([
      {
        kind: 'file-sha256',
        iocSetId: 's',
        iocSetVersion: '1',
        ruleId: 'sha',
        path: LIB,
        value: SHA,
        layerDigest: 'sha256:0',
        layerIndex: 0,
        inFinalFs: true,
      },
    ]);
  });

  it('marks a file removed by a whiteout in an upper layer', () => {
    expect(
      baseEvidence({ files: [badLib()] }, { whiteouts: [{ path: LIB, opaque: false }] })[0]!.inFinalFs,
    ).toBe(false);
  });

  it('marks a file whose ancestor directory was whited out', () => {
    const ev = baseEvidence({ files: [badLib()] }, {}, { whiteouts: [{ path: '/usr/lib', opaque: false }] });
    expect(ev[0]!.inFinalFs).toBe(false);
  });

  it('marks a file hidden by an opaque whiteout of an ancestor directory in an upper layer', () => {
    const ev = baseEvidence(
      { files: [badLib()] },
      { whiteouts: [{ path: '/usr/lib/x86_64-linux-gnu', opaque: true }] },
    );
    expect(ev[0]!.inFinalFs).toBe(false);
  });

  it('marks a file hidden by an opaque marker at the root of an upper layer', () => {
    const ev = baseEvidence({ files: [badLib()] }, { whiteouts: [{ path: '/', opaque: true }] });
    expect(ev[0]!.inFinalFs).toBe(false);
  });

  it('marks a file replaced by a directory that an upper layer records a file in', () => {
    const ev = baseEvidence({ files: [badLib()] }, { files: [cleanFile(`${LIB}/README`)] });
    expect(ev[0]!.inFinalFs).toBe(false);
  });

  it('does not treat a file below a sibling with a common prefix as replacing the file', () => {
    const ev = baseEvidence({ files: [badLib()] }, { files: [cleanFile(`${LIB}.d/README`)] });
    expect(ev[0]!.inFinalFs).toBe(true);
  });

  it('does not let a layer hide its own files with its own opaque marker', () => {
    const ev = baseEvidence({ files: [badLib()], whiteouts: [{ path: '/usr/lib', opaque: true }] });
    expect(ev[0]!.inFinalFs).toBe(true);
  });

  it('does not treat a whiteout of a sibling with a common prefix as removing the file', () => {
    const ev = baseEvidence(
      { files: [badLib()] },
      { whiteouts: [{ path: '/usr/lib/x86_64-linux', opaque: false }] },
    );
    expect(ev[0]!.inFinalFs).toBe(true);
  });

  it('marks a file overwritten by an upper layer, and keeps the upper copy when it matches too', () => {
    const all = matchImage(
      [
        { digest: 'sha256:0', facts: facts({ files: [badLib()] }) },
        { digest: 'sha256:1', facts: facts({ files: [badLib()] }) },
      ],
      sets,
    );
    expect(all.map((e) => [e.layerIndex, e.inFinalFs])).toEqual([
      [0, false],
      [1, true],
    ]);
  });

  it('marks dpkg-version evidence stale when an upper layer rewrites the status file', () => {
    const base = { packages: [{ ...pkg, statusFile: STATUS }] };
    expect(baseEvidence(base, { files: [cleanFile(STATUS)] })[0]!.inFinalFs).toBe(false);
    expect(
      baseEvidence(base, { packages: [{ ...pkg, version: '5.6.1+really5.4.5-1', statusFile: STATUS }] })[0]!
        .inFinalFs,
    ).toBe(false);
    expect(baseEvidence(base, { files: [cleanFile('/etc/hostname')] })[0]!.inFinalFs).toBe(true);
  });

  it('does not take a hardlink whose bytes were not recorded to replace what was at its path', () => {
    // It may name a lower layer's copy of those very bytes: leaning "survives", as every gap does.
    const link = (path: string) => ({
      path,
      size: 0,
      mode: 0o644,
      sha256: null,
      md5: null,
      linkTarget: '/opt/b',
    });
    const base = { files: [badLib(), cleanFile(STATUS)], packages: [{ ...pkg, statusFile: STATUS }] };
    expect(baseEvidence(base, { files: [link(LIB), link(STATUS)] }).map((e) => e.inFinalFs)).toEqual([
      true,
      true,
    ]);
    // The same row without its target reads as a file of its own (as rows stored before migration 0007 do).
    const { linkTarget: _, ...presence } = link(LIB);
    expect(baseEvidence(base, { files: [presence] })[0]!.inFinalFs).toBe(false);
    // Below the path it still makes a directory there, and at an ancestor it is no directory.
    expect(baseEvidence(base, { files: [link(`${LIB}/x`)] })[0]!.inFinalFs).toBe(false);
    expect(baseEvidence(base, { files: [link('/usr/lib/x86_64-linux-gnu')] })[0]!.inFinalFs).toBe(false);
  });

  it('keeps dpkg-version evidence when an upper layer hardlinks the status file to a lower copy', async () => {
    // umoci links var/lib/dpkg/status to the lower status-old, which lists the same backdoored version.
    const layer = async (...members: Buffer[]) =>
      analyzeLayer(
        (async function* () {
          yield Buffer.concat([...members, END_OF_ARCHIVE]);
        })(),
        { rules: compileRules(sets) },
      );
    const status = (name: string) =>
      rawMember(rawHeader({ name, size: Buffer.byteLength(DPKG_STATUS) }), DPKG_STATUS);
    const lower = await layer(status('var/lib/dpkg/status'), status('var/lib/dpkg/status-old'));
    const upper = await layer(
      rawHeader({ name: 'var/lib/dpkg/status', size: 0, typeflag: '1', linkname: 'var/lib/dpkg/status-old' }),
    );
    const ev = matchImage(
      [
        { digest: 'sha256:0', facts: lower },
        { digest: 'sha256:1', facts: upper },
      ],
      sets,
    );
    expect(ev.map((e) => [e.kind, e.path, e.value, e.layerIndex, e.inFinalFs])).toEqual([
      ['dpkg-version', STATUS, 'liblzma5=5.6.1-1', 0, true],
    ]);
  });

  it('keeps dpkg-version evidence when an upper layer hardlinks the status file to a hashed copy of its own', async () => {
    // With --hash-all-files the link gets status-old's hashes, but its listing went by unparsed.
    const layer = async (...members: Buffer[]) =>
      analyzeLayer(
        (async function* () {
          yield Buffer.concat([...members, END_OF_ARCHIVE]);
        })(),
        { rules: compileRules(sets, { hashAllFiles: true }) },
      );
    const lower = await layer(
      rawMember(
        rawHeader({ name: 'var/lib/dpkg/status', size: Buffer.byteLength(DPKG_STATUS) }),
        DPKG_STATUS,
      ),
    );
    const upper = await layer(
      rawMember(
        rawHeader({ name: 'var/lib/dpkg/status-old', size: Buffer.byteLength(DPKG_STATUS) }),
        DPKG_STATUS,
      ),
      rawHeader({ name: 'var/lib/dpkg/status', size: 0, typeflag: '1', linkname: 'var/lib/dpkg/status-old' }),
    );
    const link = upper.files.find((f) => f.path === STATUS);
    expect(link).toMatchObject({
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      linkTarget: '/var/lib/dpkg/status-old',
    });
    expect(upper.packages).toEqual([]);
    const ev = matchImage(
      [
        { digest: 'sha256:0', facts: lower },
        { digest: 'sha256:1', facts: upper },
      ],
      sets,
    );
    expect(ev.map((e) => [e.kind, e.path, e.layerIndex, e.inFinalFs])).toEqual([
      ['dpkg-version', STATUS, 0, true],
    ]);
  });

  it('tracks a status.d file by its own path', () => {
    const base = { packages: [{ ...pkg, status: null, statusFile: '/var/lib/dpkg/status.d/liblzma5' }] };
    expect(baseEvidence(base, { files: [cleanFile('/var/lib/dpkg/status.d/libssl3')] })[0]!.inFinalFs).toBe(
      true,
    );
    const removed = baseEvidence(base, {
      whiteouts: [{ path: '/var/lib/dpkg/status.d/liblzma5', opaque: false }],
    });
    expect(removed[0]!.inFinalFs).toBe(false);
  });

  it('keeps dpkg-md5sums evidence until the md5sums file is rewritten or the listed file is whited out', () => {
    const base = { md5sums: [{ package: 'liblzma5', infoFile: INFO, md5: MD5, path: LIB }] };
    expect(baseEvidence(base, {})[0]).toMatchObject({ kind: 'dpkg-md5sums', path: LIB, inFinalFs: true });
    expect(baseEvidence(base, { files: [cleanFile(INFO)] })[0]!.inFinalFs).toBe(false);
    expect(
      baseEvidence(base, {
        md5sums: [{ package: 'liblzma5', infoFile: INFO, md5: 'f'.repeat(32), path: LIB }],
      })[0]!.inFinalFs,
    ).toBe(false);
    expect(baseEvidence(base, { whiteouts: [{ path: LIB, opaque: false }] })[0]!.inFinalFs).toBe(false);
    expect(baseEvidence(base, { whiteouts: [{ path: INFO, opaque: false }] })[0]!.inFinalFs).toBe(false);
    // A new file at the listed path does not change what the dpkg database claims.
    expect(baseEvidence(base, { files: [cleanFile(LIB)] })[0]!.inFinalFs).toBe(true);
  });

  it('numbers layers from the base and keeps the top layer evidence in the final filesystem', () => {
    const all = matchImage(
      [
        { digest: 'sha256:0', facts: facts({}) },
        { digest: 'sha256:1', facts: facts({}) },
        { digest: 'sha256:2', facts: facts({ files: [badLib('/lib/liblzma.so.5')] }) },
      ],
      sets,
    );
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ layerIndex: 2, layerDigest: 'sha256:2', inFinalFs: true });
  });

  it('matches the layers around one whose analysis failed, at their own positions, taking it to remove nothing', () => {
    const all = matchImage(
      [
        { digest: 'sha256:0', facts: facts({ packages: [{ ...pkg, statusFile: STATUS }] }) },
        { digest: 'sha256:1', facts: null },
        { digest: 'sha256:2', facts: facts({ files: [badLib()] }) },
        { digest: 'sha256:3', facts: null },
      ],
      sets,
    );
    expect(all.map((e) => [e.ruleId, e.layerIndex, e.layerDigest, e.inFinalFs])).toEqual([
      ['ver', 0, 'sha256:0', true],
      ['sha', 2, 'sha256:2', true],
    ]);
  });

  it('still lets an analyzed layer above a failed one remove evidence below both', () => {
    const all = matchImage(
      [
        { digest: 'sha256:0', facts: facts({ files: [badLib()] }) },
        { digest: 'sha256:1', facts: null },
        { digest: 'sha256:2', facts: facts({ whiteouts: [{ path: LIB, opaque: false }] }) },
      ],
      sets,
    );
    expect(all.map((e) => [e.layerIndex, e.inFinalFs])).toEqual([[0, false]]);
  });

  it('marks evidence a later entry of the same layer replaces, whatever the layers above', () => {
    const status = { ...pkg, statusFile: STATUS };
    // The later status file is empty, so it lists nothing: the paragraph came from the replaced copy.
    const emptyStatus = { ...cleanFile(STATUS), size: 0 };
    const twice = { files: [badLib(), cleanFile(STATUS), cleanFile(LIB), emptyStatus] };
    const all = matchImage(
      [
        { digest: 'sha256:0', facts: facts({ ...twice, packages: [status] }) },
        { digest: 'sha256:1', facts: facts({ files: [cleanFile('/etc/hostname')] }) },
      ],
      sets,
    );
    expect(all.map((e) => [e.ruleId, e.inFinalFs])).toEqual([
      ['sha', false],
      ['ver', false],
    ]);
    // The same facts without the later copies: both survive, so the test tells the two apart.
    expect(
      baseEvidence({ files: [badLib(), cleanFile(STATUS)], packages: [status] }).map((e) => e.inFinalFs),
    ).toEqual([true, true]);
  });

  it('keeps the later copy of a path the same layer holds twice when both match', () => {
    const all = baseEvidence({
      files: [cleanFile(STATUS), badLib(), cleanFile(STATUS), badLib()],
      packages: [
        { ...pkg, statusFile: STATUS },
        { ...pkg, statusFile: STATUS },
      ],
    });
    // Hashes are tied to their copy; a paragraph either non-empty copy could hold survives.
    expect(all.map((e) => [e.ruleId, e.inFinalFs])).toEqual([
      ['sha', false],
      ['sha', true],
      ['ver', true],
      ['ver', true],
    ]);
  });

  describe('on a real layer holding liblzma and the dpkg status twice', () => {
    const bad = Buffer.concat([Buffer.from('pretend backdoor payload '), Buffer.from('f30f1efa5548', 'hex')]);
    const good = Buffer.from('a clean liblzma build of another size\n');
    const badSha = createHash('sha256').update(bad).digest('hex');
    const set = parseIocSet(
      {
        id: 'x',
        version: '1',
        title: 't',
        references: [],
        rules: [
          { id: 'sha', kind: 'file-sha256', sha256: badSha, paths: ['/**/liblzma.so.5*'] },
          { id: 'ver', kind: 'dpkg-version', package: 'liblzma5', versions: ['5.6.1-1'] },
          { id: 'sig', kind: 'byte-signature', hex: 'f30f1efa5548', paths: ['/**/liblzma.so.5*'] },
        ],
      },
      'test',
    );
    const member = (name: string, body: Buffer | string) =>
      rawMember(rawHeader({ name, size: Buffer.byteLength(body) }), body);
    const fixedStatus = DPKG_STATUS.replace('Version: 5.6.1-1', 'Version: 5.6.1+really5.4.5-1');
    const evidenceOf = async (...members: Buffer[]) => {
      const layer = await analyzeLayer(
        (async function* () {
          yield Buffer.concat([...members, END_OF_ARCHIVE]);
        })(),
        { rules: compileRules([set]) },
      );
      return matchImage([{ digest: 'sha256:0', facts: layer }], [set]).map((e) => [e.ruleId, e.inFinalFs]);
    };

    it('reports the backdoored copy replaced by a later clean one as not in the final filesystem', async () => {
      const lib = LIB.slice(1);
      expect(
        await evidenceOf(
          member(lib, bad),
          member('var/lib/dpkg/status', DPKG_STATUS),
          member(lib, good.subarray(0, 10)),
          member('var/lib/dpkg/status', fixedStatus),
        ),
      ).toEqual([
        ['sha', false],
        // Either status file could list it: the facts cannot say which did, so it survives (docs/schema.md).
        ['ver', true],
        // The later copy is 10 bytes: it cannot hold a hit at that offset.
        ['sig', false],
      ]);
      // A clean copy long enough to hold the hit: nothing in the facts says which copy the hit came from,
      // so it survives. The file hash, tied to its copy, still says replaced.
      expect(await evidenceOf(member(lib, bad), member(lib, good))).toEqual([
        ['sha', false],
        ['sig', true],
      ]);
      // A symlink replacing it, with the archive's own whiteout of it, which hides lower layers only.
      expect(
        await evidenceOf(
          member(lib, bad),
          member('usr/lib/x86_64-linux-gnu/.wh.liblzma.so.5.6.1', ''),
          rawHeader({ name: lib, size: 0, typeflag: '2', linkname: 'liblzma.so.5.4.5' }),
        ),
      ).toEqual([
        ['sha', false],
        ['sig', false],
      ]);
    });

    it('keeps the backdoored copy that replaces a clean one', async () => {
      const lib = LIB.slice(1);
      expect(
        await evidenceOf(
          member(lib, good.subarray(0, 10)),
          member('var/lib/dpkg/status', fixedStatus),
          member(lib, bad),
          member('var/lib/dpkg/status', DPKG_STATUS),
        ),
      ).toEqual([
        ['sha', true],
        ['ver', true],
        ['sig', true],
      ]);
      // A clean copy before it, long enough to hold the hit: the hit is taken from the later copy.
      expect(await evidenceOf(member(lib, good), member(lib, bad))).toEqual([
        ['sha', true],
        ['sig', true],
      ]);
    });
  });
});

describe('evidence a hardlink to a lower file carries', () => {
  const LINK = '/opt/keep/liblzma.so.5';
  const linkTo = (target: string, path = LINK) => ({
    path,
    size: 0,
    mode: 0o644,
    sha256: null,
    md5: null,
    linkTarget: target,
  });
  const whiteout = (path: string) => ({ whiteouts: [{ path, opaque: false }] });
  /** [kind, path, layer, in final fs] of every piece of evidence of the image. */
  const image = (...layers: Array<Partial<LayerFacts>>) =>
    matchImage(
      layers.map((f, i) => ({ digest: `sha256:${i}`, facts: facts(f) })),
      sets,
    ).map((e) => [e.kind, e.path, e.layerIndex, e.inFinalFs]);

  it('is evidence at the link, in its layer, that survives the target’s whiteout', () => {
    expect(image({ files: [badLib()] }, { files: [linkTo(LIB)] }, whiteout(LIB))).toEqual([
      ['file-sha256', LIB, 0, false],
      ['file-sha256', LINK, 1, true],
    ]);
  });

  it('is gone when the link is removed or replaced above', () => {
    expect(image({ files: [badLib()] }, { files: [linkTo(LIB)] }, whiteout(LINK))).toEqual([
      ['file-sha256', LIB, 0, true],
      ['file-sha256', LINK, 1, false],
    ]);
    expect(image({ files: [badLib()] }, { files: [linkTo(LIB), cleanFile(LINK)] })).toEqual([
      ['file-sha256', LIB, 0, true],
      ['file-sha256', LINK, 1, false],
    ]);
  });

  it('is nothing when the target was already gone, or held no evidence, when the link was made', () => {
    expect(image({ files: [badLib()] }, whiteout(LIB), { files: [linkTo(LIB)] })).toEqual([
      ['file-sha256', LIB, 0, false],
    ]);
    expect(image({ files: [cleanFile(LIB)] }, { files: [linkTo(LIB)] })).toEqual([]);
  });

  it('moves a dpkg listing with its file, not an md5sums line, which names another path', () => {
    const base = {
      files: [cleanFile(STATUS)],
      packages: [{ ...pkg, statusFile: STATUS }],
      md5sums: [{ package: 'liblzma5', infoFile: INFO, md5: MD5, path: LIB }],
    };
    const copies = {
      files: [linkTo(STATUS, '/var/backups/dpkg.status'), linkTo(INFO, '/var/backups/md5sums')],
    };
    expect(image(base, copies, whiteout(STATUS))).toEqual([
      ['dpkg-md5sums', LIB, 0, true],
      ['dpkg-version', STATUS, 0, false],
      ['dpkg-version', '/var/backups/dpkg.status', 1, true],
    ]);
  });

  it('is nothing when the link’s layer wrote the target itself before linking it', () => {
    // A fixed library written over the old one, then linked: the link holds the new bytes.
    expect(image({ files: [badLib()] }, { files: [cleanFile(LIB), linkTo(LIB)] })).toEqual([
      ['file-sha256', LIB, 0, false],
    ]);
    // A dpkg status rewritten, then linked from status.d: the link row has the new file's hashes.
    const fixed = { ...cleanFile(STATUS), linkTarget: STATUS, path: '/var/lib/dpkg/status.d/liblzma5' };
    const base = { files: [cleanFile(STATUS)], packages: [{ ...pkg, statusFile: STATUS }] };
    expect(image(base, { files: [cleanFile(STATUS), fixed] })).toEqual([['dpkg-version', STATUS, 0, false]]);
  });

  it('carries on through a link to a link', () => {
    expect(
      image(
        { files: [badLib()] },
        { files: [linkTo(LIB)] },
        { files: [linkTo(LINK, '/srv/liblzma.so.5')] },
        whiteout(LIB),
      ),
    ).toEqual([
      ['file-sha256', LIB, 0, false],
      ['file-sha256', LINK, 1, true],
      ['file-sha256', '/srv/liblzma.so.5', 2, true],
    ]);
  });
});

describe('matchImage over a loop of lower links', () => {
  it('reads a layer that nothing moves in its other placements too', () => {
    // /lib -> ../b and /b -> lib: the upper layer's /lib/x lands at /b/x and, through the loop again, back at
    // /lib/x, so it is unmoved; its late /b entry ends that link in its other placement, which puts the file
    // at /b/x, where the whiteout of /lib above does not reach.
    const stack = [
      facts({
        symlinks: [
          { path: '/b', target: 'lib' },
          { path: '/lib', target: '../b' },
        ],
        dirs: [],
      }),
      facts({ files: [badLib('/lib/liblzma.so.5.6.1')], dirs: [], lateDirs: ['/b'] }),
      facts({ whiteouts: [{ path: '/lib', opaque: false }], dirs: [] }),
    ].map((f, i) => ({ digest: `sha256:${i}`, facts: f }));
    expect(matchImage(stack, sets).map((e) => [e.kind, e.path, e.inFinalFs])).toEqual([
      ['file-sha256', '/lib/liblzma.so.5.6.1', true],
    ]);
  });
});

describe('matchImage: a symlink over a folder', () => {
  const inFolder = { files: [badLib('/srv/tools/liblzma.so.5.6.1')], dirs: ['/srv/tools'], symlinks: [] };
  const verdict = (...stack: Array<Partial<LayerFacts>>) =>
    matchImage(
      stack.map((f, i) => ({ digest: `sha256:${i}`, facts: facts(f) })),
      sets,
    ).map((e) => [e.path, e.inFinalFs]);

  it('says the folder’s file is gone once an upper layer leaves a symlink at the folder or the file', () => {
    const linkAt = (path: string) => ({ dirs: [], symlinks: [{ path, target: 'other' }] });
    expect(verdict(inFolder, linkAt('/srv/tools'))).toEqual([['/srv/tools/liblzma.so.5.6.1', false]]);
    expect(verdict(inFolder, linkAt('/srv/tools/liblzma.so.5.6.1'))).toEqual([
      ['/srv/tools/liblzma.so.5.6.1', false],
    ]);
    expect(verdict(inFolder, linkAt('/srv/other'))).toEqual([['/srv/tools/liblzma.so.5.6.1', true]]);
  });

  it('leans "survives" where paths may be misplaced: a layer an older analyzer read', () => {
    // Its /lib/x may have gone through a /lib link it did not record: rewriting that link leaves the file.
    const older = { files: [badLib('/lib/liblzma.so.5.6.1')], dirs: undefined, symlinks: undefined };
    const relinked = { dirs: [], symlinks: [{ path: '/lib', target: 'usr/lib' }] };
    expect(verdict(older, relinked)).toEqual([['/lib/liblzma.so.5.6.1', true]]);
  });
});
