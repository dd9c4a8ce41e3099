/**
 * Image-level view over ordered layers (base first): evidence from layer i survives in the final
 * filesystem unless a layer above i removes or replaces its path — a `.wh.<name>` whiteout of the
 * path or an ancestor, an opaque `.wh..wh..opq` on an ancestor directory (the root included), or a
 * file recorded at the same path (at an ancestor, a file replacing the directory; below it, a
 * directory replacing the file), but for a hardlink whose bytes were not recorded, which may be the
 * very bytes it replaces (FileFact.linkTarget). Layer i's own whiteouts only hide lower layers, never
 * its own entries (OCI image spec, "Whiteouts"). Evidence that a later entry of its own layer replaces (the
 * archive holds its path twice, or a later entry makes an ancestor a file or the path a directory) is
 * in no unpacked filesystem: it is kept, with inFinalFs false, as evidence the layer carried
 * (match.ts, SameLayerOrder).
 *
 * A layer whose analysis failed has no facts (`facts: null`). The layers above and below it are still
 * matched, so a backdoored base layer is reported however an upper layer fails; the failed layer itself
 * is taken to remove nothing, as nothing is known of it. Evidence below it may therefore be recorded as
 * surviving when that layer in fact deletes or replaces it: the dataset's views say "unknown" there
 * (docs/schema.md, `findings_final_fs`).
 */
import { cachedIn } from '../../core/cached.js';
import type { Evidence, LayerFacts } from '../facts.js';
import { ancestors } from '../paths.js';
import { type LayerPaths, pathsOf } from './layer-paths.js';
import { carriedByLinks } from './linked-evidence.js';
import { resolveStack, resolveWithPlacement } from './lower-links.js';
import { type LocatedEvidence, matchLayerLocated } from './match.js';
import { hitsAtLinks, pathsIn } from './placed-facts.js';
import type { IocSet } from './schema.js';

/**
 * Changes when matching decides differently from the same stored facts, so that every image is matched
 * again without any download (it is part of the match fingerprint, src/pipeline/match.ts). 2: evidence
 * a later entry of its own layer replaces (same-layer-order.ts). 3: a hashed file whose hash is a rule's
 * is evidence wherever it sits, not only at the rule's paths (match.ts); a paragraph of the main dpkg status
 * file without a Status field is not installed (dpkg/status.ts). 4: a hardlink whose bytes were not
 * recorded (FileFact.linkTarget) no longer replaces what was at its path, as it may hold those very bytes,
 * and carries the evidence at its target in a lower layer (linked-evidence.ts). 5: every layer's paths are
 * resolved through the symlinks the layers below it leave (lower-links.ts), and a whiteout or opaque
 * marker inside a path makes the path a directory, replacing a lower file there. 6: a layer's directory
 * entries (LayerFacts.dirs, analyzer version 7) replace a lower file or symlink at their paths, and a stack
 * whose every layer records them is read once, through the links (matchImage); a rule's glob naming a
 * merged-/usr folder covers the other spelling too (glob.ts, withMergedUsrTwins); the reading as recorded
 * takes md5sums paths through their own layer's links; a stack that is not exact is also read with each
 * layer's other placements (LayerResolution.alternatives). 7: each such placement is also read with the
 * layers above resolved through the links it leaves (resolveWithPlacement, lower-links.ts); in an exact
 * stack, a symlink an upper layer leaves at evidence's path or an ancestor replaces it (removedBy). 8: a
 * layer whose paths go through a lower symlink that its own layer whited out (there or above) is not
 * exact, and is also read without it (layer-readings.ts, ownLinksWhitedOut); the placement through a layer's
 * own climbing links covers one that leads to the root, and a chain of them is read as one more placement
 * (landedThroughOwnLinks). 9: a layer that removes a lower link is also read with every member landed without
 * it, and one whose member reaches a link of its own only through a lower link is not exact and is read both
 * through the link and not (placementsInOtherOrders), a member that the lower links move under a link of its
 * own layer it was recorded under too; what sits where a misfollowed climbing link led the analyzer is also
 * read where recorded (landedThroughOwnLinks, landingKept), and a misfollowed link it put where another led,
 * moved by that one (eachOther); a hardlink named through a lower link to its own layer's file gets that
 * file's signature hits with its hashes (withOwnTargetsRead); the exact layers under one that is not are read
 * as resolved in every reading, and a symlink of theirs replaces (locateEvidence).
 */
