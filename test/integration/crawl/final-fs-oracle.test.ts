/**
 * `findings.in_final_fs` checked against a real implementation of OCI layer semantics: every image
 * below is pushed to the real registry, crawled once, then copied back with skopeo and unpacked with
 * umoci, which applies whiteouts and opaque markers per the OCI image spec ("Whiteouts"), including
 * its rule that a whiteout hides lower layers only, wherever it sits in its own layer's archive. A
 * file-sha256 finding must say it survives exactly when umoci's rootfs still holds that layer's copy.
 *
 * Which layer's copy: every planted indicator file gets the mode 0o600 + its layer index (images
 * here have at most 8 layers). The bytes are the same in every layer (they must be, for the hash to
 * match), so the mode is what tells an upper layer's identical copy from the one it replaced: the
 * lower finding must say false, the upper one true. umoci keeps modes, and a hardlink shares its
 * target's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type BuiltImage, buildImage, type LayerEntry } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { DROPPER_CONTENT, DROPPER_SHA256, runTestCrawl } from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';
import { copyToOciLayout, rootfsEntry, rootfsFiles, umociUnpack } from '../../helpers/oci-unpack.js';

const registry = inject('registries').none;
const REPO = 'final-fs-oracle';
const SET_ID = 'final-fs-oracle';
const P = '/opt/tools/dropper.bin';
const MARK = 0o600;

// Rules for one hash: under /opt every path is watched (so a file or symlink replacing a
// directory there is recorded); under /srv only `*.bin` paths are, which leaves the directories
// holding them unwatched.
const IOC_SET = {
  id: SET_ID,
  version: '1',
  title: 'final-fs oracle test indicators',
  references: [],
  rules: [
    { id: 'opt-any', kind: 'file-sha256', sha256: DROPPER_SHA256, paths: ['/opt/**'] },
    { id: 'srv-bin', kind: 'file-sha256', sha256: DROPPER_SHA256, paths: ['/srv/**/*.bin'] },
    // As `dpkg -L` spells it: on a merged-/usr image the file is at /usr/lib (glob.ts, withMergedUsrTwins).
    { id: 'lib-bin', kind: 'file-sha256', sha256: DROPPER_SHA256, paths: ['/lib/tools/*.bin'] },
  ],
};

/** The directory entries above `path` (`/a/b/c` → `/a`, `/a/b`), as an image builder writes them. */
const dirsOf = (path: string): LayerEntry[] => {
  const parts = path.split('/').filter((p) => p !== '');
  return parts.slice(0, -1).map((_, i) => ({ type: 'dir', path: `/${parts.slice(0, i + 1).join('/')}` }));
};
const file = (path: string, content = 'not an indicator\n'): LayerEntry[] => [
  ...dirsOf(path),
  { type: 'file', path, content },
];
const dir = (path: string): LayerEntry[] => [...dirsOf(path), { type: 'dir', path }];
const whiteout = (path: string): LayerEntry[] => [...dirsOf(path), { type: 'whiteout', path }];
const opaque = (path: string): LayerEntry[] => [
  ...(path === '/' ? [] : dir(path)),
  { type: 'opaque', dir: path },
];
const symlink = (path: string, target: string): LayerEntry[] => [
  ...dirsOf(path),
  { type: 'symlink', path, target },
];
const hardlink = (path: string, target: string): LayerEntry[] => [
  ...dirsOf(path),
  { type: 'hardlink', path, target },
];

/** A layer being written: `plant` puts the indicator file at a path, marked with this layer's index. */
interface LayerCtx {
  plant(path: string): LayerEntry[];
  /**
   * Writes the indicator under the tar name `via`, through a symlink of the same layer, so that it
   * lands at `path` (no directory entries: one at the link's name would replace the link).
   */
  plantVia(via: string, path: string): LayerEntry[];
  /** A hardlink at `path` to an indicator file planted earlier in this layer: a copy of its own. */
  plantLink(path: string, target: string): LayerEntry[];
  /**
   * A hardlink at `path` to the indicator file a lower layer (`targetLayer`) planted at `target`: unpacked,
   * the path holds that layer's copy, and the link's layer carries its finding (linked-evidence.ts).
   */
  linkTo(path: string, target: string, targetLayer: number): LayerEntry[];
}

/** `/opt/alias -> tools`: a layer that writes `/opt/alias/x` puts it in `/opt/tools/x` (layer-symlinks.ts). */
const ALIAS = '/opt/alias';
const aliasToTools = (): LayerEntry[] => [...dir('/opt/tools'), ...symlink(ALIAS, 'tools')];
const throughAlias = (l: LayerCtx): LayerEntry[] => [
  ...aliasToTools(),
  ...l.plantVia(`${ALIAS}/dropper.bin`, P),
];

