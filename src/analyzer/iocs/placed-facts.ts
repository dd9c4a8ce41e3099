/**
 * One layer's facts with their paths placed by a mapping (resolveFacts), as each reading of an image places
 * them (lower-links.ts), and what tells two placements apart: every path in a fixed order (pathsIn).
 */
import type { FileFact, LayerFacts, SignatureHitFact } from '../facts.js';

export const unmoved = (path: string): string => path;

/** Whether two placements of one layer's facts put some path apart (pathsIn keeps their order). */
export function placedApart(a: LayerFacts, b: LayerFacts): boolean {
  if (a === b) return false;
  const [pa, pb] = [pathsIn(a), pathsIn(b)];
  return pa.some((p, i) => p !== pb[i]);
}

/** Every path a layer's facts hold, in a fixed order (resolveFacts keeps it). */
export function pathsIn(f: LayerFacts): string[] {
  return [
    ...f.files.flatMap((x) => (x.linkTarget === undefined ? [x.path] : [x.path, x.linkTarget])),
    ...f.packages.map((x) => x.statusFile),
    ...f.md5sums.flatMap((x) => [x.infoFile, x.path]),
    ...f.osRelease.map((x) => x.path),
    ...f.whiteouts.map((x) => x.path),
    ...f.signatureHits.map((x) => x.path),
    ...(f.symlinks ?? []).map((x) => x.path),
    ...(f.dirs ?? []),
    ...(f.lateDirs ?? []),
  ];
}

/**
 * Every path resolveFacts places by `member`: pathsIn without the paths md5sums files list (`listed`
 * places those), and an opaque marker by the folder it hides (hiddenBy).
 * Kept beside resolveFacts so that a pass that tests only these paths sees what resolveFacts moves.
 */
export function memberPathsIn(f: LayerFacts): string[] {
  return [
    ...f.files.flatMap((x) => (x.linkTarget === undefined ? [x.path] : [x.path, x.linkTarget])),
    ...f.packages.map((x) => x.statusFile),
    ...f.md5sums.map((x) => x.infoFile),
    ...f.osRelease.map((x) => x.path),
    ...f.whiteouts.flatMap((x) => (x.opaque ? (hiddenBy(x.path) ?? []) : [x.path])),
    ...f.signatureHits.map((x) => x.path),
    ...(f.symlinks ?? []).map((x) => x.path),
    ...(f.dirs ?? []),
    ...(f.lateDirs ?? []),
  ];
}

/**
 * The path an opaque marker of folder `dir` is placed by: it lands inside the folder, so the folder
 * resolves whole. None for the root, which no link moves.
 */
function hiddenBy(dir: string): string | undefined {
  return dir === '/' ? undefined : `${dir}/.`;
}

/**
 * `facts` with every path placed by `member` (members) and `listed` (md5sums lines); `moves` false when
 * only the lists can move. `facts` itself when nothing moved: matching tells an unmoved layer by its
 * identity (matchImage reads such a stack once) and keeps its evidence per facts object (image-view.ts).
 */
