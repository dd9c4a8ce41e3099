/**
 * The other places a layer's paths may be, for a layer whose placement the facts do not settle (one that is
 * not exact, lower-links.ts): the orders of its entries the facts do not keep, its own links followed as an
 * unpacker follows them, and the lower links it lands through taken away where they may be gone.
 */
import type { LayerFacts, SymlinkFact } from '../facts.js';
import { LayerSymlinks } from '../layer-symlinks.js';
import { ancestors, normalizeTarPath } from '../paths.js';
import {
  linksLeftByDirs,
  type ResolvedLayer,
  resolveLayer,
  resolverOf,
  stillStanding,
  underAny,
} from './layer-landing.js';
import { memberPathsIn, pathsIn, placedApart, resolveFacts } from './placed-facts.js';

/**
 * The layer landed through `lower` without the links that may be gone; undefined when that places no path
 * otherwise than `resolved` does (no path of the layer goes through one).
 */
export function landedWithoutLinks(
  facts: LayerFacts,
  lower: Map<string, string>,
  mayBeGone: ReadonlyMap<string, string>,
  resolved: LayerFacts,
): LayerFacts | undefined {
  if (mayBeGone.size === 0) return undefined;
  const without = new Map([...lower].filter(([path, target]) => mayBeGone.get(path) !== target));
  if (without.size === lower.size) return undefined;
  const landed = resolveLayer(facts, without).facts;
  return placedApart(landed, resolved) ? landed : undefined;
}

/**
 * The layer's own relative links whose target climbs (`rel -> ../bar`) in a folder a lower link moved. The
 * analyzer, knowing no lower link, followed each from the folder of its tar name (layer-symlinks.ts), so
 * the members recorded through it are not where an unpacker puts them (landedThroughOwnLinks).
 */
export function misfollowedLinks(facts: LayerFacts, resolution: ResolvedLayer): SymlinkFact[] {
  return (facts.symlinks ?? []).filter((l) => resolution.member(l.path) !== l.path && climbs(l.target));
}

/** Whether a symlink's target is relative and climbs (`../bar`). */
function climbs(target: string): boolean {
  return !target.startsWith('/') && target.split('/').includes('..');
}

/** `path` moved from `from` (itself, or a folder above it) to `to`; undefined when it is not there. */
function rebased(path: string, from: string, to: string): string | undefined {
  if (from !== '/' && path !== from && !path.startsWith(`${from}/`)) return undefined;
  // What follows `from`: '' for `from` itself, else '/…' (the root is a prefix of every path).
  const rest = from === '/' ? (path === '/' ? '' : path) : path.slice(from.length);
  if (rest === '') return to;
  return to === '/' ? rest : `${to}${rest}`;
}

/**
 * The layer's facts with what went through a relative link of its own whose target climbs (`rel ->
 * ../bar`), in a folder a lower link moved, placed as an unpacker follows it: from the folder the link is
 * in (`/opt/tools/deep/../bar`), not the folder of its tar name (`/opt/alias/../bar`), from which the
 * analyzer, knowing no lower link, followed it (layer-symlinks.ts). Every recorded path at or under where
 * the analyzer went is moved; one written there directly is moved too, which only adds a reading.
 * `chained`: a climbing link of the layer that the analyzer put where such a link led (`rel/l2 -> ../lib2`,
 * recorded at `/opt/bar/l2`) was followed from the wrong folder too, and so on down the chain; a second
 * reading, as the first may be right. `landingKept`: a member recorded at the very place the analyzer went
 * (`opt/lib2 -> ../alias/rel` beside `rel -> ../lib2`) is one written there by its own name, as likely as
 * through the link, and stays (moved, a link there would hide where the layers above really write).
 * `eachOther`: a misfollowed link that the analyzer put where another one led (`rel/l2 -> ../rel`, recorded
 * at /opt/lib2/l2) is moved by that one's move too, not only kept where resolution put it; one more reading,
 * as moving it in place of keeping it made other stacks read wrongly "gone".
 * Undefined when the layer has no such link (`chained`: no chain; `landingKept`: no member there;
 * `eachOther`: no misfollowed link where another led).
 */
