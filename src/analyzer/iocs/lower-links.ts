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
 *
 * This file walks the stack and decides exactness; one layer's landing through the links below and the
 * links it leaves are in layer-landing.ts, its other readings in layer-readings.ts, and the placing of
 * its facts by a path mapping in placed-facts.ts.
 */
import { cachedIn } from '../../core/cached.js';
import type { LayerFacts } from '../facts.js';
import {
  linksAfter,
  linksLeftByDirs,
  NO_LINKS,
  resolveAround,
  resolveLayer,
  stillStanding,
} from './layer-landing.js';
import {
  landedAfterEntries,
  landedThroughOwnLinks,
  landedWithoutLinks,
  misfollowedLinks,
  ownLinksWhitedOut,
  placementsInOtherOrders,
  writesThroughWhitedOutLink,
} from './layer-readings.js';
import { placedApart, unmoved } from './placed-facts.js';

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

/** One layer resolved, and the symlinks in the filesystem once it is applied; `next` per layer above. */
interface Step {
  resolution: LayerResolution;
  links: Map<string, string>;
  /** Those of `links` that may be gone, whited out by their own layer (ownLinksWhitedOut). */
  mayBeGone: ReadonlyMap<string, string>;
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
  return stepsOver(layers, resolvedStacks, { links: new Map(), mayBeGone: NO_LINKS }, true).map(
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
    { links: new Map(), mayBeGone: NO_LINKS },
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
    return { resolution, links: linksAfter(lower, alternative), mayBeGone: NO_LINKS, next: new WeakMap() };
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
