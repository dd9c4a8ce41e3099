/**
 * hubcrawl's tar reader against Go's archive/tar, the reader Docker, containerd and Podman apply
 * layers with, through `umoci unpack` (which uses it too). Each layer is crafted byte by byte so
 * that readers disagree on it (src/analyzer/test-fixtures/crafted-tar.ts): combined pax and GNU
 * records, empty pax values, GNU.sparse.name without sparse records, old-GNU and star prefixes,
 * names that are not UTF-8, an archive without its end-of-archive marker, a NUL-typeflag member
 * named like a directory (which has no data), sparse records of a version Go does not know, pax
 * headers that together pass the per-record limit. For each, the files and
 * symlinks hubcrawl reads must be the ones umoci writes, under the same names; for the images of
 * two layers, a finding survives exactly when umoci's rootfs still holds the backdoor there.
 * umoci refuses pax global headers ("unknown typeflag"), so `g` is left to the unit tests.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileRules } from '../../../src/analyzer/iocs/compile.js';
import { matchImage } from '../../../src/analyzer/iocs/image-view.js';
import { parseIocSet } from '../../../src/analyzer/iocs/load.js';
import { analyzeLayer } from '../../../src/analyzer/layer-stream.js';
import { normalizeTarPath, whiteoutOf } from '../../../src/analyzer/paths.js';
import { decodeTarName } from '../../../src/analyzer/tar-name.js';
import {
  CLEAN,
  EVIL,
  file,
  gnuLong,
  HIDDEN_BACKDOOR_LAYERS,
  header,
  LIB,
  member,
  nulMember,
  pax,
  readEntries,
  tarOf,
  WRITTEN_ELSEWHERE_LAYERS,
} from '../../../src/analyzer/test-fixtures/crafted-tar.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const EVIL_SHA = sha256(EVIL);

/** What a path holds: a file's sha256 or a symlink's target (`->target`). */
type Tree = Map<string, string>;

