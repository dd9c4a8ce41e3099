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
 * replaced that way stays in place here; nothing is known of a layer whose analysis failed; and the order
 * of a layer's entries is kept only so far (placementsInOtherOrders). For such a stack, matchImage reads it several
 * ways (as recorded, and each layer's other placements) and calls evidence gone only when all agree. A
 * layer an analyzer before version 6 read has no recorded symlinks (LayerFacts.symlinks undefined). A
 * relative link of an upper layer that itself sits under a lower link was followed by the analyzer from
 * its tar name's folder: a `..` in its target then put the members written through it at a path where
 * they are not. That path is kept (the tar names are
 * not stored), and the place an unpacker used is read as one more placement (landedThroughOwnLinks), with
 * the layers above resolved through the links it leaves (resolveWithPlacement): a symlink so misplaced
 * carries what they write through it to its real place in that reading, so its removal there is no
 * "gone". Their findings still name the analyzer's path (docs/schema.md); keeping the members' tar names
 * would mend that.
 */
import { cachedIn } from '../../core/cached.js';
import type { FileFact, LayerFacts, SignatureHitFact, SymlinkFact } from '../facts.js';
import { LayerSymlinks } from '../layer-symlinks.js';
import { ancestors, normalizeTarPath } from '../paths.js';
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
   * Whether this layer's paths, and those of every layer below, are where an unpacker puts them as far as
   * the facts tell: every layer analyzed, with its directory entries recorded (LayerFacts.dirs), and none
   * whose entries' order, which the facts do not keep, could move its paths (placementsInOtherOrders, and
   * resolveAround's guess) or could have removed a link they go through (ownLinksWhitedOut).
   */
  exact: boolean;
  /**
   * Other places the layer's paths may be, for a layer that is not exact (matchImage reads each as one
   * more possible placement): landed after every directory entry ended its links (landedAfterEntries),
   * through its own climbing relative links as an unpacker follows them (landedThroughOwnLinks),
   * without the lower links their own layer may have whited out (landedWithoutLinks), and in the entry
   * orders the facts do not keep (placementsInOtherOrders).
   */
  alternatives: LayerFacts[];
}

const unmoved = (path: string): string => path;

/** One layer resolved, and the symlinks in the filesystem once it is applied; `next` per layer above. */
interface Step {
  resolution: LayerResolution;
  links: Map<string, string>;
  /** Those of `links` that may be gone, whited out by their own layer (ownLinksWhitedOut). */
  mayBeGone: ReadonlyMap<string, string>;
  next: WeakMap<object, Step>;
}

const NONE: ReadonlyMap<string, string> = new Map();

/** Stands for a failed layer (no facts) as a key of Step.next. */
const FAILED_LAYER = {};
/**
 * Resolved stacks by the identity of their layers' facts: images that share a base (most of a crawl) share
 * its resolution, as they share its facts objects (LayerFactsCache). Entries go with those objects.
 */
const resolvedStacks: WeakMap<object, Step> = new WeakMap();

/** Each layer resolved through the symlinks the layers below it leave (see LayerResolution). */
export function resolveStack(layers: ReadonlyArray<LayerFacts | null>): LayerResolution[] {
  return stepsOver(layers, resolvedStacks, { links: new Map(), mayBeGone: NONE }, true).map(
    (s) => s.resolution,
  );
}

/**
 * The stack read with layer `at` placed as `alternative` (one of its LayerResolution.alternatives), and the
 * layers above it resolved through the symlinks that placement leaves, not those of the main reading: a
 * link the layer made through its own climbing link, placed where an unpacker puts it, then carries what
 * the layers above write through it there too. The layers below are as resolved.
 */