/** The indicator written under `/opt/alias/…` with no directory entry there: it goes through a lower layer's link. */
const throughLowerAlias = (l: LayerCtx): LayerEntry[] => l.plantVia(`${ALIAS}/dropper.bin`, P);
/** The same, and then `alias/` listed, out of the order tar writers keep. */
const throughLowerAliasThenDir = (l: LayerCtx): LayerEntry[] => [
  ...throughLowerAlias(l),
  { type: 'dir', path: ALIAS },
];
/** The same under a folder of its own, `/opt/alias/sub/`, whose entry lands at `/opt/tools/sub`. */
const throughLowerAliasSub = (l: LayerCtx): LayerEntry[] => [
  { type: 'dir', path: `${ALIAS}/sub` },
  ...l.plantVia(`${ALIAS}/sub/dropper.bin`, '/opt/tools/sub/dropper.bin'),
];

interface Case {
  name: string;
  layers: Array<(l: LayerCtx) => LayerEntry[]>;
}

const CASES: Case[] = [
  { name: 'untouched', layers: [(l) => l.plant(P), () => file('/opt/app/run.sh')] },
  // Chosen for hashing by the rule's other merged-/usr spelling, and whited out under it too.
  { name: 'merged-usr-spelling', layers: [(l) => l.plant('/usr/lib/tools/dropper.bin')] },
  {
    name: 'merged-usr-spelling-whited-out',
    layers: [(l) => l.plant('/usr/lib/tools/dropper.bin'), () => whiteout('/usr/lib/tools/dropper.bin')],
  },
  { name: 'whiteout-of-file', layers: [(l) => l.plant(P), () => whiteout(P)] },
  {
    name: 'whiteout-of-ancestor',
    layers: [(l) => l.plant(P), () => file('/etc/motd'), () => whiteout('/opt')],
  },
  {
    name: 'opaque-ancestor-above',
    layers: [(l) => l.plant(P), () => [...opaque('/opt/tools'), ...file('/opt/tools/README')]],
  },
  {
    // The marker comes after the layer's own file in the archive: it still hides lower layers only.
    name: 'own-opaque-marker',
    layers: [(l) => l.plant('/opt/tools/older.bin'), (l) => [...l.plant(P), ...opaque('/opt/tools')]],
  },
  // `./.wh..wh..opq`: the root is a directory too, and its marker hides every lower path.
  { name: 'opaque-root-above', layers: [(l) => l.plant(P), () => [...opaque('/'), ...file('/etc/motd')]] },
  { name: 'overwritten-by-other-content', layers: [(l) => l.plant(P), () => file(P)] },
  { name: 'overwritten-by-identical-content', layers: [(l) => l.plant(P), (l) => l.plant(P)] },
  {
    // The link points at an indicator file: the path itself is a symlink now, not the finding's file.
    name: 'replaced-by-symlink',
    layers: [(l) => l.plant(P), (l) => [...l.plant('/opt/tools/real.bin'), ...symlink(P, 'real.bin')]],
  },
  { name: 'parent-replaced-by-file', layers: [(l) => l.plant(P), () => file('/opt/tools')] },
  {
    name: 'parent-replaced-by-symlink',
    layers: [(l) => [...l.plant(P), ...file('/opt/other/README')], () => symlink('/opt/tools', 'other')],
  },
  // The upper layer's `dropper.bin/` entry clobbers the file; the analyzer records only README below it.
  { name: 'replaced-by-directory', layers: [(l) => l.plant(P), () => file(`${P}/README`)] },
  { name: 'removed-then-re-added', layers: [(l) => l.plant(P), () => whiteout(P), (l) => l.plant(P)] },
  {
    // `/opt/ab` shares a prefix with `/opt/a`; `/opt/c` is one of `/opt/cd`.
    name: 'prefix-siblings',
    layers: [
      (l) => ['/opt/a/x.bin', '/opt/ab/x.bin', '/opt/c/x.bin', '/opt/cd/x.bin'].flatMap(l.plant),
      () => [...whiteout('/opt/ab'), ...whiteout('/opt/c')],
    ],
  },
  {
    name: 'hardlink-above',
    layers: [(l) => l.plant(P), (l) => l.linkTo('/opt/tools/link.bin', P, 0)],
  },
  {
    name: 'hardlink-above-then-original-whited-out',
    layers: [(l) => l.plant(P), (l) => l.linkTo('/opt/tools/link.bin', P, 0), () => whiteout(P)],
  },
  {
    // The path becomes a link to a lower layer's copy of the same bytes: unpacking links it to that
    // file, so the layer-0 indicator is still at P. The link's row (no bytes recorded) does not replace it.
    name: 'hardlinked-over-to-lower-copy',
    layers: [
      (l) => [...l.plant(P), ...l.plant('/opt/backup/dropper.bin')],
      (l) => l.linkTo(P, '/opt/backup/dropper.bin', 0),
    ],
  },
  {
    // Whiting out the link's target above removes that name only: P keeps the shared bytes.
    name: 'hardlinked-over-to-lower-copy-then-target-whited-out',
    layers: [
      (l) => [...l.plant(P), ...l.plant('/opt/backup/dropper.bin')],
      (l) => l.linkTo(P, '/opt/backup/dropper.bin', 0),
      () => whiteout('/opt/backup/dropper.bin'),
    ],
  },
  {
    // The same link to a clean lower file: P holds clean bytes, but hubcrawl cannot tell (KNOWN_GAPS).
    name: 'hardlinked-over-to-lower-clean-file',
    layers: [
      (l) => [...l.plant(P), ...file('/opt/backup/clean.bin')],
      () => hardlink(P, '/opt/backup/clean.bin'),
    ],
  },
  // Written through a symlink its own layer made: it is at the link's target, which is what an upper
  // layer must remove; a whiteout of the link removes the link only.
  { name: 'through-own-symlink-then-link-whited-out', layers: [throughAlias, () => whiteout(ALIAS)] },
  { name: 'through-own-symlink-then-overwritten', layers: [throughAlias, () => file(P)] },
  { name: 'through-own-symlink-then-whited-out', layers: [throughAlias, () => whiteout(P)] },
  {
    // A hardlink naming its target through the link: a copy of the indicator that survives the original.
    name: 'hardlink-through-own-symlink-then-original-whited-out',
    layers: [
      (l) => [
        ...l.plant(P),
        ...symlink(ALIAS, 'tools'),
        ...l.plantLink('/opt/tools/link.bin', `${ALIAS}/dropper.bin`),
      ],
      () => whiteout(P),
    ],
  },
  {
    // A hardlink to a symlink is a symlink: unpackers resolve the target's parent only, so no copy.
    name: 'hardlink-to-own-symlink',
    layers: [
      (l) => [
        ...l.plant(P),
        ...symlink('/opt/tools/alias.bin', 'dropper.bin'),
        ...hardlink('/opt/tools/link.bin', '/opt/tools/alias.bin'),
      ],
    ],
  },
  {
    // OCI: a whiteout applies to lower layers only, wherever it sits in its own layer's archive.
    name: 'dir-whited-out-and-re-created-whiteout-last',
    layers: [
      (l) => [...l.plant(P), ...l.plant('/opt/tools/older.bin')],
      (l) => [...l.plant(P), ...whiteout('/opt/tools')],
    ],
  },
  {
    name: 'dir-whited-out-and-re-created-whiteout-first',
    layers: [
      (l) => [...l.plant(P), ...l.plant('/opt/tools/older.bin')],
      (l) => [...whiteout('/opt/tools'), ...l.plant(P)],
    ],
  },
  {
    name: 'unwatched-parent-replaced-by-file',
    layers: [(l) => l.plant('/srv/tools/dropper.bin'), () => file('/srv/tools')],
  },
  {
    // Recorded as a symlink only: no rule's glob chooses `/srv/tools`.
    name: 'unwatched-parent-replaced-by-symlink',
    layers: [
      (l) => [...l.plant('/srv/tools/dropper.bin'), ...file('/srv/other/README')],
      () => symlink('/srv/tools', 'other'),
    ],
  },
  { name: 'replaced-by-empty-directory', layers: [(l) => l.plant(P), () => dir(P)] },
  // Written through a symlink a LOWER layer made (merged-/usr's `lib -> usr/lib`): the analyzer, reading
  // one layer, records the tar name; matching resolves it through the layers below (lower-links.ts).
  // Removing or rewriting the link above removes the link, never the file at its target.
  { name: 'through-lower-symlink', layers: [aliasToTools, throughLowerAlias] },
  {
    name: 'through-lower-symlink-then-link-whited-out',
    layers: [aliasToTools, throughLowerAlias, () => whiteout(ALIAS)],
  },
  {
    name: 'through-lower-symlink-then-same-link-again',
    layers: [aliasToTools, throughLowerAlias, () => symlink(ALIAS, 'tools')],
  },
  {
    name: 'through-lower-symlink-then-link-replaced-by-file',
    layers: [aliasToTools, throughLowerAlias, () => file(ALIAS)],
  },
  {
    name: 'through-lower-symlink-then-whited-out',
    layers: [aliasToTools, throughLowerAlias, () => whiteout(P)],
  },
  {
    name: 'through-lower-symlink-then-overwritten',
    layers: [aliasToTools, throughLowerAlias, () => file(P)],
  },
  {
    // Removals spelled through the lower link reach the file at its target.
    name: 'whited-out-through-lower-symlink',
    layers: [
      (l) => [...aliasToTools(), ...l.plant(P)],
      () => [{ type: 'whiteout', path: `${ALIAS}/dropper.bin` }],
    ],
  },
  {
    name: 'opaque-through-lower-symlink',
    layers: [(l) => [...aliasToTools(), ...l.plant(P)], () => [{ type: 'opaque', dir: ALIAS }]],
  },
  {
    // A hardlink naming its target through a lower layer's link is a copy of the file at the link's target.
    name: 'hardlink-through-lower-symlink-then-original-whited-out',
    layers: [
      (l) => [...aliasToTools(), ...l.plant(P)],
      (l) => l.linkTo('/opt/link.bin', `${ALIAS}/dropper.bin`, 0),
      () => whiteout(P),
    ],
  },
  // A layer written with its directory entries (as `tar -c` of a tree writes it): the `alias/` entry
  // replaces the lower link, so the file is at /opt/alias/dropper.bin, where no link leads (layer_dirs).
  {
    name: 'directory-entry-over-lower-symlink',
    layers: [aliasToTools, (l) => l.plant(`${ALIAS}/dropper.bin`)],
  },
  {
    name: 'directory-entry-over-lower-symlink-then-target-whited-out',
    layers: [aliasToTools, (l) => l.plant(`${ALIAS}/dropper.bin`), () => whiteout(P)],
  },
  {
    name: 'directory-entry-over-lower-symlink-then-whited-out-there',
    layers: [aliasToTools, (l) => l.plant(`${ALIAS}/dropper.bin`), () => whiteout(`${ALIAS}/dropper.bin`)],
  },
  // `alias/` listed after the member: the member went through the link, then the link became a directory.
  {
    name: 'directory-entry-after-member-over-lower-symlink',
    layers: [aliasToTools, throughLowerAliasThenDir],
  },
  {
    name: 'directory-entry-after-member-over-lower-symlink-then-whited-out-there',
    layers: [aliasToTools, throughLowerAliasThenDir, () => whiteout(`${ALIAS}/dropper.bin`)],
  },
  {
    name: 'directory-entry-after-member-over-lower-symlink-then-target-whited-out',
    layers: [aliasToTools, throughLowerAliasThenDir, () => whiteout(P)],
  },
  // The member reaches the link another way, or the entry is spelled another way, and the member comes
  // first: it went through the link, which the entry then replaced (lower-links.ts, orderMatters).
  {
    name: 'member-through-another-lower-link-then-directory-entry',
    layers: [
      () => [...aliasToTools(), ...symlink('/opt/a2', 'alias')],
      (l) => [...l.plantVia('/opt/a2/dropper.bin', P), { type: 'dir', path: ALIAS }],
      () => file(`${ALIAS}/dropper.bin`),
    ],
  },
  {
    name: 'member-then-directory-entry-spelled-through-lower-link',
    layers: [
      () => [...aliasToTools(), ...symlink('/x', 'opt')],
      (l) => [...l.plantVia(`${ALIAS}/dropper.bin`, P), { type: 'dir', path: '/x/alias' }],
      () => whiteout(ALIAS),
    ],
  },
  {
    name: 'hardlink-through-lower-link-then-directory-entry',
    layers: [
      (l) => [...aliasToTools(), ...l.plant(P)],
      (l) => [...l.linkTo('/opt/link.bin', `${ALIAS}/dropper.bin`, 0), { type: 'dir', path: ALIAS }],
      () => whiteout(P),
    ],
  },
  // The same listed after the entry: in the directory the entry made (matchImage's third reading).
  {
    name: 'directory-entry-then-member-through-another-lower-link',
    layers: [
      () => [...aliasToTools(), ...symlink('/opt/a2', 'alias')],
      (l) => [{ type: 'dir', path: ALIAS }, ...l.plantVia('/opt/a2/dropper.bin', `${ALIAS}/dropper.bin`)],
      () => [...whiteout('/opt/tools'), ...whiteout('/opt/a2')],
    ],
  },
  {
    name: 'late-directory-entry-then-member-through-another-lower-link',
    layers: [
      () => [...aliasToTools(), ...symlink('/opt/a2', 'alias')],
      (l) => [
        { type: 'file', path: `${ALIAS}/readme`, content: 'x\n' },
        { type: 'dir', path: ALIAS },
        ...l.plantVia('/opt/a2/dropper.bin', `${ALIAS}/dropper.bin`),
      ],
      () => [...whiteout('/opt/tools'), ...whiteout('/opt/a2')],
    ],
  },
  {
    name: 'directory-entries-in-tar-order-then-member-through-another-lower-link',
    layers: [
      () => [...aliasToTools(), ...symlink('/opt/a2', 'alias')],
      (l) => [
        { type: 'dir', path: '/opt/a2/sub' },
        { type: 'dir', path: ALIAS },
        ...l.plantVia('/opt/a2/sub/dropper.bin', `${ALIAS}/sub/dropper.bin`),
      ],
      () => [...whiteout('/opt/tools'), ...whiteout('/opt/a2')],
    ],
  },
  {
    // A hardlink to its own layer's file, named through a lower link: a copy with that file's bytes.
    name: 'hardlink-to-own-file-through-lower-link',
    layers: [
      aliasToTools,
      (l) => [...l.plant(P), ...l.plantLink('/opt/link.bin', `${ALIAS}/dropper.bin`)],
      () => whiteout(P),
    ],
  },
  // A hardlink is to the latest entry at its target: here the indicator, after a clean copy; then the reverse.
  {
    name: 'hardlink-through-lower-link-to-own-file-written-twice-clean-first',
    layers: [
      aliasToTools,
      (l) => [...file(P), ...l.plant(P), ...l.plantLink('/opt/link.bin', `${ALIAS}/dropper.bin`)],
      () => whiteout(P),
    ],
  },
  {
    name: 'hardlink-through-lower-link-to-own-file-written-twice-indicator-first',
    layers: [
      aliasToTools,
      (l) => [...l.plant(P), ...file(P), ...hardlink('/opt/link.bin', `${ALIAS}/dropper.bin`)],
      () => whiteout(P),
    ],
  },
  {
    // The layer whites out a lower link, then hardlinks a file under its path to its own file.
    name: 'own-whiteout-of-lower-link-then-hardlink-under-it',
    layers: [
      () => [...aliasToTools(), ...dir('/opt/b'), ...symlink('/opt/a', 'b')],
      (l) => [
        ...l.plant(P),
        { type: 'whiteout', path: '/opt/a' },
        ...l.plantLink('/opt/a/link.bin', `${ALIAS}/dropper.bin`),
      ],
      () => [...whiteout(P), ...whiteout('/opt/b/link.bin')],
    ],
  },
  {
    // One layer's other placement of a file must not be read with another layer's guess at a removal.
    name: 'other-placements-of-two-layers-read-apart',
    layers: [
      () => [
        ...dir('/opt/tools/deep'),
        ...dir('/opt/x'),
        ...symlink('/opt/m', 'x'),
        ...symlink('/opt/m2', 'm'),
        ...symlink(ALIAS, 'tools/deep'),
      ],
      (l) => [{ type: 'dir', path: '/opt/m' }, ...l.plantVia('/opt/m2/dropper.bin', '/opt/m/dropper.bin')],
      () => [
        { type: 'symlink', path: `${ALIAS}/rel`, target: '../../m' },
        { type: 'whiteout', path: '/m/dropper.bin' },
        { type: 'whiteout', path: '/opt/x/dropper.bin' },
        { type: 'whiteout', path: '/opt/m2' },
      ],
    ],
  },
  {
    // A link written through a climbing relative link, used by a layer above.
    name: 'link-through-climbing-relative-link-used-above',
    layers: [
      () => [
        ...dir('/opt/tools/deep'),
        ...dir('/opt/tools/bar'),
        ...dir('/opt/lib2'),
        ...symlink(ALIAS, 'tools/deep'),
      ],
      () => [
        { type: 'symlink', path: `${ALIAS}/rel`, target: '../bar' },
        { type: 'symlink', path: `${ALIAS}/rel/l2`, target: '/opt/lib2' },
      ],
      (l) => l.plantVia('/opt/tools/bar/l2/dropper.bin', '/opt/lib2/dropper.bin'),
      () => whiteout('/opt/tools/bar/l2'),
    ],
  },
  {
    // The member went through the lower link into /opt/tools; the layer's own link then replaced that folder.
    name: 'member-through-lower-link-then-own-link-over-its-folder',
    layers: [
      () => [...aliasToTools(), ...dir('/opt/other')],
      (l) => [
        ...l.plantVia(`${ALIAS}/dropper.bin`, P),
        { type: 'symlink', path: '/opt/tools', target: 'other' },
      ],
    ],
  },
  {
    // The analyzer follows `../bar` from the tar name's folder, /opt/alias, not from /opt/tools/deep.
    name: 'relative-own-link-under-lower-link',
    layers: [
      () => [...dir('/opt/tools/deep'), ...dir('/opt/tools/bar'), ...symlink(ALIAS, 'tools/deep')],
      (l) => [
        { type: 'symlink', path: `${ALIAS}/rel`, target: '../bar' },
        ...l.plantVia(`${ALIAS}/rel/dropper.bin`, '/opt/tools/bar/dropper.bin'),
      ],
      () => file('/opt/bar/dropper.bin'),
    ],
  },
  // A directory entry below the link (`alias/sub/`, no `alias/`) is a new folder at the link's target.
  { name: 'directory-entry-below-lower-symlink', layers: [aliasToTools, throughLowerAliasSub] },
  {
    name: 'directory-entry-below-lower-symlink-then-target-whited-out',
    layers: [aliasToTools, throughLowerAliasSub, () => whiteout('/opt/tools/sub/dropper.bin')],
  },
  {
    // The whiteout written with its parent directory entries: it hits the new empty directory only.
    name: 'whiteout-with-directory-entries-through-lower-symlink',
    layers: [(l) => [...aliasToTools(), ...l.plant(P)], () => whiteout(`${ALIAS}/dropper.bin`)],
  },
  // A whiteout or an opaque marker inside the path makes it a directory: the lower file there is gone.
  {
    name: 'replaced-by-directory-holding-a-whiteout',
    layers: [(l) => l.plant(P), () => whiteout(`${P}/old`)],
  },
  { name: 'replaced-by-directory-with-opaque-marker', layers: [(l) => l.plant(P), () => opaque(P)] },
];

