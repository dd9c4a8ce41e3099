import { describe, expect, it } from 'vitest';
import type { LayerFacts } from '../facts.js';
import { layerFacts as facts } from '../test-fixtures/facts.js';
import { matchImage } from './image-view.js';
import { parseIocSet } from './load.js';
import { resolveStack } from './lower-links.js';

const file = (path: string) => ({ path, size: 1, mode: 0o644, sha256: null, md5: null });
const merged = { symlinks: [{ path: '/lib', target: 'usr/lib' }] };
const pathsOf = (f: LayerFacts | null) => f?.files.map((x) => x.path);
/** Each layer's facts as resolveStack resolves them. */
const resolvedFacts = (layers: Array<LayerFacts | null>) => resolveStack(layers).map((r) => r.facts);

describe('resolveStack', () => {
  it("resolves an upper layer's member through a lower layer's link, its own name kept", () => {
    const [, upper] = resolvedFacts([
      facts(merged),
      facts({
        files: [file('/lib/x86_64-linux-gnu/liblzma.so.5.6.1'), file('/lib'), file('/etc/motd')],
        whiteouts: [
          { path: '/lib/x86_64-linux-gnu/old.so', opaque: false },
          { path: '/lib', opaque: false },
          { path: '/lib/x86_64-linux-gnu', opaque: true },
          { path: '/lib', opaque: true },
        ],
      }),
    ]);
    expect(pathsOf(upper!)).toEqual(['/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1', '/lib', '/etc/motd']);
    // `.wh.lib` removes the link itself; an opaque marker inside `lib/` hides what the link leads to.
    expect(upper!.whiteouts.map((w) => w.path)).toEqual([
      '/usr/lib/x86_64-linux-gnu/old.so',
      '/lib',
      '/usr/lib/x86_64-linux-gnu',
      '/usr/lib',
    ]);
  });

  it('gives a layer that nothing moves its own facts object, which matchImage reads once', () => {
    const upper = facts({
      files: [
        file('/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1'),
        { ...file('/etc/b'), linkTarget: '/etc/a' },
      ],
      md5sums: [{ package: 'p', infoFile: '/var/lib/dpkg/info/p.md5sums', md5: 'b', path: '/usr/bin/p' }],
      whiteouts: [{ path: '/opt', opaque: true }],
    });
    const lower = facts(merged);
    // A lower link that no path of the layer goes through: the layer is where the analyzer recorded it.
    expect(resolvedFacts([lower, upper])[1]).toBe(upper);
    // One path through it, and the layer is a copy with that path moved.
    const moved = facts({ ...upper, files: [...upper.files, file('/lib/x')] });
    expect(resolvedFacts([lower, moved])[1]).not.toBe(moved);
    expect(pathsOf(resolvedFacts([lower, moved])[1]!)?.at(-1)).toBe('/usr/lib/x');
  });

  it('follows relative and absolute targets, chains of links, and a hardlink target’s parent only', () => {
    const [, , top] = resolvedFacts([
      facts({ symlinks: [{ path: '/opt/current', target: 'v2' }] }),
      facts({ symlinks: [{ path: '/srv/app', target: '/opt/current' }] }),
      facts({
        files: [
          file('/srv/app/bin/tool'),
          { ...file('/opt/keep'), linkTarget: '/srv/app/bin/tool' },
          { ...file('/opt/alias'), linkTarget: '/srv/app' },
        ],
      }),
    ]);
    expect(top!.files.map((f) => [f.path, f.linkTarget])).toEqual([
      ['/opt/v2/bin/tool', undefined],
      ['/opt/keep', '/opt/v2/bin/tool'],
      // A hardlink to a symlink is the symlink: its own name is not followed.
      ['/opt/alias', '/srv/app'],
    ]);
  });

  it('resolves an md5sums file’s listed paths through its own layer’s links too, as dpkg wrote them', () => {
    const md5sums = [
      { package: 'liblzma5', infoFile: '/var/lib/dpkg/info/x.md5sums', md5: 'b', path: '/lib/x/l.so' },
    ];
    const [base] = resolvedFacts([facts({ ...merged, md5sums })]);
    expect(base!.md5sums[0]).toEqual({ ...md5sums[0], path: '/usr/lib/x/l.so', listedPath: '/lib/x/l.so' });
  });

  it('drops a lower link that a layer whites out, hides, or replaces, and keeps one a failed layer may not have', () => {
    const upper = facts({ files: [file('/lib/a')] });
    const landingAbove = (...middle: Array<LayerFacts | null>) =>
      pathsOf(resolvedFacts([facts(merged), ...middle, upper]).at(-1)!);
    expect(landingAbove()).toEqual(['/usr/lib/a']);
    expect(landingAbove(facts({ whiteouts: [{ path: '/lib', opaque: false }] }))).toEqual(['/lib/a']);
    expect(landingAbove(facts({ whiteouts: [{ path: '/', opaque: true }] }))).toEqual(['/lib/a']);
    expect(landingAbove(facts({ files: [file('/lib')] }))).toEqual(['/lib/a']);
    // Another link at the same path replaces the first.
    expect(landingAbove(facts({ symlinks: [{ path: '/lib', target: 'lib64' }] }))).toEqual(['/lib64/a']);
    // Nothing is known of a failed layer: it is taken to change nothing, as everywhere in matching.
    expect(landingAbove(null)).toEqual(['/usr/lib/a']);
    // A layer an older analyzer read knows of no symlink: it neither adds nor removes one.
    expect(landingAbove(facts({}))).toEqual(['/usr/lib/a']);
  });

  it('drops a lower link that a directory entry replaces, for the members of its own layer and above', () => {
    const landing = (layers: Array<Partial<LayerFacts>>) => resolvedFacts(layers.map(facts)).map(pathsOf);
    // `lib/` listed before `lib/a`: the link is gone before the member lands, so it is at /lib/a.
    expect(
      landing([merged, { dirs: ['/lib'], files: [file('/lib/a')] }, { files: [file('/lib/b')] }]),
    ).toEqual([[], ['/lib/a'], ['/lib/b']]);
    // Entries below a link land through it: `lib/x/` is a new folder under /usr/lib, the link stays.
    expect(landing([merged, { dirs: ['/lib/x'], files: [file('/lib/x/a')] }])[1]).toEqual(['/usr/lib/x/a']);
    expect(resolvedFacts([facts(merged), facts({ dirs: ['/lib/x'] })])[1]!.dirs).toEqual(['/usr/lib/x']);
    // Each entry lands through what the ones before it left: `opt/alias/` ends the link, so
    // `opt/alias/deep/` is a folder of the new directory, not of the link's target.
    const alias = { symlinks: [{ path: '/opt/alias', target: 'tools' }] };
    expect(
      resolvedFacts([facts(alias), facts({ dirs: ['/opt/alias', '/opt/alias/deep'] })])[1]!.dirs,
    ).toEqual(['/opt/alias', '/opt/alias/deep']);
    // A link over a directory is unchanged by a directory entry of a real directory elsewhere.
    expect(landing([merged, { dirs: ['/usr/lib', '/etc'] }, { files: [file('/lib/a')] }])[2]).toEqual([
      '/usr/lib/a',
    ]);
  });

  it('ends a link at a directory entry listed late for the layers above only: its own members went through it', () => {
    const landing = (layers: Array<Partial<LayerFacts>>) => resolvedFacts(layers.map(facts)).map(pathsOf);
    expect(
      landing([merged, { lateDirs: ['/lib'], files: [file('/lib/a')] }, { files: [file('/lib/b')] }]),
    ).toEqual([[], ['/usr/lib/a'], ['/lib/b']]);
  });

  it('is exact only over layers that recorded their directory entries in order and kept no removal ambiguous', () => {
    const exact = (...layers: Array<Partial<LayerFacts> | null>) =>
      resolveStack(layers.map((l) => (l === null ? null : facts({ dirs: [], ...l })))).map((r) => r.exact);
    const twoLinks = { symlinks: [...merged.symlinks, { path: '/bin', target: 'usr/bin' }] };
    expect(exact(twoLinks, { files: [file('/lib/a')] })).toEqual([true, true]);
    // A layer an older analyzer read, a failed one, or a directory listed late: unknown from there up.
    expect(exact(twoLinks, { dirs: undefined }, {})).toEqual([true, false, false]);
    expect(exact(twoLinks, null, {})).toEqual([true, false, false]);
    expect(exact(twoLinks, { lateDirs: ['/opt'] })).toEqual([true, false]);
    // A whiteout of the link its own member went through: before or after the member, as the archive has it.
    const whitedOut = { whiteouts: [{ path: '/lib', opaque: false }] };
    expect(exact(twoLinks, { ...whitedOut, files: [file('/lib/a')] })).toEqual([true, false]);
    expect(exact(twoLinks, { files: [file('/lib'), file('/lib/a')] })).toEqual([true, false]);
    // Removing a link none of its own paths goes through leaves nothing to order.
    expect(exact(twoLinks, { ...whitedOut, files: [file('/bin/a')] })).toEqual([true, true]);
    // A whiteout at or above a link of its own: the link is gone for the layers above if the whiteout came
    // after it (containerd and Docker remove what is there). Only a layer above whose paths go through it
    // is not exact; an opaque marker hides lower layers only.
    const ownLink = { symlinks: [{ path: '/opt/a', target: 'b' }] };
    const through = { files: [file('/opt/a/x')] };
    const beside = { files: [file('/opt/c/x')] };
    const ownWhitedOut = (path: string, opaque = false) => ({ ...ownLink, whiteouts: [{ path, opaque }] });
    expect(exact({}, ownWhitedOut('/opt/a'), through, {})).toEqual([true, true, false, false]);
    expect(exact({}, ownWhitedOut('/opt'), through)).toEqual([true, true, false]);
    expect(exact({}, ownWhitedOut('/opt/a'), beside)).toEqual([true, true, true]);
    expect(exact({}, ownWhitedOut('/opt', true), through)).toEqual([true, true, true]);
    expect(exact({}, ownWhitedOut('/opt/b'), through)).toEqual([true, true, true]);
    // Its own members written where such a link leads may have gone into a new folder at its path instead.
    expect(exact({}, { ...ownWhitedOut('/opt/a'), files: [file('/opt/b/x')] })).toEqual([true, false]);
    expect(exact({}, { ...ownWhitedOut('/opt/a'), files: [file('/opt/bx')] })).toEqual([true, true]);
    const toRoot = {
      symlinks: [{ path: '/usr', target: '.' }],
      whiteouts: [{ path: '/usr', opaque: false }],
    };
    expect(exact({}, { ...toRoot, files: [file('/lib/x')] })).toEqual([true, false]);
    // Once a layer replaces the link, no layer above goes through it.
    expect(exact({}, ownWhitedOut('/opt/a'), { files: [file('/opt/a')] }, through)).toEqual([
      true,
      true,
      true,
      true,
    ]);
  });

  it('is not exact where a member reaches a link a directory entry ended another way, and places it as listed first', () => {
    const alias = { dirs: [], symlinks: [{ path: '/opt/alias', target: 'tools' }] };
    const resolved = (...layers: Array<Partial<LayerFacts>>) =>
      resolveStack(layers.map((l) => facts({ dirs: [], ...l }))).map((r) => [r.exact, pathsOf(r.facts)]);
    // Spelled under the entry, the member came after it (else the entry would be late): exact.
    expect(resolved(alias, { dirs: ['/opt/alias'], files: [file('/opt/alias/x')] })[1]).toEqual([
      true,
      ['/opt/alias/x'],
    ]);
    // Through another lower link, or with the entry spelled through one: it may have come first, through
    // the link. That is where it lands here; the image is read as recorded too.
    const a2 = { ...alias, symlinks: [...alias.symlinks, { path: '/opt/a2', target: 'alias' }] };
    expect(resolved(a2, { dirs: ['/opt/alias'], files: [file('/opt/a2/x')] })[1]).toEqual([
      false,
      ['/opt/tools/x'],
    ]);
    const viaX = { ...alias, symlinks: [...alias.symlinks, { path: '/x', target: 'opt' }] };
    expect(resolved(viaX, { dirs: ['/x/alias'], files: [file('/opt/alias/x')] })[1]).toEqual([
      false,
      ['/opt/tools/x'],
    ]);
  });

  it('is not exact where an opaque marker reaches a link of its own only through a lower link', () => {
    // Over `c -> b`, the layer's `c/c -> /srv/x` lands at /b/c: its `b/c/.wh..wh..opq` hides /b/c if listed
    // before the link, /srv/x if after.
    const exact = (whiteouts: LayerFacts['whiteouts']) =>
      resolveStack([
        facts({ dirs: [], symlinks: [{ path: '/c', target: 'b' }] }),
        facts({ dirs: [], symlinks: [{ path: '/c/c', target: '/srv/x' }], whiteouts }),
      ]).map((r) => r.exact);
    expect(exact([])).toEqual([true, true]);
    expect(exact([{ path: '/b/c', opaque: true }])).toEqual([true, false]);
  });

  it('is not exact where any kind of member reaches a link of its own only through a lower link', () => {
    // Over `c -> b`, the layer's `c/c -> /srv/x` lands at /b/c: whatever sits under /b/c in the layer was
    // written there or at /srv/x by its order. Each kind of member alone makes the layer not exact (the
    // early pass of landedAroundOwnLinks must see every path the readings place). Late directory entries
    // are left out: they make a layer not exact by themselves (resolveAround).
    const under = '/b/c/m';
    const hit = { iocSetId: 's', ruleId: 'r', offset: 0, hex: null, inElf: null, scannedPath: null };
    const kinds: Record<string, Partial<LayerFacts>> = {
      file: { files: [file(under)] },
      'hardlink target': { files: [{ ...file('/etc/h'), linkTarget: under }] },
      'dpkg status': {
        packages: [
          { name: 'p', version: '1', architecture: null, source: null, status: null, statusFile: under },
        ],
      },
      'md5sums file': { md5sums: [{ package: 'p', infoFile: under, path: '/usr/bin/p', md5: 'x' }] },
      'os-release': { osRelease: [{ path: under, fields: {} }] },
      whiteout: { whiteouts: [{ path: under, opaque: false }] },
      'opaque marker': { whiteouts: [{ path: '/b/c', opaque: true }] },
      'signature hit': { signatureHits: [{ ...hit, path: under }] },
      symlink: { symlinks: [{ path: under, target: 'y' }] },
      directory: { dirs: [under] },
    };
    const exact = (member: Partial<LayerFacts>) =>
      resolveStack([
        facts({ dirs: [], symlinks: [{ path: '/c', target: 'b' }] }),
        facts({
          dirs: [],
          ...member,
          symlinks: [{ path: '/c/c', target: '/srv/x' }, ...(member.symlinks ?? [])],
        }),
      ])[1]?.exact;
    expect(exact({})).toBe(true);
    for (const [kind, member] of Object.entries(kinds)) expect(exact(member), kind).toBe(false);
  });

  it('is not exact over a relative link of its own that climbs out of a folder a lower link moved', () => {
    const exact = (target: string) =>
      resolveStack([
        facts({ dirs: [], symlinks: [{ path: '/opt/alias', target: 'tools/deep' }] }),
        facts({ dirs: [], symlinks: [{ path: '/opt/alias/rel', target }] }),
      ]).map((r) => r.exact);
    expect(exact('../bar')).toEqual([true, false]);
    // Within the folder, or absolute, the target lands alike from either folder.
    expect(exact('bar')).toEqual([true, true]);
    expect(exact('/opt/bar')).toEqual([true, true]);
  });

  it('leaves the facts as they are when no layer below has a link', () => {
    const only = facts({ files: [file('/lib/a')] });
    expect(resolvedFacts([only])[0]).toBe(only);
  });
});