export const MATCHER_VERSION = 9;

/** Evidence located in an image: which layer, and whether the final filesystem still has it. */
export interface ImageEvidence extends Evidence {
  /** 0 = base layer. */
  layerIndex: number;
  /**
   * No later entry of its layer and no layer above removes or replaces it; a failed layer above is
   * taken to remove nothing.
   */
  inFinalFs: boolean;
}

/** An image's layer as the matcher sees it; `facts` is null for a layer whose analysis failed. */
export interface ImageLayer {
  digest: string;
  facts: LayerFacts | null;
}

/**
 * Whether `upper` removes or replaces evidence at `overwritePaths` / `whiteoutPaths`. With `symlinksReplace`
 * (`upper` is exact: its paths and those of every layer below it are where an unpacker puts them), a
 * symlink the layer leaves at the path or an ancestor replaces what was there, as a file does; elsewhere
 * its path may be misplaced, and a symlink wrongly counted would call a surviving file gone.
 */
function removedBy(
  upper: LayerPaths,
  overwritePaths: string[],
  whiteoutPaths: string[],
  symlinksReplace: boolean,
): boolean {
  const symlinkAt = (p: string) => symlinksReplace && upper.symlinks.has(p);
  for (const p of overwritePaths) {
    // A path recorded below p means this layer's archive made p a directory: a tar entry `p/x` needs a
    // directory `p`, and unpacking the `p/` entry first clobbers a lower file there.
    if (upper.present.has(p) || upper.dirs().has(p) || symlinkAt(p)) return true;
  }
  for (const p of whiteoutPaths) {
    // `ancestors` leaves the root out; an opaque marker at the root hides every lower path.
    if (upper.whiteouts.has(p) || upper.opaque.has('/')) return true;
    for (const a of ancestors(p)) {
      // A hardlink or a symlink at an ancestor is no directory, whatever its bytes: the directory is replaced.
      const nonDir = upper.present.has(a) || upper.links.has(a) || symlinkAt(a);
      if (upper.whiteouts.has(a) || upper.opaque.has(a) || nonDir) return true;
    }
  }
  return false;
}

/**
 * Match every layer that has facts and say, per piece of evidence, whether it survives in the final
 * filesystem. A layer's hardlinks to lower files carry the evidence still there at their targets
 * (linked-evidence.ts), in the link's layer.
 *
 * Paths are resolved through the symlinks the layers below leave (lower-links.ts), as an unpacker writes
 * them. That reading is exact when every layer records its directory entries (analyzer version 7), which
 * say where a lower link was replaced, and its archive's order cannot change where its members land
 * (LayerResolution.exact). Otherwise a lower link may be gone, or still there, in ways the facts do not
 * tell: a directory entry at its path in a layer an older analyzer read, a directory listed after its
 * contents, a layer that removes a link its own members were written through, or a layer whose analysis
 * failed. So in such a stack, where resolution moved anything, the stack is read again, its exact layers
 * (the lowest) as resolved in every reading and the others as recorded, and in the other places a layer's
 * paths may be (LayerResolution.alternatives: landed after every directory entry, through its own climbing
 * links as an unpacker follows them, in the entry orders the facts do not keep). Evidence is gone only
 * when every reading says so: matching leans toward "survives", never toward "gone", where the facts
 * cannot tell.
 */