/**
 * Cases where hubcrawl and umoci disagree because the analyzer never records what replaced the path
 * (src/analyzer/layer-stream.ts, FactCollector; docs/schema.md, "Which files layer_files holds"), so
 * no image-level rule can see it. Each is checked below with `it.fails`: when the analyzer learns to
 * record it, that test fails and the case moves into the agreeing table.
 */
const KNOWN_GAPS: Record<string, string> = {
  // `/srv/tools` matches no rule glob, `/srv/**/*.bin` needs a `.bin` name. (A symlink there is known: every
  // symlink is kept, analyzer version 6, and in an exact stack it replaces the folder, matcher version 7.)
  'unwatched-parent-replaced-by-file': 'a file outside every rule glob is not recorded',
  // The link's bytes (the lower target's) are not read: it may hold the indicator, so it is taken to
  // replace nothing (docs/schema.md, "Hardlinks"). The price of leaning "survives" over hiding a backdoor.
  'hardlinked-over-to-lower-clean-file': 'a hardlink to a lower layer’s file is taken to replace nothing',
  // Whether a member came before a directory entry above it is not kept (LayerFacts.lateDirs): the image
  // is read both ways (image-view.ts, matchImage), and this removal reaches the file through one only.
  // The analyzer follows an own relative link from its tar name's folder (lower-links.ts, head): the file
  // is recorded at /opt/bar, where a clean file replaces it, while it is at /opt/tools/bar. Matching also
  // reads it there (landedThroughOwnLinks), so it survives, named at the analyzer's path.
  'relative-own-link-under-lower-link':
    'a relative link under a lower link is followed from its tar name’s folder: survives, at the wrong path',
  // A member reaching a link a directory entry replaced by another spelling: which came first is not kept.
  // The finding names the link's old target and says the file survives (every reading must say "gone").
  'directory-entry-then-member-through-another-lower-link':
    'member and entry order not kept: survives, named at the link’s old target',
  'late-directory-entry-then-member-through-another-lower-link':
    'member and entry order not kept: survives, named at the link’s old target',
  'directory-entries-in-tar-order-then-member-through-another-lower-link':
    'member and entry order not kept: survives, named at the link’s old target',
  // The layer's own link replaced the folder its member went into: the member is gone; matching places it
  // through the new link (lower-links.ts, resolveLayer) and says it survives.
  'member-through-lower-link-then-own-link-over-its-folder':
    'an own link made after the member is taken to have been there before it: survives, at the link’s target',
  // Removals and members of one layer whose order the facts do not keep: read leaning "survives", named
  // where the main reading places them.
  'own-whiteout-of-lower-link-then-hardlink-under-it':
    'a whiteout of a lower link before a member under it: survives, named through the old link',
  'other-placements-of-two-layers-read-apart':
    'member and entry order not kept: survives, named at the link’s old target',
  // A link made through a climbing relative link lands, in the main reading, where the analyzer put it
  // (lower-links.ts, head): what the layers above write through it is named there, though read as surviving.
  'link-through-climbing-relative-link-used-above':
    'a link written through a climbing relative link is kept at the analyzer’s path: survives, named there',
  'directory-entry-after-member-over-lower-symlink-then-target-whited-out':
    'a directory listed after what it holds: the order of its layer’s members is not kept',
};

