/**
 * An image's layers with every path resolved through the symlinks the layers below leave.
 *
 * The analyzer reads one layer at a time, so it resolves a member's path only through the symlinks of
 * its own layer (layer-symlinks.ts). Over a lower layer's `lib -> usr/lib`, an upper layer's member
 * `lib/x86_64-linux-gnu/liblzma.so.5.6.1` is recorded under that name, yet an unpacker (umoci,
 * containerd, GNU tar) writes it to `/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1`. Left as recorded, a
 * later `.wh.lib` (which removes the link), the same link written again, or a file at `/lib` seemed to
 * remove the backdoor, which in fact survives under /usr/lib: a "gone" verdict for a file that is there.
 * And a whiteout or a clean copy written at the real path seemed to leave it.
 *
 * Here each layer's paths are resolved as an unpacker resolves them, through the symlinks the layers
 * below leave (those not whited out or replaced since): a member's parent through every link, its own
 * name kept, as layer-symlinks.ts does within a layer. An md5sums file's listed paths are resolved
 * through the layer's own links too: dpkg wrote those files through whatever links the system had.
 *
 * A directory entry replaces a lower symlink at its path (`tar -c` of a tree writes `lib/` before `lib/x`,
 * and its `x` is then at /lib/x): the layer's recorded directory entries (LayerFacts.dirs) end such links
 * before its members land. A layer an analyzer before version 7 read has none recorded, so a link it
 * replaced that way stays in place here, and nothing is known of a layer whose analysis failed: for such a
 * stack, matchImage reads both ways and calls evidence gone only when both readings agree. A layer an
 * analyzer before version 6 read has no recorded symlinks (LayerFacts.symlinks undefined). A relative link
 * of an upper layer that itself sits under a lower link was resolved by the analyzer from its tar name's
 * folder, which cannot be undone here.
 */
import { cachedIn } from '../../core/cached.js';
import type { LayerFacts } from '../facts.js';
import { LayerSymlinks } from '../layer-symlinks.js';
import { ancestors } from '../paths.js';
import { pathsOf } from './layer-paths.js';

/**
 * One layer of an image resolved: its facts with every path where the image holds it, and the mapping
 * itself, for a path recorded in the layer as a member's (`member`) or listed by one of its md5sums files
 * (`listed`).
 */
export interface LayerResolution {
  facts: LayerFacts | null;
  member(path: string): string;
  listed(path: string): string;
  /**
   * Whether this layer's paths, and those of every layer below, are surely where an unpacker puts them:
   * every layer analyzed, with its directory entries recorded (LayerFacts.dirs), none listed late, and no
   * layer ending a lower link that its own members were written through, whose order the facts do not keep.
   */
  exact: boolean;
}

const unmoved = (path: string): string => path;

/** One layer resolved, and the symlinks in the filesystem once it is applied; `next` per layer above. */
interface Step {
  resolution: LayerResolution;
  links: Map<string, string>;
  next: WeakMap<object, Step>;
}

/** Stands for a failed layer (no facts) as a key of Step.next. */
const FAILED_LAYER = {};
/**
 * Resolved stacks by the identity of their layers' facts: images that share a base (most of a crawl) share
 * its resolution, as they share its facts objects (LayerFactsCache). Entries go with those objects.
 */
const resolvedStacks: WeakMap<object, Step> = new WeakMap();

/** Each layer resolved through the symlinks the layers below it leave (see LayerResolution). */
export function resolveStack(layers: ReadonlyArray<LayerFacts | null>): LayerResolution[] {
  let steps = resolvedStacks;
  /** The symlinks in the filesystem so far: resolved path → target as written. */
  let below = new Map<string, string>();
  let previous: Step | undefined;
  return layers.map((facts) => {
    const before = below;
    const exactBelow = previous?.resolution.exact ?? true;
    const step: Step = cachedIn(steps, facts ?? FAILED_LAYER, () => stepOver(before, facts, exactBelow));
    previous = step;
    steps = step.next;
    below = step.links;
    return step.resolution;
  });
}