export function resolveWithPlacement(
  layers: ReadonlyArray<LayerFacts | null>,
  at: number,
  alternative: LayerFacts,
): Array<LayerFacts | null> {
  const upTo = stepsOver(
    layers.slice(0, at + 1),
    resolvedStacks,
    { links: new Map(), mayBeGone: NONE },
    true,
  );
  const below = upTo.slice(0, at);
  // By the layer's step, then the placement: a placement may be the layer's own facts object, which images
  // on other bases share (LayerFactsCache), and the links it leaves depend on what is below.
  const byPlacement = cachedIn(placements, upTo[at] as Step, () => new WeakMap<LayerFacts, Step>());
  const placed = cachedIn(byPlacement, alternative, (): Step => {
    const lower = linksLeftByDirs(below.at(-1)?.links ?? new Map(), layers[at] as LayerFacts).links;
    // Only its facts and the links it leaves are read; the mappings are not this placement's.
    const resolution = {
      facts: alternative,
      member: unmoved,
      listed: unmoved,
      exact: false,
      alternatives: [],
    };
    // mayBeGone only decides exactness, and no layer above a placement is exact.
    return { resolution, links: linksAfter(lower, alternative), mayBeGone: NONE, next: new WeakMap() };
  });
  const above = stepsOver(layers.slice(at + 1), placed.next, placed, false);
  return [...below, placed, ...above].map((s) => s.resolution.facts);
}

/** The steps of resolveWithPlacement by the layer's step and alternative placement: the layers above go with it. */
const placements: WeakMap<Step, WeakMap<LayerFacts, Step>> = new WeakMap();

/** The links a layer lands through, and those of them that may be gone (Step). */
type LinksBelow = Pick<Step, 'links' | 'mayBeGone'>;

/**
 * Each layer resolved over the links the ones before it leave, starting from `start` (and whether the
 * layers under those are exact), its steps memoized in `cache` by the identity of each layer's facts.
 */
function stepsOver(
  layers: ReadonlyArray<LayerFacts | null>,
  cache: WeakMap<object, Step>,
  start: LinksBelow,
  exact: boolean,
): Step[] {
  let steps = cache;
  let below = start;
  let exactBelow = exact;
  return layers.map((facts) => {
    const [before, exactBefore] = [below, exactBelow];
    const step: Step = cachedIn(steps, facts ?? FAILED_LAYER, () => stepOver(before, facts, exactBefore));
    steps = step.next;
    below = step;
    exactBelow = step.resolution.exact;
    return step;
  });
}

/** One layer resolved over the links the layers below leave. */
function stepOver(
  { links: below, mayBeGone: mayBeGoneBelow }: LinksBelow,
  facts: LayerFacts | null,
  exactBelow: boolean,
): Step {
  if (facts === null) {
    // A failed layer is taken to change nothing, as everywhere in matching; what it did is not known.
    const resolution = { facts, member: unmoved, listed: unmoved, exact: false, alternatives: [] };
    return { resolution, links: below, mayBeGone: mayBeGoneBelow, next: new WeakMap() };
  }
  const { links: lower, endedBy } = linksLeftByDirs(below, facts);
  // Every path landed after the entries that ended links: for a layer whose entries ended none, the
  // resolution itself.
  const afterEntries = resolveLayer(facts, lower);
  const resolution =
    endedBy.length === 0
      ? afterEntries
      : resolveAround(facts, resolveLayer(facts, below), afterEntries, endedBy);
  const links = linksAfter(lower, resolution.facts);
  const misfollowed = misfollowedLinks(facts, resolution);
  const withoutGone = landedWithoutLinks(facts, lower, mayBeGoneBelow, resolution.facts);
  const byOrder = placementsInOtherOrders(facts, resolution, { lower, after: links });
  const exact =
    exactBelow &&
    facts.dirs !== undefined &&
    !facts.lateDirs?.length &&
    misfollowed.length === 0 &&
    withoutGone === undefined &&
    !writesThroughWhitedOutLink(facts) &&
    byOrder.length === 0 &&
    // A path not spelled under an entry that ended a link landed through the link (resolveAround), yet may
    // have come after the entry, as landedAfterEntries reads it.
    !placedApart(resolution.facts, afterEntries.facts);
  const alternatives = exact
    ? []
    : [
        landedAfterEntries(facts, below, { lower, afterEntries, resolved: resolution.facts }),
        landedThroughOwnLinks(facts, lower, resolution, misfollowed),
        landedThroughOwnLinks(facts, lower, resolution, misfollowed, { chained: true }),
        landedThroughOwnLinks(facts, lower, resolution, misfollowed, { landingKept: true }),
        landedThroughOwnLinks(facts, lower, resolution, misfollowed, { eachOther: true }),
        withoutGone,
        ...byOrder,
      ].filter((f): f is LayerFacts => f !== undefined);
  const mayBeGone = stillStanding([...mayBeGoneBelow, ...ownLinksWhitedOut(resolution.facts)], links);
  return { resolution: { ...resolution, exact, alternatives }, links, mayBeGone, next: new WeakMap() };
}