export function matchImage(layers: readonly ImageLayer[], sets: IocSet[]): ImageEvidence[] {
  const stack = resolveStack(layers.map((l) => l.facts));
  const main = stack.map((r) => r.facts);
  // An exact layer's paths, a symlink's too, are where an unpacker puts them, and so are those of every layer
  // below it (the exact ones are the stack's first): a symlink it leaves at evidence's folder replaces it.
  const exact = stack.map((r) => r.exact);
  const resolved = locateEvidence(layers, main, sets, exact);
  // Nothing moved and no other placement: every reading would be this one. (A layer unmoved over a loop of
  // lower links may still have one: a late directory entry that ends a link of the loop moves its paths.)
  if (stack.every((r, i) => r.facts === layers[i]!.facts && r.alternatives.length === 0)) return resolved;
  if (exact.every(Boolean)) return resolved;
  const readings = [
    // As recorded, but for the paths an md5sums file lists, which go through the links of its own layer
    // whatever became of the lower ones: dpkg wrote those files through them. An exact layer is where the
    // main reading put it: read as recorded, a removal at the real path would seem to leave its evidence.
    layers.map((l, i) => (exact[i] ? main[i]! : l.facts && resolveStack([l.facts])[0]!.facts)),
  ];
  // One reading per other placement of one layer, every other layer as resolved: placements of two layers
  // read together could pair one's guess at a file with another's guess at what removes it. And the same
  // placement with the layers above resolved through the links it leaves (a link it places elsewhere
  // carries what they write through it there): an added reading, as readings only add "survives".
  const recorded = layers.map((l) => l.facts);
  stack.forEach((r, i) => {
    for (const alternative of r.alternatives) {
      const asResolved = main.map((f, j) => (j === i ? alternative : f));
      const throughIt = resolveWithPlacement(recorded, i, alternative);
      readings.push(asResolved);
      if (throughIt.some((f, j) => f !== asResolved[j])) readings.push(throughIt);
    }
  });
  const surviving = new Set<string>();
  for (const placed of readings) {
    // Read as the main reading reads it: it adds nothing (layers unmoved are their own resolution).
    if (placed.every((f, i) => f === main[i])) continue;
    const reading = placed.map((f, i) => withLinkHashesOf(main[i] ?? null, f));
    const toMain = mainPaths(main, reading);
    for (const e of locateEvidence(layers, reading, sets, exact)) {
      if (!e.inFinalFs) continue;
      for (const path of toMain(e.layerIndex, e.path)) surviving.add(evidenceKey(e, path));
    }
  }
  return resolved.map((e) =>
    e.inFinalFs || !surviving.has(evidenceKey(e, e.path)) ? e : { ...e, inFinalFs: true },
  );
}

/**
 * `placed` with the hashes and signature hits the main reading gave its hardlinks (placed-facts.ts,
 * withOwnTargetsRead: a link to its own layer's file named through a lower link): the link is that file
 * wherever a reading puts it, and a reading that could not name its target must still be able to say the
 * link survives. The files of every reading of a layer are the same entries in the same order.
 */
function withLinkHashesOf(main: LayerFacts | null, placed: LayerFacts | null): LayerFacts | null {
  if (main === null || placed === null || main === placed) return placed;
  return cachedIn(
    cachedIn(linkHashed, placed, () => new WeakMap()),
    main,
    () => {
      const read = (i: number) => {
        const m = main.files[i]!;
        return m.linkTarget !== undefined && m.sha256 !== null && placed.files[i]!.sha256 === null;
      };
      if (!placed.files.some((_, i) => read(i))) return placed;
      const files = placed.files.map((f, i) => {
        const { size, sha256, md5 } = main.files[i]!;
        return read(i) ? { ...f, size, sha256, md5 } : f;
      });
      // The main reading's hits at each such link, at the link's path in this reading.
      const links = placed.files.flatMap(
        (f, i): Array<[link: string, target: string]> => (read(i) ? [[f.path, main.files[i]!.path]] : []),
      );
      return {
        ...placed,
        files,
        signatureHits: [...placed.signatureHits, ...hitsAtLinks(main.signatureHits, links)],
      };
    },
  );
}