export function landedThroughOwnLinks(
  facts: LayerFacts,
  lower: Map<string, string>,
  resolution: ResolvedLayer,
  misfollowed: readonly SymlinkFact[],
  { chained = false, landingKept = false, eachOther = false } = {},
): LayerFacts | undefined {
  if (misfollowed.length === 0) return undefined;
  const followedFrom = (l: SymlinkFact, path: string) => leadsTo(path, l.target);
  const moves = misfollowed.map((l): [from: string, to: string] => [
    followedFrom(l, l.path),
    followedFrom(l, resolution.member(l.path)),
  ]);
  // Where a path moves with the first move that covers it, but the one numbered `except`.
  const moved = (path: string, except = -1): string | undefined => {
    for (let i = 0; i < moves.length; i++) {
      if (i === except) continue;
      const there = rebased(path, moves[i]![0], moves[i]![1]);
      if (there !== undefined) return there;
    }
    return undefined;
  };
  if (chained) {
    const followed = new Set(misfollowed.map((l) => l.path));
    for (let grew = true; grew; ) {
      grew = false;
      for (const l of facts.symlinks ?? []) {
        const there = followed.has(l.path) || !climbs(l.target) ? undefined : moved(l.path);
        if (there === undefined) continue;
        followed.add(l.path);
        moves.push([followedFrom(l, l.path), followedFrom(l, there)]);
        grew = true;
      }
    }
    if (moves.length === misfollowed.length) return undefined;
  }
  // The misfollowed links themselves are where resolution put them (a `rel -> ..` is under where it leads);
  // with `eachOther`, only out of the reach of their own move. With `landingKept`, so is what sits where one
  // led.
  const ownMove = new Map(eachOther ? misfollowed.map((l, i) => [l.path, i]) : []);
  if (eachOther && ![...ownMove].some(([path, i]) => moved(path, i) !== undefined)) return undefined;
  const kept = new Set(eachOther ? [] : misfollowed.map((l) => l.path));
  if (landingKept) {
    const landings = new Set(moves.map(([from]) => from));
    const atLandings = pathsIn(facts).filter((p) => landings.has(p));
    if (atLandings.length === 0) return undefined;
    for (const p of atLandings) kept.add(p);
  }
  const lowerLinks = resolverOf(lower);
  const member = (p: string) => {
    const there = kept.has(p) ? undefined : moved(p, ownMove.get(p));
    return there === undefined ? resolution.member(p) : lowerLinks.landing(there);
  };
  const listed = (p: string) => moved(p) ?? resolution.listed(p);
  return resolveFacts(facts, true, member, listed);
}

/**
 * The layer's facts landed after every directory entry, late ones included, ended its link; undefined when
 * that places no path otherwise than `resolved` does. `afterEntries` is the layer landed through `lower`,
 * the links its on-time entries left: the same, for a layer with no late entry.
 */
export function landedAfterEntries(
  facts: LayerFacts,
  below: Map<string, string>,
  placed: { lower: Map<string, string>; afterEntries: ResolvedLayer; resolved: LayerFacts },
): LayerFacts | undefined {
  if (!facts.lateDirs?.length && !facts.dirs?.length) return undefined;
  const all = { ...facts, dirs: [...(facts.dirs ?? []), ...(facts.lateDirs ?? [])] };
  const { links } = facts.lateDirs?.length ? linksLeftByDirs(below, all) : { links: placed.lower };
  if (links === below) return undefined;
  const landed = links === placed.lower ? placed.afterEntries.facts : resolveLayer(facts, links).facts;
  return placedApart(landed, placed.resolved) ? landed : undefined;
}

/** The links around one layer: once its directory entries ended theirs, and after it. */
interface LinksAround {
  lower: Map<string, string>;
  after: Map<string, string>;
}

/**
 * Where the layer's recorded paths land in the entry orders the facts do not keep, other than where the
 * resolution put them: none when the order cannot move them. An unpacker applies entries in archive order,
 * so:
 * - a lower link the layer ends with a whiteout, an opaque marker or a file at its path was there for the
 *   members listed before the removal, and gone for those after. The resolution goes through it; the other
 *   reading lands every member without it (`.wh.c` then `c/x` over a lower `c -> a/b`: containerd meets the
 *   whiteout first, and a `.wh.` name sorts before those under it, so `x` goes into a new /c);
 * - a link of the layer's own that a member reaches only through a lower link (landedAroundOwnLinks).
 * Two more are read elsewhere: a link one of its directory entries ended (layer-landing.ts resolveAround,
 * landedAfterEntries; lower-links.ts stepOver compares `afterEntries`), and a misfollowed link of its own
 * (misfollowedLinks).
 */
export function placementsInOtherOrders(
  facts: LayerFacts,
  resolution: ResolvedLayer,
  around: LinksAround,
): LayerFacts[] {
  const { lower, after } = around;
  const placements = landedAroundOwnLinks(facts, lower, resolution);
  if (after !== lower) {
    // Standing means the same link after the layer: one it removed and made anew at that path elsewhere
    // (`.wh.c`, `c/x`, `c -> other`) was gone for the members between.
    const standing = stillStanding(lower, after);
    const landed = standing.size === lower.size ? resolution.facts : resolveLayer(facts, standing).facts;
    if (placedApart(resolution.facts, landed)) placements.push(landed);
  }
  return placements;
}