/**
 * The layer landed through `lower` without the links that may be gone; undefined when that places no path
 * otherwise than `resolved` does (no path of the layer goes through one).
 */
function landedWithoutLinks(
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

/** Those of `candidates` that are in `links` with the same target (NONE when none is). */
function stillStanding(
  candidates: Iterable<readonly [string, string]>,
  links: ReadonlyMap<string, string>,
): ReadonlyMap<string, string> {
  const standing = [...candidates].filter(([path, target]) => links.get(path) === target);
  return standing.length === 0 ? NONE : new Map(standing);
}

/**
 * The layer's own relative links whose target climbs (`rel -> ../bar`) in a folder a lower link moved. The
 * analyzer, knowing no lower link, followed each from the folder of its tar name (layer-symlinks.ts), so
 * the members recorded through it are not where an unpacker puts them (landedThroughOwnLinks).
 */
function misfollowedLinks(facts: LayerFacts, resolution: ResolvedLayer): SymlinkFact[] {
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

/** Whether two placements of one layer's facts put some path apart (pathsIn keeps their order). */
function placedApart(a: LayerFacts, b: LayerFacts): boolean {
  if (a === b) return false;
  const [pa, pb] = [pathsIn(a), pathsIn(b)];
  return pa.some((p, i) => p !== pb[i]);
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
function landedThroughOwnLinks(
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
function landedAfterEntries(
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

/**
 * A layer whose directory entries ended lower links: a path spelled under such an entry lands in the new
 * directory (DirectoryOrder saw nothing there before the entry); any other lands through the links as they
 * stood before, as if listed before the entry. The second guess may be wrong, so such a layer is never
 * exact (stepOver): matchImage also reads it landed after every entry (landedAfterEntries).
 */
function resolveAround(
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
function underAny(dirs: readonly string[]): (path: string) => boolean {
  return (p) => dirs.some((d) => d === '/' || p === d || p.startsWith(`${d}/`));
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
 * Two more are read elsewhere: a link one of its directory entries ended (resolveAround, landedAfterEntries;
 * stepOver compares `afterEntries`), and a misfollowed link of its own (misfollowedLinks).
 */
function placementsInOtherOrders(
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
 * both ways (stepOver, landedWithoutLinks), and only such a layer is not exact.
 */
function ownLinksWhitedOut(facts: LayerFacts): Array<[path: string, target: string]> {
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
function writesThroughWhitedOutLink(facts: LayerFacts): boolean {
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
 * The lower links still standing when a layer's members land: a directory entry replaces a symlink at its
 * path (containerd and umoci remove what is there unless it is a directory), so `lib/` written before
 * `lib/x` over `lib -> usr/lib` puts `x` in a new `/lib`. Entries are taken in archive order, each landing
 * through the links the ones before it left; a tar writer lists a directory before what it holds.
 * Returns the links left, and the entries (as recorded) that ended one.
 */
function linksLeftByDirs(
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
  return { facts: resolveFacts(facts, below.size > 0, member, listed), member, listed };
}

/** A resolver per map of links, shared by every layer resolved over the same links (only read). */
const resolvers = new WeakMap<ReadonlyMap<string, string>, LayerSymlinks>();

function resolverOf(links: ReadonlyMap<string, string>): LayerSymlinks {
  return cachedIn(resolvers, links, () => new LayerSymlinks(links));
}

/**
 * Every path resolveFacts places by `member`: pathsIn without the paths md5sums files list (`listed`
 * places those), and an opaque marker by the folder it hides (hiddenBy).
 * Kept beside resolveFacts so that a pass that tests only these paths sees what resolveFacts moves.
 */
function memberPathsIn(f: LayerFacts): string[] {
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
function resolveFacts(
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

/**
 * The symlinks once `layer` (paths resolved) is applied: those below it that it whites out, hides with an
 * opaque marker, or puts something else (a symlink too) at or above are gone; its own are added.
 */
function linksAfter(below: Map<string, string>, layer: LayerFacts): Map<string, string> {
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