/** Keeps the first entry of each directory, as a tar writer lists a directory once per layer. */
const onceEachDir = (entries: LayerEntry[]): LayerEntry[] => {
  const seen = new Set<string>();
  return entries.filter((e) => e.type !== 'dir' || (!seen.has(e.path) && seen.add(e.path)));
};

/** One row of the compared table: a finding (or a planted copy) and whether it is in the final fs. */
interface Row {
  image: string;
  path: string;
  layer: number;
  inFinalFs?: boolean;
  /** The layer whose planted copy the path holds, when not `layer` (a hardlink to a lower layer's file). */
  bytesLayer?: number;
}

const line = (r: Row): string =>
  `${r.image.padEnd(44)} ${r.path.padEnd(24)} layer ${r.layer}${r.inFinalFs === undefined ? '' : `  in_final_fs=${r.inFinalFs}`}`;

const work = mkdtempSync(join(tmpdir(), 'hubcrawl-final-fs-'));
const images = new Map<string, BuiltImage>();
/** Every planted copy: the finding each should give. */
const planted: Row[] = [];
/** Findings of the test set, as the dataset holds them. */
let findings: Row[];
/** Each image's rootfs as umoci unpacked it. */
const rootfs = new Map<string, string>();

beforeAll(async () => {
  for (const c of CASES) {
    const layers = c.layers.map((build, index) => ({
      entries: onceEachDir(
        build({
          plant: (path) => {
            planted.push({ image: c.name, path, layer: index });
            return [...dirsOf(path), { type: 'file', path, content: DROPPER_CONTENT, mode: MARK + index }];
          },
          plantVia: (via, path) => {
            planted.push({ image: c.name, path, layer: index });
            return [{ type: 'file', path: via, content: DROPPER_CONTENT, mode: MARK + index }];
          },
          plantLink: (path, target) => {
            planted.push({ image: c.name, path, layer: index });
            return [{ type: 'hardlink', path, target }];
          },
          linkTo: (path, target, targetLayer) => {
            planted.push({ image: c.name, path, layer: index, bytesLayer: targetLayer });
            return hardlink(path, target);
          },
        }),
      ),
    }));
    const image = await buildImage({ layers });
    images.set(c.name, image);
    await pushImage(registry, `${REPO}/${c.name}`, '1', image);
  }
  const iocFile = join(work, 'iocs.json');
  writeFileSync(iocFile, JSON.stringify(IOC_SET));
  const dbPath = join(work, 'crawl.sqlite');
  const outcome = await runTestCrawl(dbPath, iocFile, {
    seeds: { images: CASES.map((c) => `${registry.host}/${REPO}/${c.name}:1`) },
  });
  expect(outcome.status).toBe('completed');

  const nameOf = new Map([...images].map(([name, img]) => [img.digest, name]));
  findings = queryDataset<{
    image_digest: string;
    path: string;
    layer_position: number;
    in_final_fs: number;
  }>(
    dbPath,
    // Both rules share the dropper's hash, and a hashed copy is evidence for each wherever it sits
    // (docs/iocs.md): one row per copy and verdict, so two rules disagreeing on a copy would show twice.
    `SELECT DISTINCT image_digest, path, layer_position, in_final_fs FROM findings
      WHERE ioc_set_id = ? AND evidence_kind = 'file-sha256'`,
    SET_ID,
  ).map((f) => ({
    image: nameOf.get(f.image_digest) ?? f.image_digest,
    path: f.path,
    layer: f.layer_position,
    inFinalFs: f.in_final_fs === 1,
  }));

  const layout = join(work, 'layout');
  for (const c of CASES) {
    copyToOciLayout(`${registry.host}/${REPO}/${c.name}:1`, layout, c.name);
    rootfs.set(c.name, umociUnpack(layout, c.name, join(work, `bundle-${c.name}`)));
  }
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The layer whose planted copy a finding's path holds: its own, or a lower one's for a hardlink to it. */
function bytesLayerOf(r: Row): number {
  const p = planted.find((q) => q.image === r.image && q.path === r.path && q.layer === r.layer);
  return p?.bytesLayer ?? r.layer;
}

/** The oracle: that layer's copy is still a regular file at the path, with the indicator's bytes. */
function survives(r: Row): boolean {
  const e = rootfsEntry(rootfs.get(r.image)!, r.path);
  return e.kind === 'file' && e.sha256 === DROPPER_SHA256 && e.mode === MARK + bytesLayerOf(r);
}

const sorted = (rows: Row[]): string[] => rows.map(line).sort();
const withOracle = (rows: Row[]): Row[] => rows.map((r) => ({ ...r, inFinalFs: survives(r) }));
const agreeing = (rows: Row[]): Row[] => rows.filter((r) => !(r.image in KNOWN_GAPS));
/** A copy in the rootfs: the path and the layer whose bytes it holds. */
const copyKey = (image: string, path: string, bytesLayer: number): string => `${image} ${path} ${bytesLayer}`;

/**
 * For `images`: the indicator copies umoci's rootfs holds that no finding says survive, and the findings
 * that say so of a copy the rootfs does not hold.
 */
function survivalMismatches(images: readonly string[]): { unreported: string[]; notInRootfs: string[] } {
  const wanted = new Set(images);
  const surviving = findings.filter((f) => f.inFinalFs && wanted.has(f.image));
  const inRootfs: Row[] = [];
  for (const image of images) {
    for (const f of rootfsFiles(rootfs.get(image)!)) {
      if (f.sha256 === DROPPER_SHA256) inRootfs.push({ image, path: f.path, layer: f.mode - MARK });
    }
  }
  const reported = new Set(surviving.map((r) => copyKey(r.image, r.path, bytesLayerOf(r))));
  const present = new Set(inRootfs.map((r) => copyKey(r.image, r.path, r.layer)));
  return {
    unreported: sorted(inRootfs.filter((r) => !reported.has(copyKey(r.image, r.path, r.layer)))),
    notInRootfs: sorted(surviving.filter((r) => !present.has(copyKey(r.image, r.path, bytesLayerOf(r))))),
  };
}

describe('in_final_fs against umoci unpack', () => {
  it('every planted indicator copy gives exactly one file-sha256 finding', () => {
    // A known gap may name another path than the planted one (KNOWN_GAPS): its own test below.
    expect(sorted(agreeing(findings).map(({ inFinalFs: _, ...r }) => r))).toEqual(sorted(agreeing(planted)));
  });

  it('the agreeing cases exercise both answers: umoci keeps some planted copies and removes others', () => {
    const verdicts = new Set(withOracle(agreeing(planted)).map((r) => r.inFinalFs));
    expect([...verdicts].sort()).toEqual([false, true]);
  });

  it('every finding says in_final_fs exactly when umoci’s rootfs still holds that layer’s copy', () => {
    expect(sorted(agreeing(findings))).toEqual(sorted(withOracle(agreeing(findings))));
  });

  it('every indicator file in umoci’s rootfs has a finding that says it survives, hardlinks to lower layers included', () => {
    const images = [...rootfs.keys()].filter((image) => !(image in KNOWN_GAPS));
    expect(survivalMismatches(images)).toEqual({ unreported: [], notInRootfs: [] });
  });

  it('the known gaps lean "survives": every copy umoci keeps has a finding of its layer that says so', () => {
    const unvouched: string[] = [];
    for (const image of Object.keys(KNOWN_GAPS)) {
      for (const f of rootfsFiles(rootfs.get(image)!)) {
        if (f.sha256 !== DROPPER_SHA256) continue;
        const layer = f.mode - MARK;
        const vouched = findings.some((r) => r.image === image && r.inFinalFs && bytesLayerOf(r) === layer);
        if (!vouched) unvouched.push(`${image} ${f.path} layer ${layer}`);
      }
    }
    expect(unvouched).toEqual([]);
  });

  for (const [image, why] of Object.entries(KNOWN_GAPS)) {
    // Today hubcrawl disagrees with umoci's rootfs on this image (see KNOWN_GAPS): a finding's verdict at
    // its path, or a surviving copy reported nowhere (a finding at another path). The first test
    // guarantees the finding exists, so this fails only on that disagreement.
    it.fails(`${image}: the finding agrees with umoci’s rootfs (known gap: ${why})`, () => {
      const rows = findings.filter((f) => f.image === image);
      expect({ rows: sorted(rows), ...survivalMismatches([image]) }).toEqual({
        rows: sorted(withOracle(rows)),
        unreported: [],
        notInRootfs: [],
      });
    });
  }
});