/**
 * The layer's members that reach a link of its own only through a lower link, read the other way. Over a
 * lower `c -> b`, the layer's `c/c -> /srv/x` lands at /b/c, and a member `b/c/x` listed after it lands
 * at /srv/x/x, one listed before it in the folder /b/c; a member `c/c/y` that the analyzer recorded at
 * /c/c/y, not knowing the lower link, is moved to /b/c/y and through the link if it came after it (one
 * recorded under a link of the layer came before it: moved, it is read not going through it too). The
 * analyzer, reading the layer alone, followed neither way; the resolution goes through such a link for a
 * member the lower links move and not for one they leave. Returns the readings that differ from it: every
 * such member through the layer's own links, and none.
 */
function landedAroundOwnLinks(
  facts: LayerFacts,
  lower: ReadonlyMap<string, string>,
  resolution: ResolvedLayer,
): LayerFacts[] {
  // No own link, no lower link, or nothing the lower links moved: every path is where the analyzer's order
  // put it. (A base layer's md5sums lists move through its own links alone: `lower` is empty.)
  if (!facts.symlinks?.length || lower.size === 0 || resolution.facts === facts) return [];
  const lowerLinks = resolverOf(lower);
  const ownLanded = facts.symlinks.map((l) => [lowerLinks.landing(l.path), l.target] as const);
  const ownRecorded = new LayerSymlinks(facts.symlinks.map((l) => [l.path, l.target] as const));
  const ownThere = new LayerSymlinks(ownLanded);
  // Under an own link where it landed. Recorded under one, it came before that link (the analyzer would
  // have gone through it): right where the lower links leave it, but once they move it, the resolution
  // follows the layer's links again (resolveLayer), that one too.
  const reachesOwnLinkThroughLower = (path: string, landed: string) =>
    ownThere.landing(landed) !== landed && (landed !== path || ownRecorded.landing(path) === path);
  // Most layers have no such path: one pass over them, before copying every path twice. (md5sums lists are
  // placed by `listed`: the readings place them as the resolution does.)
  if (!memberPathsIn(facts).some((p) => reachesOwnLinkThroughLower(p, lowerLinks.landing(p)))) return [];
  const throughAll = new LayerSymlinks([...lower, ...ownLanded]);
  const reading = (through: boolean) =>
    resolveFacts(
      facts,
      true,
      (p) => {
        const landed = lowerLinks.landing(p);
        if (!reachesOwnLinkThroughLower(p, landed)) return resolution.member(p);
        return through ? throughAll.landing(landed) : landed;
      },
      resolution.listed,
    );
  return [reading(true), reading(false)].filter((f) => placedApart(f, resolution.facts));
}

/**
 * The layer's own symlinks (paths resolved) with a whiteout of theirs at or above their path: they may be
 * gone for the layers above. By the OCI image spec a whiteout hides lower layers only, and linksAfter
 * keeps the layer's own link; but containerd and Docker remove whatever is at the whiteout's path when they
 * reach it, so a whiteout listed after the link (no build tool writes that order; a crafted layer may)
 * removes it. The facts do not keep the order: a layer above whose paths go through such a link is read
 * both ways (lower-links.ts stepOver, landedWithoutLinks), and only such a layer is not exact.
 */
export function ownLinksWhitedOut(facts: LayerFacts): Array<[path: string, target: string]> {
  if (!facts.symlinks?.length || facts.whiteouts.length === 0) return [];
  const whitedOut = new Set(facts.whiteouts.filter((w) => !w.opaque).map((w) => w.path));
  if (whitedOut.size === 0) return [];
  const hit = (path: string) => whitedOut.has(path) || ancestors(path).some((a) => whitedOut.has(a));
  return facts.symlinks.filter((l) => hit(l.path)).map((l) => [l.path, l.target]);
}

/**
 * Whether a recorded path of the layer lies where one of its own whited-out links leads: the analyzer put
 * the members it wrote through the link there (layer-symlinks.ts), while an unpacker that met the whiteout
 * first wrote them into a new folder at the link's path. Either may be right.
 */
export function writesThroughWhitedOutLink(facts: LayerFacts): boolean {
  const whitedOut = ownLinksWhitedOut(facts);
  if (whitedOut.length === 0) return false;
  return pathsIn(facts).some(underAny(whitedOut.map(([path, target]) => leadsTo(path, target))));
}

/** Where a symlink at `path` to `target` leads, one hop: relative targets from the link's folder. */
function leadsTo(path: string, target: string): string {
  return normalizeTarPath(
    target.startsWith('/') ? target : `${path.slice(0, path.lastIndexOf('/'))}/${target}`,
  );
}