/** withLinkHashesOf by reading and main facts objects. */
const linkHashed = new WeakMap<LayerFacts, WeakMap<LayerFacts, LayerFacts>>();

/**
 * Where a path of one reading of a layer is in the main reading: both are the layer's recorded paths, each
 * placed its own way, in the same order (pathsIn). Two recorded paths may land on one path in a reading
 * and apart in the main one: both are returned.
 */
function mainPaths(
  main: ReadonlyArray<LayerFacts | null>,
  reading: ReadonlyArray<LayerFacts | null>,
): (layer: number, path: string) => readonly string[] {
  const maps = new Map<number, Map<string, string[]>>();
  return (layer, path) => {
    const [ours, theirs] = [reading[layer], main[layer]];
    if (!ours || !theirs || ours === theirs) return [path];
    const map = cachedIn(maps, layer, () => {
      const m = new Map<string, string[]>();
      const [from, to] = [pathsIn(ours), pathsIn(theirs)];
      from.forEach((p, i) => {
        cachedIn(m, p, () => []).push(to[i]!);
      });
      return m;
    });
    return map.get(path) ?? [path];
  };
}

/** The same piece of evidence in two readings: its layer, rule, value, and path in the main reading. */
function evidenceKey(e: ImageEvidence, resolvedPath: string): string {
  return [e.layerIndex, e.kind, e.iocSetId, e.iocSetVersion, e.ruleId, e.value, resolvedPath].join('\0');
}

/**
 * A layer's own evidence by its facts object, digest and rule sets: images built on one base match its
 * facts once per reading (LayerFactsCache keeps the object, lower-links.ts its resolved copy), not once
 * per image. Entries go with those objects; the evidence is never modified, only copied.
 */
const evidenceByLayer = new WeakMap<LayerFacts, Map<string, WeakMap<IocSet[], LocatedEvidence[]>>>();

function layerEvidence(facts: LayerFacts, digest: string, sets: IocSet[]): LocatedEvidence[] {
  const byDigest = cachedIn(evidenceByLayer, facts, () => new Map());
  const bySets = cachedIn(byDigest, digest, () => new WeakMap());
  return cachedIn(bySets, sets, () => matchLayerLocated(facts, digest, sets));
}

/**
 * Evidence of every layer with facts, and whether the layers above leave it in the final filesystem
 * (`symlinksReplace` per layer above: see removedBy). Every reading places the exact layers as the main
 * one does (other placements are of layers that are not), so their symlinks replace in each.
 */
function locateEvidence(
  layers: readonly ImageLayer[],
  facts: ReadonlyArray<LayerFacts | null>,
  sets: IocSet[],
  symlinksReplace: readonly boolean[],
): ImageEvidence[] {
  const paths = facts.map(pathsOf);
  /** Whether evidence located in layer `at` is still there once the layers up to `until` (excluded) apply. */
  const stillThere = (l: LocatedEvidence, at: number, until: number): boolean => {
    if (l.replacedInLayer) return false;
    for (let j = at + 1; j < until; j++) {
      if (removedBy(paths[j]!, l.overwritePaths, l.whiteoutPaths, symlinksReplace[j]!)) return false;
    }
    return true;
  };
  const located: Array<{ at: number; l: LocatedEvidence }> = [];
  layers.forEach((layer, i) => {
    const own = facts[i];
    if (!own) return;
    const below = () => located.filter(({ at, l }) => stillThere(l, at, i)).map(({ l }) => l);
    const carried = carriedByLinks(own, layer.digest, below);
    for (const l of [...layerEvidence(own, layer.digest, sets), ...carried]) located.push({ at: i, l });
  });
  return located.map(({ at, l }) => ({
    ...l.evidence,
    layerIndex: at,
    inFinalFs: stillThere(l, at, layers.length),
  }));
}