/** The files and symlinks umoci writes for `layers` applied in order, by path as decodeTarName spells it. */
function umociTree(layers: Buffer[]): Tree {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-go-tar-'));
  try {
    const umoci = (...args: string[]) => {
      const r = spawnSync('umoci', args, { cwd: dir, encoding: 'utf8' });
      if (r.error !== undefined)
        throw new Error(`umoci could not run (apt-get install umoci): ${r.error.message}`);
      if (r.status !== 0) throw new Error(`umoci ${args.join(' ')} failed: ${r.stderr}`);
    };
    umoci('init', '--layout', 'oci');
    umoci('new', '--image', 'oci:t');
    layers.forEach((layer, i) => {
      writeFileSync(join(dir, `${i}.tar`), layer);
      umoci('raw', 'add-layer', '--image', 'oci:t', `${i}.tar`);
    });
    umoci('unpack', '--rootless', '--image', 'oci:t', 'bundle');
    const tree: Tree = new Map();
    walk(Buffer.from(join(dir, 'bundle', 'rootfs')), Buffer.alloc(0), tree);
    return tree;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Walks with names as bytes, so a name that is not UTF-8 reaches decodeTarName as written. */
function walk(full: Buffer, rel: Buffer, tree: Tree): void {
  for (const d of readdirSync(full, { encoding: 'buffer', withFileTypes: true })) {
    const childFull = Buffer.concat([full, Buffer.from('/'), d.name]);
    const childRel = Buffer.concat([rel, Buffer.from('/'), d.name]);
    if (d.isDirectory()) walk(childFull, childRel, tree);
    else if (d.isFile()) tree.set(decodeTarName(childRel), sha256(readFileSync(childFull)));
    else if (d.isSymbolicLink()) {
      tree.set(
        decodeTarName(childRel),
        `->${decodeTarName(readlinkSync(childFull, { encoding: 'buffer' }))}`,
      );
    }
  }
}

/** The files and symlinks hubcrawl's tar reader sees in one layer; a later member at a path wins. */
function hubcrawlTree(layer: Buffer): Tree {
  const tree: Tree = new Map();
  for (const { entry, data } of readEntries(layer)) {
    const path = normalizeTarPath(entry.name);
    if (whiteoutOf(path) !== null) continue;
    if (entry.type === 'file') tree.set(path, sha256(data));
    else if (entry.type === 'symlink') tree.set(path, `->${entry.linkname}`);
  }
  return tree;
}

const gnuAt345 = (name: string, at345: string, data: Buffer) =>
  tarOf(member({ name, format: 'gnu', at345 }, data));
const lib = (dir: number, base = 'liblzma.so.5.6.1') =>
  Buffer.concat([Buffer.from('opt/lib'), Buffer.of(dir), Buffer.from(`/${base}`)]);
const symlink = (name: string, linkname: string) => header({ name, typeflag: '2', linkname });
const base = tarOf(file(LIB, EVIL));
const layers: Record<string, Buffer> = {
  ...HIDDEN_BACKDOOR_LAYERS,
  ...WRITTEN_ELSEWHERE_LAYERS,
  't12 old-GNU name and prefix fallback': gnuAt345('liblzma.so.5.6.1', 'usr/lib/x86_64-linux-gnu', EVIL),
  't12b old-GNU prefix fallback, empty name': gnuAt345('', LIB, EVIL),
  'old-GNU times Go parses': gnuAt345('liblzma.so.5.6.1', '14572000000\x001\x00garbage', EVIL),
  't14b \\xff and \\xfe directories': tarOf(file(lib(0xff), EVIL), file(lib(0xfe), CLEAN)),
  'star prefix of 131 bytes': tarOf(
    member({ name: 'x', format: 'star', at345: `opt/${'d'.repeat(127)}${'0'.repeat(24)}` }, EVIL),
  ),
  'long link target over pax linkpath': tarOf(
    gnuLong('gnu-target', 'K'),
    pax({ linkpath: 'pax-target' }),
    symlink('usr/lib/x86_64-linux-gnu/liblzma.so.5', 'ustar-target'),
  ),
  'empty pax linkpath': tarOf(pax({ linkpath: '' }), symlink('l', 'ustar-target')),
  "an end inside the last member's padding": file(LIB, EVIL).subarray(0, 512 + EVIL.length + 10),
  "r1 NUL member named 'opt/x/' (a directory) over a whole member": tarOf(
    nulMember('opt/x/', file(LIB, EVIL)),
    file('opt/after', 'after'),
  ),
  'NUL member without the slash (a regular file)': tarOf(nulMember('opt/plain', file(LIB, EVIL))),
};

describe("hubcrawl's names for crafted layers are the names Go's archive/tar writes (umoci unpack)", () => {
  for (const [what, layer] of Object.entries(layers)) {
    it(what, () => {
      const go = umociTree([layer]);
      expect(go.size).toBeGreaterThan(0);
      expect(hubcrawlTree(layer)).toEqual(go);
    });
  }

  it('is not agreement by accident: Go writes the backdoor at the library path in these crafted layers', () => {
    for (const what of [
      ...Object.keys(HIDDEN_BACKDOOR_LAYERS),
      't12b old-GNU prefix fallback, empty name',
      "r1 NUL member named 'opt/x/' (a directory) over a whole member",
    ]) {
      expect(umociTree([layers[what] as Buffer]).get(`/${LIB}`), what).toBe(EVIL_SHA);
    }
  });
});

describe("a finding survives in hubcrawl exactly where the backdoor is still in umoci's rootfs", () => {
  const set = parseIocSet(
    {
      id: 'go-tar-oracle',
      version: '1',
      title: 'crafted tar names',
      references: ['https://example.org/go-tar-oracle'],
      rules: [{ id: 'evil', kind: 'file-sha256', sha256: EVIL_SHA, paths: ['/**/liblzma.so.5*'] }],
    },
    'go-tar-oracle.test.ts',
  );
  const rules = compileRules([set]);
  const analyze = (tar: Buffer) =>
    analyzeLayer(
      (async function* () {
        yield tar;
      })(),
      { rules },
    );

  const images: Record<string, Buffer[]> = {
    ...Object.fromEntries(
      Object.entries(WRITTEN_ELSEWHERE_LAYERS).map(([what, upper]) => [
        `${what}, as the upper layer`,
        [base, upper],
      ]),
    ),
    't10d upper: whiteout path in a replaced x': [
      base,
      tarOf(
        pax({ path: 'usr/lib/x86_64-linux-gnu/.wh.liblzma.so.5.6.1' }),
        pax({ mtime: '1' }),
        file('opt/u', 'x'),
      ),
    ],
    't12c upper: old-GNU prefix fallback over the library': [
      base,
      gnuAt345('liblzma.so.5.6.1', 'usr/lib/x86_64-linux-gnu', CLEAN),
    ],
    't14 upper: whiteout in a \\xfe directory': [
      tarOf(file(lib(0xff), EVIL)),
      tarOf(header({ name: lib(0xfe, '.wh.liblzma.so.5.6.1') })),
    ],
    "r1b upper: a whiteout inside a NUL member named 'opt/x/'": [
      base,
      tarOf(nulMember('opt/x/', header({ name: 'usr/lib/x86_64-linux-gnu/.wh.liblzma.so.5.6.1' }))),
    ],
    // umoci compresses the layer itself (gzip), so this pins what Go reads in it; that containerd
    // reads such a blob as a plain tar, not as bzip2, is cited in decompress.ts.
    'r5 first name starting with the bzip2 magic, then the library': [
      tarOf(file('BZh-notes.txt', 'hi\n'), file(LIB, EVIL)),
    ],
    'control, upper: a real whiteout of the library': [
      base,
      tarOf(header({ name: 'usr/lib/x86_64-linux-gnu/.wh.liblzma.so.5.6.1' })),
    ],
  };
  for (const [what, image] of Object.entries(images)) {
    it(what, async () => {
      const facts = await Promise.all(image.map(analyze));
      const evidence = matchImage(
        facts.map((f, i) => ({ digest: `sha256:${i}`, facts: f })),
        [set],
      );
      expect(evidence).toHaveLength(1);
      const surviving = evidence.filter((e) => e.inFinalFs).map((e) => e.path);
      const inRootfs = [...umociTree(image)].filter(([, sha]) => sha === EVIL_SHA).map(([path]) => path);
      expect(surviving).toEqual(inRootfs);
    });
  }
});