/** One layer resolved over the links `below` leaves. */
function stepOver(below: Map<string, string>, facts: LayerFacts | null, exactBelow: boolean): Step {
  if (facts === null) {
    // A failed layer is taken to change nothing, as everywhere in matching; what it did is not known.
    const resolution = { facts, member: unmoved, listed: unmoved, exact: false };
    return { resolution, links: below, next: new WeakMap() };
  }
  const lower = linksLeftByDirs(below, facts);
  const { facts: resolved, member, listed } = resolveLayer(facts, lower);
  const links = linksAfter(lower, resolved);
  const exact =
    exactBelow &&
    facts.dirs !== undefined &&
    !facts.lateDirs?.length &&
    !ownMembersMovedByEndedLinks(facts, resolved, lower, links);
  return { resolution: { facts: resolved, member, listed, exact }, links, next: new WeakMap() };
}

/**
 * Whether a link this layer ends (a whiteout of it, an opaque marker above it, a file at its path) is one
 * its own members land through. An unpacker applies a layer's entries in archive order, so such a member
 * went through the link or not as it came before or after the removal, which the facts do not say.
 */
function ownMembersMovedByEndedLinks(
  facts: LayerFacts,
  resolved: LayerFacts,
  lower: Map<string, string>,
  after: Map<string, string>,
): boolean {
  if (after === lower) return false;
  const standing = new Map([...lower].filter(([path]) => after.has(path)));
  if (standing.size === lower.size) return false;
  const without = resolveLayer(facts, standing).facts;
  const [a, b] = [pathsIn(resolved), pathsIn(without)];
  return a.length !== b.length || a.some((p, i) => p !== b[i]);
}