export function resolveFacts(
  facts: LayerFacts,
  moves: boolean,
  member: (path: string) => string,
  listed: (path: string) => string,
): LayerFacts {
  // Whether any path lands elsewhere than recorded: every placement below goes through `noted`.
  let moved = false;
  const noted = (to: (path: string) => string) => (path: string) => {
    const there = to(path);
    if (there !== path) moved = true;
    return there;
  };
  const [at, lists] = [noted(member), noted(listed)];
  // The directory an opaque marker hides, placed by its marker (hiddenBy).
  const directory = (dir: string): string => {
    const marker = hiddenBy(dir);
    return marker === undefined ? dir : at(marker).slice(0, -2);
  };
  const md5sums = facts.md5sums.map((m) => {
    const path = lists(m.path);
    // A rule's globs may name either spelling: the one dpkg listed counts too (match.ts).
    return path === m.path ? m : { ...m, path, listedPath: m.path };
  });
  // Nothing below: the analyzer resolved every member already; only the md5sums lists were not.
  if (!moves) return moved ? { ...facts, md5sums } : facts;
  const placedFiles = facts.files.map((f) => ({
    ...f,
    path: at(f.path),
    ...(f.linkTarget === undefined ? {} : { linkTarget: at(f.linkTarget) }),
  }));
  const { files, readFrom } = withOwnTargetsRead(placedFiles);
  const placedHits = facts.signatureHits.map((h) => ({ ...h, path: at(h.path) }));
  const resolved: LayerFacts = {
    ...facts,
    files,
    packages: facts.packages.map((p) => ({ ...p, statusFile: at(p.statusFile) })),
    md5sums: md5sums.map((m) => ({ ...m, infoFile: at(m.infoFile) })),
    osRelease: facts.osRelease.map((o) => ({ ...o, path: at(o.path) })),
    whiteouts: facts.whiteouts.map((w) => ({ ...w, path: w.opaque ? directory(w.path) : at(w.path) })),
    // `scannedPath` stays as recorded: a rule's globs chose the file by that name when it was scanned.
    signatureHits: readFrom.length === 0 ? placedHits : [...placedHits, ...hitsAtLinks(placedHits, readFrom)],
    ...(facts.symlinks === undefined
      ? {}
      : { symlinks: facts.symlinks.map((l) => ({ ...l, path: at(l.path) })) }),
    ...(facts.dirs === undefined ? {} : { dirs: facts.dirs.map(at) }),
    ...(facts.lateDirs === undefined ? {} : { lateDirs: facts.lateDirs.map(at) }),
  };
  // A hardlink given its target's hashes is a change too, though no path moved.
  return moved || files.some((f, i) => f !== placedFiles[i]) ? resolved : facts;
}

/**
 * A hardlink whose target the analyzer could not find (it named it through a lower layer's link) gets the
 * hashes of its own layer's file there, when that file came first in the archive: unpacked, the link is
 * that file, as the analyzer records a link to a file it found (layer-stream.ts, recordHardlink). It keeps
 * its `linkTarget`, so that every reading of the layer holds the same paths (image-view.ts, mainPaths).
 * Returns the files, and each link so read with the path it was read from (its hits are copied too,
 * hitsAtLinks: a backdoor known by its bytes only is found at the link's path once the file's is removed).
 */
function withOwnTargetsRead(files: FileFact[]): {
  files: FileFact[];
  readFrom: Array<[link: string, target: string]>;
} {
  const readFrom: Array<[link: string, target: string]> = [];
  if (!files.some((f) => f.linkTarget !== undefined && f.sha256 === null)) return { files, readFrom };
  // The entry at each path so far, in archive order: a link is to the latest one before it.
  const latest = new Map<string, FileFact>();
  const read = files.map((f) => {
    let out = f;
    const target = f.linkTarget === undefined || f.sha256 !== null ? undefined : latest.get(f.linkTarget);
    if (target !== undefined && target.linkTarget === undefined && target.sha256 !== null) {
      out = { ...f, size: target.size, sha256: target.sha256, md5: target.md5 };
      readFrom.push([f.path, target.path]);
    }
    latest.set(f.path, out);
    return out;
  });
  return { files: read, readFrom };
}

/**
 * The signature hits at each pair's `target` path, at its `link` path: a hardlink's copies of its file's
 * hits, as the analyzer copies a hit to a link it resolved itself (`scannedPath` stays the target's: a
 * rule's globs chose the file by that name), or those copies moved to where another reading puts the link
 * (image-view.ts, withLinkHashesOf).
 */
export function hitsAtLinks(
  hits: readonly SignatureHitFact[],
  readFrom: ReadonlyArray<[link: string, target: string]>,
): SignatureHitFact[] {
  return readFrom.flatMap(([link, target]) =>
    hits.filter((h) => h.path === target).map((h) => ({ ...h, path: link })),
  );
}