describe('matchImage through lower links', () => {
  const sets = [
    parseIocSet(
      {
        id: 's',
        version: '1',
        title: 't',
        references: [],
        rules: [
          { id: 'sha', kind: 'file-sha256', sha256: 'a'.repeat(64), paths: ['/**/liblzma.so.5*'] },
          {
            id: 'md5',
            kind: 'file-md5',
            md5: 'b'.repeat(32),
            paths: ['/usr/lib/**/liblzma.so.5*', '/lib/**/*.5.6.2'],
          },
        ],
      },
      'test',
    ),
  ];
  const lib = {
    path: '/lib/x86_64-linux-gnu/liblzma.so.5.6.1',
    size: 1,
    mode: 0o644,
    sha256: 'a'.repeat(64),
    md5: 'c'.repeat(32),
  };
  const verdicts = (...layers: Array<Partial<LayerFacts>>) =>
    matchImage(
      layers.map((f, i) => ({ digest: `sha256:${i}`, facts: facts(f) })),
      sets,
    ).map((e) => [e.kind, e.path, e.layerIndex, e.inFinalFs]);

  it('says a backdoor written through a lower link survives a whiteout or a rewrite of the link', () => {
    const real = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
    expect(verdicts(merged, { files: [lib] }, { whiteouts: [{ path: '/lib', opaque: false }] })).toEqual([
      ['file-sha256', real, 1, true],
    ]);
    expect(verdicts(merged, { files: [lib] }, merged)).toEqual([['file-sha256', real, 1, true]]);
    // Whited out under the name it was written with, it is gone however the link fared in between.
    expect(verdicts(merged, { files: [lib] }, { whiteouts: [{ path: lib.path, opaque: false }] })).toEqual([
      ['file-sha256', real, 1, false],
    ]);
    // Whited out at its real path only, it is gone if the link still stood when it was written; had a
    // directory entry (not recorded) replaced the link, it would be at /lib and survive: it leans "survives".
    expect(verdicts(merged, { files: [lib] }, { whiteouts: [{ path: real, opaque: false }] })).toEqual([
      ['file-sha256', real, 1, true],
    ]);
  });

  it('matches an md5sums line at the path dpkg wrote through the link, and a whiteout there removes it', () => {
    const md5sums = [
      {
        package: 'liblzma5',
        infoFile: '/var/lib/dpkg/info/liblzma5:amd64.md5sums',
        md5: 'b'.repeat(32),
        path: '/lib/x86_64-linux-gnu/liblzma.so.5.6.1',
      },
    ];
    const real = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
    // The rule's glob names /usr/lib: the listed /lib path meets it once resolved.
    expect(verdicts({ ...merged, md5sums })).toEqual([['dpkg-md5sums', real, 0, true]]);
    // A glob naming the listed spelling still counts.
    const listedOnly = [{ ...md5sums[0]!, path: '/lib/x86_64-linux-gnu/other.so.5.6.2' }];
    expect(verdicts({ ...merged, md5sums: listedOnly })).toEqual([
      ['dpkg-md5sums', '/usr/lib/x86_64-linux-gnu/other.so.5.6.2', 0, true],
    ]);
    expect(verdicts({ ...merged, md5sums }, { whiteouts: [{ path: real, opaque: false }] })).toEqual([
      ['dpkg-md5sums', real, 0, false],
    ]);
  });

  it('reads a stack whose every layer records its directory entries once, through the links', () => {
    const real = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
    const noDirs = { dirs: [] };
    // Written with no `lib/` entry, the file went through the link: whited out at its real path, it is gone.
    expect(
      verdicts(
        { ...merged, ...noDirs },
        { files: [lib], ...noDirs },
        { whiteouts: [{ path: real, opaque: false }], ...noDirs },
      ),
    ).toEqual([['file-sha256', real, 1, false]]);
    // So it is when the whiteout names it through the link.
    expect(
      verdicts(
        { ...merged, ...noDirs },
        { files: [lib], ...noDirs },
        { whiteouts: [{ path: lib.path, opaque: false }], ...noDirs },
      ),
    ).toEqual([['file-sha256', real, 1, false]]);
    // With its `lib/` entry, the layer replaced the link: the file is at /lib, where a whiteout of the link's
    // target does not reach, and the finding names it there.
    const ownDir = { dirs: ['/lib', '/lib/x86_64-linux-gnu'] };
    expect(
      verdicts(
        { ...merged, ...noDirs },
        { files: [lib], ...ownDir },
        { whiteouts: [{ path: real, opaque: false }], ...noDirs },
      ),
    ).toEqual([['file-sha256', lib.path, 1, true]]);
    // One layer read by an older analyzer (its directory entries unknown) and the stack is read both ways.
    expect(
      verdicts(
        { ...merged, ...noDirs },
        { files: [lib] },
        { whiteouts: [{ path: real, opaque: false }], ...noDirs },
      ),
    ).toEqual([['file-sha256', real, 1, true]]);
  });

  it('reads both ways over a directory entry listed after the member it holds', () => {
    const real = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
    const noDirs = { dirs: [] };
    const late = { files: [lib], dirs: [], lateDirs: ['/lib'] };
    // The file went through the link before `lib/` replaced it: a whiteout of its tar name above reaches
    // the new, empty /lib, not the file, and so does nothing to it.
    expect(
      verdicts({ ...merged, ...noDirs }, late, { whiteouts: [{ path: lib.path, opaque: false }], ...noDirs }),
    ).toEqual([['file-sha256', real, 1, true]]);
    // Whited out at its real path it is gone; but whether the member came before `lib/` or after it (into
    // the new /lib), the facts do not keep: it leans "survives".
    expect(
      verdicts({ ...merged, ...noDirs }, late, { whiteouts: [{ path: real, opaque: false }], ...noDirs }),
    ).toEqual([['file-sha256', real, 1, true]]);
  });

  it('reads a member that reaches a replaced link another way in the new directory too', () => {
    const a2 = {
      dirs: [],
      symlinks: [...merged.symlinks, { path: '/opt/a2', target: '../lib' }],
    };
    // `lib/` then `opt/a2/x86_64-linux-gnu/liblzma.so.5.6.1`: the member is in the new /lib. Removing the
    // link's target and a2 leaves it; it is reported where the member would be had it come first.
    const member = { ...lib, path: '/opt/a2/x86_64-linux-gnu/liblzma.so.5.6.1' };
    const removals = {
      dirs: [],
      whiteouts: [
        { path: '/usr/lib/x86_64-linux-gnu', opaque: false },
        { path: '/opt/a2', opaque: false },
      ],
    };
    expect(verdicts(a2, { dirs: ['/lib'], files: [member] }, removals)).toEqual([
      ['file-sha256', '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1', 1, true],
    ]);
  });

  it('gives a hardlink named through a lower link the hashes of its own layer’s earlier file there', () => {
    const real = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
    const link = { ...file('/opt/link.so'), linkTarget: lib.path };
    const gone = { dirs: [], whiteouts: [{ path: real, opaque: false }] };
    expect(
      verdicts({ ...merged, dirs: [] }, { dirs: [], files: [{ ...lib, path: real }, link] }, gone),
    ).toEqual([
      ['file-sha256', real, 1, false],
      ['file-sha256', '/opt/link.so', 1, true],
    ]);
    // Listed before the file, the link is to the lower layer's (here none): nothing to carry.
    expect(
      verdicts({ ...merged, dirs: [] }, { dirs: [], files: [link, { ...lib, path: real }] }, gone),
    ).toEqual([['file-sha256', real, 1, false]]);
  });

  it('gives such a hardlink the signature hits of that file too, found once the file is removed', () => {
    // A variant no hash names, known by its bytes only: whited out at its own path, it survives at the link.
    const real = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.9';
    const unknown = { ...lib, path: real, sha256: 'd'.repeat(64) };
    const hit = { iocSetId: 's', ruleId: 'sig', offset: 7, hex: '41', inElf: true, scannedPath: real };
    const bySignature = [
      parseIocSet(
        {
          id: 's',
          version: '1',
          title: 't',
          references: [],
          rules: [{ id: 'sig', kind: 'byte-signature', hex: '41', paths: ['/usr/lib/**/liblzma.so.5*'] }],
        },
        'test',
      ),
    ];
    const written = (more: Partial<LayerFacts>) => ({
      dirs: [],
      files: [unknown, { ...file('/opt/link.so'), linkTarget: '/lib/x86_64-linux-gnu/liblzma.so.5.6.9' }],
      signatureHits: [{ ...hit, path: real }],
      ...more,
    });
    const found = (...layers: Array<Partial<LayerFacts>>) =>
      matchImage(
        layers.map((f, i) => ({ digest: `sha256:${i}`, facts: facts(f) })),
        bySignature,
      ).map((e) => [e.kind, e.path, e.value, e.inFinalFs]);
    expect(
      found({ ...merged, dirs: [] }, written({}), { dirs: [], whiteouts: [{ path: real, opaque: false }] }),
    ).toEqual([
      ['byte-signature', real, 'offset=7', false],
      ['byte-signature', '/opt/link.so', 'offset=7', true],
    ]);
    // Read by an older analyzer (no directory entries), the layer is also read as recorded, where the link's
    // target is not its file: the hit goes with the link there too, so the link's removal spelled through
    // `o -> opt` only, which that reading does not see, leaves it surviving, as its hash does.
    const twoLinks = { dirs: [], symlinks: [...merged.symlinks, { path: '/o', target: 'opt' }] };
    const removed = ['/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.9', '/o/link.so'];
    expect(
      found(twoLinks, written({ dirs: undefined }), {
        dirs: [],
        whiteouts: removed.map((path) => ({ path, opaque: false })),
      }),
    ).toEqual([
      ['byte-signature', real, 'offset=7', false],
      ['byte-signature', '/opt/link.so', 'offset=7', true],
    ]);
  });

  it('reads what went through a climbing relative link of its own where an unpacker puts it too', () => {
    // `opt/alias/rel -> ../bar` over a lower `opt/alias -> tools/deep`: the analyzer, from the tar name's
    // folder, recorded `opt/alias/rel/liblzma.so.5.6.1` at /opt/bar; an unpacker wrote /opt/tools/bar.
    const alias = { dirs: [], symlinks: [{ path: '/opt/alias', target: 'tools/deep' }] };
    const upper = {
      dirs: [],
      symlinks: [{ path: '/opt/alias/rel', target: '../bar' }],
      files: [{ ...lib, path: '/opt/bar/liblzma.so.5.6.1' }],
    };
    const cleanThere = { dirs: [], files: [file('/opt/bar/liblzma.so.5.6.1')] };
    expect(verdicts(alias, upper, cleanThere)).toEqual([
      ['file-sha256', '/opt/bar/liblzma.so.5.6.1', 1, true],
    ]);
    // Whited out where the unpacker put it, it is gone in every reading.
    const goneThere = {
      dirs: [],
      whiteouts: [
        { path: '/opt/tools/bar', opaque: false },
        { path: '/opt/bar', opaque: false },
      ],
    };
    expect(verdicts(alias, upper, goneThere)).toEqual([
      ['file-sha256', '/opt/bar/liblzma.so.5.6.1', 1, false],
    ]);
  });

  it('reads the layers above through a link written through such a link, where an unpacker put it', () => {
    // `opt/alias/rel/l2 -> /opt/lib2` went through `rel -> ../bar`: the analyzer put l2 at /opt/bar/l2, an
    // unpacker at /opt/tools/bar/l2. A layer above writes `opt/tools/bar/l2/liblzma.so.5.6.1`, which lands at
    // /opt/lib2; the next whites out /opt/tools/bar/l2, the link only: the library survives.
    const tree = { dirs: [], symlinks: [{ path: '/opt/alias', target: 'tools/deep' }] };
    const links = {
      dirs: [],
      symlinks: [
        { path: '/opt/alias/rel', target: '../bar' },
        { path: '/opt/bar/l2', target: '/opt/lib2' },
      ],
    };
    const through = { dirs: [], files: [{ ...lib, path: '/opt/tools/bar/l2/liblzma.so.5.6.1' }] };
    const linkGone = { dirs: [], whiteouts: [{ path: '/opt/tools/bar/l2', opaque: false }] };
    expect(verdicts(tree, links, through, linkGone)).toEqual([
      ['file-sha256', '/opt/tools/bar/l2/liblzma.so.5.6.1', 2, true],
    ]);
    // The folder it is in, whited out: gone in every reading.
    const libGone = { dirs: [], whiteouts: [{ path: '/opt/lib2', opaque: false }, ...linkGone.whiteouts] };
    expect(verdicts(tree, links, through, libGone)).toEqual([
      ['file-sha256', '/opt/tools/bar/l2/liblzma.so.5.6.1', 2, false],
    ]);
  });

  it('keeps a climbing link that leads above itself where it is, in the placement through it', () => {
    // `opt/alias/rel -> ..` over `opt/alias -> tools/deep`: rel is /opt/tools/deep/rel and leads to
    // /opt/tools, so `opt/alias/rel/l2/x` is /opt/tools/l2/x, which the top layer whites out. The placement
    // through rel moves what went through it, not rel itself, which would lead the layers above elsewhere.
    const gone = verdicts(
      { dirs: [], symlinks: [{ path: '/opt/alias', target: 'tools/deep' }] },
      { dirs: [], symlinks: [{ path: '/opt/alias/rel', target: '..' }] },
      { dirs: [], files: [{ ...lib, path: '/opt/alias/rel/l2/liblzma.so.5.6.1' }] },
      {
        dirs: [],
        whiteouts: [
          { path: '/opt/alias', opaque: false },
          { path: '/opt/tools/l2', opaque: false },
        ],
      },
    );
    expect(gone).toEqual([['file-sha256', '/opt/tools/l2/liblzma.so.5.6.1', 2, false]]);
  });

  it('reads a placement over the links of its own image, not of another image sharing the layer', () => {
    // U's late /opt/alias entry gives it another placement, its own facts object where nothing moved: shared
    // by two images on different bases, it must leave each image's links, not those of the first matched.
    const upper = () => [
      facts({
        dirs: [],
        lateDirs: ['/opt/alias'],
        symlinks: [{ path: '/opt/alias/l', target: '/opt/lib2' }],
      }),
      facts({ dirs: [], files: [{ ...lib, path: '/opt/q/liblzma.so.5.6.1' }] }),
      facts({ dirs: [], whiteouts: [{ path: '/opt/q', opaque: false }] }),
    ];
    const alias = { path: '/opt/alias', target: 'tools' };
    const linkedQ = facts({ dirs: [], symlinks: [alias, { path: '/opt/q', target: 'lib2' }] });
    const plainQ = facts({ dirs: [], symlinks: [alias] });
    const verdictsOf = (base: LayerFacts, above: LayerFacts[]) =>
      matchImage(
        [base, ...above].map((f, i) => ({ digest: `sha256:${i}`, facts: f })),
        sets,
      ).map((e) => [e.path, e.inFinalFs]);
    expect(verdictsOf(plainQ, upper())).toEqual([['/opt/q/liblzma.so.5.6.1', false]]);
    const shared = upper();
    verdictsOf(linkedQ, shared);
    expect(verdictsOf(plainQ, shared)).toEqual([['/opt/q/liblzma.so.5.6.1', false]]);
  });

  it('ends the lower links inside a folder a layer replaced with a symlink', () => {
    // /opt/al -> d; then `opt -> /x` replaces /opt and the link in it; then `opt/` and `opt/al/x` make
    // /opt/al/x a file of its own, not /opt/d/x, so a symlink later left at /opt/d/x does not replace it.
    expect(
      verdicts(
        { dirs: ['/opt/d'], symlinks: [{ path: '/opt/al', target: 'd' }] },
        { dirs: [], symlinks: [{ path: '/opt', target: '/x' }] },
        { dirs: ['/opt'], files: [{ ...lib, path: '/opt/al/liblzma.so.5.6.1' }] },
        { dirs: [], symlinks: [{ path: '/opt/d/liblzma.so.5.6.1', target: 'y' }] },
      ),
    ).toEqual([['file-sha256', '/opt/al/liblzma.so.5.6.1', 2, true]]);
  });

  it('reads a layer that removes a lower link and makes it anew elsewhere as not exact', () => {
    // `.wh.c`, `c/liblzma.so.5.6.1 -> d`, `c -> x` over a lower `c -> b`: the member's link went into a new
    // /c, not through the removed link into /b, so it does not replace /b/liblzma.so.5.6.1. The facts do
    // not say whether the member came before the removal: read both ways, the file survives.
    expect(
      verdicts(
        {
          dirs: ['/b'],
          symlinks: [{ path: '/c', target: 'b' }],
          files: [{ ...lib, path: '/b/liblzma.so.5.6.1' }],
        },
        {
          dirs: [],
          whiteouts: [{ path: '/c', opaque: false }],
          symlinks: [
            { path: '/c/liblzma.so.5.6.1', target: 'd' },
            { path: '/c', target: 'x' },
          ],
        },
      ),
    ).toEqual([['file-sha256', '/b/liblzma.so.5.6.1', 0, true]]);
  });

  it('reads what went through a climbing link of its own that the analyzer followed to the root', () => {
    // `lib/x -> ..` over a lower `lib -> usr/lib`: the analyzer followed it from /lib to /, so `lib/x/c` is
    // recorded at /c, where it would replace the folder holding the backdoor; an unpacker wrote /usr/c.
    expect(
      verdicts(
        { dirs: [], ...merged },
        { dirs: [], files: [{ ...lib, path: '/c/liblzma.so.5.6.1' }] },
        { dirs: [], symlinks: [{ path: '/lib/x', target: '..' }], files: [file('/c')] },
      ),
    ).toEqual([['file-sha256', '/c/liblzma.so.5.6.1', 1, true]]);
  });

  it('reads a chain of climbing links of its own, each followed from where the one before led', () => {
    // Over `opt/alias -> tools/deep`: `opt/alias/rel -> ../bar` (recorded at /opt/alias/rel, really at
    // /opt/tools/deep/rel, leading to /opt/tools/bar, not /opt/bar), then `rel/l2 -> ../lib2` (recorded at
    // /opt/bar/l2, so really leading to /opt/tools/lib2), then the backdoor through it. A whiteout of
    // /opt/lib2 leaves it.
    expect(
      verdicts(
        { dirs: [], symlinks: [{ path: '/opt/alias', target: 'tools/deep' }] },
        {
          dirs: [],
          files: [{ ...lib, path: '/opt/lib2/liblzma.so.5.6.1' }],
          symlinks: [
            { path: '/opt/alias/rel', target: '../bar' },
            { path: '/opt/bar/l2', target: '../lib2' },
          ],
        },
        { dirs: [], whiteouts: [{ path: '/opt/lib2', opaque: false }] },
      ),
    ).toEqual([['file-sha256', '/opt/lib2/liblzma.so.5.6.1', 1, true]]);
  });

  it('reads a link written by its own name where a climbing link of its layer led the analyzer where it is', () => {
    // Over `opt/alias -> tools/deep`: `opt/alias/rel -> ../lib2` really leads to /opt/tools/lib2, so `rel/l2
    // -> /opt/lib3` is at /opt/tools/lib2/l2, and the next layer's member through it lands in /opt/lib3,
    // which `.wh.tools` leaves. The analyzer put `l2` at /opt/lib2/l2, beside the layer's own `opt/lib2 ->
    // ../alias/rel`; moved with it to /opt/tools/lib2, that link would hide `l2` in the placement through
    // `rel`. Where it was written, it is read as standing where recorded too.
    const readOver = (target: string) =>
      verdicts(
        { dirs: [], symlinks: [{ path: '/opt/alias', target: 'tools/deep' }] },
        {
          dirs: [],
          symlinks: [
            { path: '/opt/alias/rel', target: '../lib2' },
            { path: '/opt/lib2/l2', target: '/opt/lib3' },
            { path: '/opt/lib2', target },
          ],
        },
        { dirs: [], files: [{ ...lib, path: '/opt/tools/lib2/l2/liblzma.so.5.6.1' }] },
        { dirs: [], whiteouts: [{ path: '/opt/tools', opaque: false }] },
      );
    const survives = [['file-sha256', '/opt/tools/lib2/l2/liblzma.so.5.6.1', 2, true]];
    // That link climbing too, it is read as one more of the chain (landedThroughOwnLinks, `chained`) ...
    expect(readOver('../alias/rel')).toEqual(survives);
    // ... and not climbing, as one written there by its own name only.
    expect(readOver('/opt/alias/rel')).toEqual(survives);
  });

  it('reads a misfollowed link that the analyzer put where another one led as moved by that one too', () => {
    // Over `opt/alias -> tools/deep` and `opt/lib2 -> ../alias`: `rel -> ../lib2` really leads to
    // /opt/tools/lib2, so `rel/l2 -> ../rel` is at /opt/tools/lib2/l2 and leads to /opt/tools/rel, where the
    // next layer's member through it lands; `.wh.l2` then removes the link, not the member. The analyzer put
    // `l2` at /opt/lib2/l2, under the lower `opt/lib2` link: kept there, no reading found its real place.
    expect(
      verdicts(
        {
          dirs: [],
          symlinks: [
            { path: '/opt/alias', target: 'tools/deep' },
            { path: '/opt/lib2', target: '../alias' },
          ],
        },
        {
          dirs: [],
          symlinks: [
            { path: '/opt/alias/rel', target: '../lib2' },
            { path: '/opt/lib2/l2', target: '../rel' },
          ],
        },
        { dirs: [], files: [{ ...lib, path: '/opt/alias/rel/l2/liblzma.so.5.6.1' }] },
        { dirs: [], whiteouts: [{ path: '/opt/alias/rel/l2', opaque: false }] },
      ),
    ).toEqual([['file-sha256', '/opt/tools/lib2/l2/liblzma.so.5.6.1', 2, true]]);
  });

  it('reads the layers above both ways over a layer that whites out its own symlink', () => {
    // `a -> b` then `.wh.a` in one layer: containerd removes the link, so the next layer's `a/liblzma.so.5.6.1
    // -> z` makes a new /a, and /b/liblzma.so.5.6.1 survives. The facts do not keep the order: it survives.
    expect(
      verdicts(
        { dirs: ['/b'], files: [{ ...lib, path: '/b/liblzma.so.5.6.1' }] },
        { dirs: [], symlinks: [{ path: '/a', target: 'b' }], whiteouts: [{ path: '/a', opaque: false }] },
        { dirs: [], symlinks: [{ path: '/a/liblzma.so.5.6.1', target: 'z' }] },
      ),
    ).toEqual([['file-sha256', '/b/liblzma.so.5.6.1', 0, true]]);
  });

  it('reads the members of a layer that whites out a lower link without the link too', () => {
    // `.wh.c` then `c/liblzma.so.5.6.1/` over a lower `c -> a/b`: containerd removes the link first (and a
    // `.wh.` name sorts before those under it), so the directory is made in a new /c and the backdoor the
    // layer below wrote through the link survives at /a/b. Listed the other way, the directory would replace
    // it: the facts do not keep the order, so it survives. A whiteout under the name alike. (The base, read
    // by an older analyzer, is not exact: read as recorded, the stack would put the backdoor at /c too.)
    const below = [
      { symlinks: [{ path: '/c', target: 'a/b' }] },
      { dirs: [], files: [{ ...lib, path: '/c/liblzma.so.5.6.1' }] },
    ];
    const removed = { path: '/c', opaque: false };
    const real = '/a/b/liblzma.so.5.6.1';
    expect(verdicts(...below, { dirs: ['/c/liblzma.so.5.6.1'], whiteouts: [removed] })).toEqual([
      ['file-sha256', real, 1, true],
    ]);
    expect(
      verdicts(...below, { dirs: [], whiteouts: [removed, { path: '/c/liblzma.so.5.6.1', opaque: false }] }),
    ).toEqual([['file-sha256', real, 1, true]]);
    // Without the link's whiteout the directory entry lands on the backdoor, whatever the order.
    expect(verdicts(...below, { dirs: ['/c/liblzma.so.5.6.1'] })).toEqual([['file-sha256', real, 1, false]]);
  });

  it('reads a member that reaches a link of its own layer only through a lower link both ways', () => {
    // Over a lower `c -> b`: the layer's `c/c -> /srv/x` lands at /b/c, so its later member `b/c/liblzma…`
    // is written to /srv/x, which the next layer's file at /b/c leaves; listed before the link, the member
    // would sit in the folder /b/c that the link then replaces. The analyzer saw neither: read both ways.
    expect(
      verdicts(
        { dirs: [], symlinks: [{ path: '/c', target: 'b' }] },
        {
          dirs: [],
          symlinks: [{ path: '/c/c', target: '/srv/x' }],
          files: [{ ...lib, path: '/b/c/liblzma.so.5.6.1' }],
        },
        { dirs: [], files: [file('/b/c')] },
      ),
    ).toEqual([['file-sha256', '/b/c/liblzma.so.5.6.1', 1, true]]);
    // Over a lower `opt/al -> d`: a whiteout `opt/al/e/.wh.liblzma…` listed before the layer's `opt/d/e -> .`
    // found no /opt/d/e to go through and removed nothing; listed after, it would remove /opt/d/liblzma….
    expect(
      verdicts(
        {
          dirs: [],
          symlinks: [{ path: '/opt/al', target: 'd' }],
          files: [{ ...lib, path: '/opt/d/liblzma.so.5.6.1' }],
        },
        {
          dirs: [],
          whiteouts: [{ path: '/opt/al/e/liblzma.so.5.6.1', opaque: false }],
          symlinks: [{ path: '/opt/d/e', target: '.' }],
        },
      ),
    ).toEqual([['file-sha256', '/opt/d/liblzma.so.5.6.1', 0, true]]);
    // Recorded under its layer's `a/b/e1 -> .`, the member `a/b/e1/c` came before the link, and the lower
    // `a -> .` puts it at /b/e1/c, in the folder the link then replaces: it never reaches /b/c.
    expect(
      verdicts(
        {
          dirs: [],
          symlinks: [{ path: '/c', target: 'b' }],
          files: [{ ...lib, path: '/b/c/liblzma.so.5.6.1' }],
        },
        { dirs: [], symlinks: [{ path: '/a', target: '.' }] },
        { dirs: [], files: [file('/a/b/e1/c')], symlinks: [{ path: '/a/b/e1', target: '.' }] },
      ),
    ).toEqual([['file-sha256', '/b/c/liblzma.so.5.6.1', 0, true]]);
  });

  it('reads the exact layers of a stack that is not exact above them as resolved in every reading', () => {
    // The top layer, read by an analyzer before version 7, leaves the stack not exact. The layers under it
    // are exact: a whiteout at the real path, or a symlink over the folder, removes the backdoor written
    // through `lib -> usr/lib` (read as recorded, neither would seem to touch /lib/x86_64-linux-gnu/…).
    const real = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
    const older = { files: [file('/lib/motd')] };
    const written = [
      { ...merged, dirs: [] },
      { dirs: [], files: [lib] },
    ];
    expect(verdicts(...written, { dirs: [], whiteouts: [{ path: real, opaque: false }] }, older)).toEqual([
      ['file-sha256', real, 1, false],
    ]);
    const relinked = { dirs: [], symlinks: [{ path: '/usr/lib/x86_64-linux-gnu', target: '/opt/clean' }] };
    expect(verdicts(...written, relinked, older)).toEqual([['file-sha256', real, 1, false]]);
    // Above the layer that is not exact, the symlink's path may be misplaced: it replaces nothing there.
    expect(verdicts(...written, older, relinked)).toEqual([['file-sha256', real, 1, true]]);
  });

  it('says a lower file is gone once a layer puts a directory entry at its path', () => {
    const real = { ...lib, path: '/opt/liblzma.so.5.6.1' };
    expect(verdicts({ files: [real] }, { dirs: [real.path] })).toEqual([
      ['file-sha256', real.path, 0, false],
    ]);
    // A directory entry above it is no replacement: a directory over a directory keeps what it holds.
    expect(verdicts({ files: [real] }, { dirs: ['/opt'] })).toEqual([['file-sha256', real.path, 0, true]]);
  });

  it('says a lower file is gone once a layer makes its path a directory holding a whiteout or an opaque marker', () => {
    const real = { ...lib, path: '/opt/liblzma.so.5.6.1' };
    expect(verdicts({ files: [real] }, { whiteouts: [{ path: `${real.path}/x`, opaque: false }] })).toEqual([
      ['file-sha256', real.path, 0, false],
    ]);
    expect(verdicts({ files: [real] }, { whiteouts: [{ path: real.path, opaque: true }] })).toEqual([
      ['file-sha256', real.path, 0, false],
    ]);
  });
});