/** Every path a layer's facts hold, in a fixed order. */
function pathsIn(f: LayerFacts): string[] {
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
 * The lower links still standing when a layer's members land: a directory entry replaces a symlink at its
 * path (containerd and umoci remove what is there unless it is a directory), so `lib/` written before
 * `lib/x` over `lib -> usr/lib` puts `x` in a new `/lib`. Entries are taken in archive order, each landing
 * through the links the ones before it left; a tar writer lists a directory before what it holds.
 */
function linksLeftByDirs(below: Map<string, string>, facts: LayerFacts): Map<string, string> {
  if (!facts.dirs?.length || below.size === 0) return below;
  // The shared resolver until an entry hits a link; from then on a copy of our own, which forgets each link hit.
  let links: LayerSymlinks | undefined;
  const standing = resolverOf(below);
  for (const dir of facts.dirs) {
    const at = (links ?? standing).landing(dir);
    if (links === undefined) {
      if (!below.has(at)) continue;
      links = new LayerSymlinks(below);
    }
    links.landed(at, null);
  }
  return links === undefined ? below : new Map(links.entries().map((l) => [l.path, l.target]));
}

/** A layer's facts with their paths resolved through `below`, and the mappings that did it. */
interface ResolvedLayer {
  facts: LayerFacts;
  member(path: string): string;
  listed(path: string): string;
}

function resolveLayer(facts: LayerFacts, below: ReadonlyMap<string, string>): ResolvedLayer {
  if (!facts.symlinks?.length && below.size === 0) return { facts, member: unmoved, listed: unmoved };
  const lower = resolverOf(below);
  // A member the analyzer resolved through its layer's links: resolved through the lower ones, and where
  // that moved it, through the layer's own links again (a link of its own may sit under the new path).
  let combined: LayerSymlinks | undefined;
  const withOwn = (): LayerSymlinks => {
    if (!facts.symlinks?.length) return lower;
    combined ??= new LayerSymlinks([
      ...below,
      ...facts.symlinks.map((l) => [lower.landing(l.path), l.target] as const),
    ]);
    return combined;
  };
  const member = (path: string): string => {
    const moved = lower.landing(path);
    return moved === path ? path : withOwn().landing(moved);
  };
  const listed = (path: string): string => withOwn().landing(path);
  return { facts: resolveFacts(facts, below, member, listed), member, listed };
}

/** A resolver per map of links, shared by every layer resolved over the same links (only read). */
const resolvers = new WeakMap<ReadonlyMap<string, string>, LayerSymlinks>();

function resolverOf(links: ReadonlyMap<string, string>): LayerSymlinks {
  return cachedIn(resolvers, links, () => new LayerSymlinks(links));
}

function resolveFacts(
  facts: LayerFacts,
  below: ReadonlyMap<string, string>,
  member: (path: string) => string,
  listed: (path: string) => string,
): LayerFacts {
  // The directory an opaque marker hides: the marker lands inside it, so the directory resolves whole.
  const directory = (dir: string): string => (dir === '/' ? dir : member(`${dir}/.`).slice(0, -2));
  const md5sums = facts.md5sums.map((m) => {
    const path = listed(m.path);
    // A rule's globs may name either spelling: the one dpkg listed counts too (match.ts).
    return path === m.path ? m : { ...m, path, listedPath: m.path };
  });
  // Nothing below: the analyzer resolved every member already; only the md5sums lists were not.
  if (below.size === 0) return { ...facts, md5sums };
  return {
    ...facts,
    files: facts.files.map((f) => ({
      ...f,
      path: member(f.path),
      ...(f.linkTarget === undefined ? {} : { linkTarget: member(f.linkTarget) }),
    })),
    packages: facts.packages.map((p) => ({ ...p, statusFile: member(p.statusFile) })),
    md5sums: md5sums.map((m) => ({ ...m, infoFile: member(m.infoFile) })),
    osRelease: facts.osRelease.map((o) => ({ ...o, path: member(o.path) })),
    whiteouts: facts.whiteouts.map((w) => ({ ...w, path: w.opaque ? directory(w.path) : member(w.path) })),
    // `scannedPath` stays as recorded: a rule's globs chose the file by that name when it was scanned.
    signatureHits: facts.signatureHits.map((h) => ({ ...h, path: member(h.path) })),
    ...(facts.symlinks === undefined
      ? {}
      : { symlinks: facts.symlinks.map((l) => ({ ...l, path: member(l.path) })) }),
    ...(facts.dirs === undefined ? {} : { dirs: facts.dirs.map(member) }),
    ...(facts.lateDirs === undefined ? {} : { lateDirs: facts.lateDirs.map(member) }),
  };
}

/**
 * The symlinks once `layer` (paths resolved) is applied: those below it that it whites out, hides with an
 * opaque marker, or puts something else at or above are gone; its own are added.
 */
function linksAfter(below: Map<string, string>, layer: LayerFacts): Map<string, string> {
  // Whatever the layer puts at a path (a file, a hardlink, a parsed database) or whites out ends a link
  // there or above; an opaque marker ends those below it.
  const { present, links, whiteouts, opaque: hidden } = pathsOf(layer);
  const removed = (path: string) => present.has(path) || links.has(path) || whiteouts.has(path);
  // A directory entry listed late ends a link at its path for the layers above (the on-time ones ended
  // theirs before the layer's members landed, linksLeftByDirs); over a directory, it changes nothing below.
  const late = new Set(layer.lateDirs);
  const endsHere = (path: string) => removed(path) || late.has(path);
  // Most layers touch no link: the same map goes on, not a copy of every link's path and ancestors.
  if (!layer.symlinks?.length && !hidden.has('/') && !touchesLinks(below, endsHere, hidden)) return below;
  const after = new Map<string, string>();
  if (!hidden.has('/')) {
    for (const [path, target] of below) {
      const above = ancestors(path);
      const gone = endsHere(path) || above.some((a) => removed(a) || hidden.has(a));
      if (!gone) after.set(path, target);
    }
  }
  for (const l of layer.symlinks ?? []) after.set(l.path, l.target);
  return after;
}

/** The links and every folder above one, per map of links (a map is never changed once made). */
const linkedPaths = new WeakMap<Map<string, string>, Set<string>>();

/** Whether a path removed or hidden is a link, or a folder holding one. */
function touchesLinks(
  links: Map<string, string>,
  removed: (path: string) => boolean,
  hidden: Set<string>,
): boolean {
  if (links.size === 0) return false;
  const paths = cachedIn(
    linkedPaths,
    links,
    () => new Set([...links.keys()].flatMap((p) => [p, ...ancestors(p)])),
  );
  for (const p of paths) if (removed(p) || hidden.has(p)) return true;
  return false;
}
