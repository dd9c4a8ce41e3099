/**
 * One layer's paths landed through the symlinks the layers below it leave (resolveLayer, resolveAround),
 * and the symlinks it leaves for the layers above (linksAfter): the steps lower-links.ts takes up a stack.
 */
import { cachedIn } from '../../core/cached.js';
import type { LayerFacts } from '../facts.js';
import { LayerSymlinks } from '../layer-symlinks.js';
import { ancestors } from '../paths.js';
import { pathsOf } from './layer-paths.js';
import { resolveFacts, unmoved } from './placed-facts.js';

export const NO_LINKS: ReadonlyMap<string, string> = new Map();

/** Those of `candidates` that are in `links` with the same target (NO_LINKS when none is). */
export function stillStanding(
  candidates: Iterable<readonly [string, string]>,
  links: ReadonlyMap<string, string>,
): ReadonlyMap<string, string> {
  const standing = [...candidates].filter(([path, target]) => links.get(path) === target);
  return standing.length === 0 ? NO_LINKS : new Map(standing);
}

/**
 * The lower links still standing when a layer's members land: a directory entry replaces a symlink at its
 * path (containerd and umoci remove what is there unless it is a directory), so `lib/` written before
 * `lib/x` over `lib -> usr/lib` puts `x` in a new `/lib`. Entries are taken in archive order, each landing
 * through the links the ones before it left; a tar writer lists a directory before what it holds.
 * Returns the links left, and the entries (as recorded) that ended one.
 */
export function linksLeftByDirs(
  below: Map<string, string>,
  facts: LayerFacts,
): { links: Map<string, string>; endedBy: string[] } {
  const endedBy: string[] = [];
  if (!facts.dirs?.length || below.size === 0) return { links: below, endedBy };
  // Most layers end no link: their entries land through the resolver `below` shares with every layer over
  // it. The first entry that hits one switches to a copy of their own, which forgets each link hit.
  const shared = resolverOf(below);
  let own: LayerSymlinks | undefined;
  for (const dir of facts.dirs) {
    const at = (own ?? shared).landing(dir);
    if (own === undefined) {
      if (!below.has(at)) continue;
      own = new LayerSymlinks(below);
    } else if (!own.has(at)) continue;
    own.landed(at, null);
    endedBy.push(dir);
  }
  const links = own === undefined ? below : new Map(own.entries().map((l) => [l.path, l.target]));
  return { links, endedBy };
}

/** A layer's facts with their paths resolved through `below`, and the mappings that did it. */
export interface ResolvedLayer {
  facts: LayerFacts;
  member(path: string): string;
  listed(path: string): string;
}

export function resolveLayer(facts: LayerFacts, below: ReadonlyMap<string, string>): ResolvedLayer {
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
  return { facts: resolveFacts(facts, below.size > 0, member, listed), member, listed };
}

/** A resolver per map of links, shared by every layer resolved over the same links (only read). */
const resolvers = new WeakMap<ReadonlyMap<string, string>, LayerSymlinks>();

export function resolverOf(links: ReadonlyMap<string, string>): LayerSymlinks {
  return cachedIn(resolvers, links, () => new LayerSymlinks(links));
}

/**
 * A layer whose directory entries ended lower links: a path spelled under such an entry lands in the new
 * directory (DirectoryOrder saw nothing there before the entry); any other lands through the links as they
 * stood before, as if listed before the entry. The second guess may be wrong, so such a layer is never
 * exact (lower-links.ts, stepOver): matchImage also reads it landed after every entry
 * (layer-readings.ts, landedAfterEntries).
 */
export function resolveAround(
  facts: LayerFacts,
  before: ResolvedLayer,
  after: ResolvedLayer,
  endedBy: readonly string[],
): ResolvedLayer {
  const underEnding = underAny(endedBy);
  const member = (p: string) => (underEnding(p) ? after : before).member(p);
  const listed = (p: string) => (underEnding(p) ? after : before).listed(p);
  return { facts: resolveFacts(facts, true, member, listed), member, listed };
}

/** Whether a path is one of `dirs` or below one (every path is below the root). */
export function underAny(dirs: readonly string[]): (path: string) => boolean {
  return (p) => dirs.some((d) => d === '/' || p === d || p.startsWith(`${d}/`));
}

/**
 * The symlinks once `layer` (paths resolved) is applied: those below it that it whites out, hides with an
 * opaque marker, or puts something else (a symlink too) at or above are gone; its own are added.
 */
export function linksAfter(below: Map<string, string>, layer: LayerFacts): Map<string, string> {
  // Whatever the layer puts at a path (a file, a hardlink, a parsed database) or whites out ends a link
  // there or above; an opaque marker ends those below it.
  const { present, links, whiteouts, opaque: hidden, symlinks: ownLinks } = pathsOf(layer);
  const removed = (path: string) => present.has(path) || links.has(path) || whiteouts.has(path);
  // A directory entry listed late ends a link at its path for the layers above (the on-time ones ended
  // theirs before the layer's members landed, linksLeftByDirs); over a directory, it changes nothing below.
  const late = new Set(layer.lateDirs);
  const endsHere = (path: string) => removed(path) || late.has(path);
  // Most layers touch no link: the same map goes on, not a copy of every link's path and ancestors.
  if (!layer.symlinks?.length && !hidden.has('/') && !touchesLinks(below, endsHere, hidden)) return below;
  const after = new Map<string, string>();
  // A symlink of the layer over a folder (ownLinks) replaces the folder and the links in it (containerd and
  // umoci remove a directory that a non-directory entry lands on); one at a link's own path replaces it below.
  if (!hidden.has('/')) {
    for (const [path, target] of below) {
      const above = ancestors(path);
      const gone = endsHere(path) || above.some((a) => removed(a) || hidden.has(a) || ownLinks.has(a));
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
