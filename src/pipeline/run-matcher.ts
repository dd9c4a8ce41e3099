import type { Database } from 'better-sqlite3';
import type { IocSet } from '../analyzer/iocs/schema.js';
import { ImageStore } from '../db/image-store.js';
import { type ImageMatcher, LayerFactsCache, Rematcher } from '../db/rematch.js';
import type { CrawlCounters } from './counters.js';
import { decideOsFromBase, imageMatcher, matchFingerprint } from './match.js';

/**
 * Matches a crawl's images as its items complete them, inside the item's transaction (process-item.ts), so a
 * kill never leaves an item done without the images it completed matched: a killed or running crawl's
 * fully analyzed images already have their findings, in `report` and `stats`. An image is matched once all
 * its layers are done, analyzed or failed for good (ImageStore.matchableWithLayer); the end-of-run sweep
 * (matchImages) matches whatever is left: images no item of the run completed (new IOC sets over the
 * dataset), and those of a run stopped early.
 */
/**
 * At most this many images are matched in one item's transaction. A base layer shared by thousands of
 * images (re-analyzed after an analyzer or IOC set change) would otherwise make every one of them matchable
 * at once, and match them all (about 1 ms each) while the crawl's downloads wait on the blocked event loop,
 * long enough for their HTTP timeouts. Images past the cap are matched by a later item on another of their
 * layers, or by the end-of-run sweep.
 */
export const MAX_IMAGES_MATCHED_PER_ITEM = 100;

export class RunMatcher {
  private readonly images: ImageStore;
  private readonly facts: LayerFactsCache;
  private readonly rematcher: Rematcher;
  private readonly match: ImageMatcher;
  private readonly fingerprint: string;
  private readonly setIds: string[];
  /** Findings of sets not loaded that this invocation's matching removed, by `<id>@<version>`. */
  private removed: Record<string, number> = {};

  constructor(
    db: Database,
    sets: IocSet[],
    private readonly runId: number,
    private readonly counters: CrawlCounters,
  ) {
    this.images = new ImageStore(db);
    // Kept across items: a base layer's facts serve every image on it.
    this.facts = new LayerFactsCache(db);
    this.rematcher = new Rematcher(db, this.facts);
    this.match = imageMatcher(this.images, sets);
    this.fingerprint = matchFingerprint(sets);
    this.setIds = sets.map((s) => s.id);
  }

  /**
   * After a layer item's outcome that is final for the run (analyzed, found analyzed, or failed for good):
   * matches the images it completed, and gives the others on it as their base an OS verdict from it.
   */
  afterLayer(layerDigest: string): void {
    this.matchNow(this.images.matchableWithLayer(layerDigest, this.fingerprint, MAX_IMAGES_MATCHED_PER_ITEM));
    decideOsFromBase(this.images, this.images.undecidedWithAnalyzedBase({ baseLayer: layerDigest }), (l) =>
      this.facts.get(l),
    );
  }

  /** After a manifest item recorded an image (its layer items queued): matches it if every layer is done. */
  afterImage(imageDigest: string): void {
    if (this.images.isMatchable(imageDigest, this.fingerprint)) this.matchNow([imageDigest]);
    else
      decideOsFromBase(this.images, this.images.undecidedWithAnalyzedBase({ image: imageDigest }), (l) =>
        this.facts.get(l),
      );
  }

  /** Findings of sets not loaded that this invocation's matching removed, for one warning at the end. */
  removedOfUnloadedSets(): Record<string, number> {
    return { ...this.removed };
  }

  /** Puts back a tally taken with removedOfUnloadedSets (the item's transaction rolled back). */
  restoreRemoved(tally: Record<string, number>): void {
    this.removed = { ...tally };
  }

  private matchNow(digests: readonly string[]): void {
    if (digests.length === 0) return;
    const r = this.rematcher.run(this.match, this.runId, {
      matchFingerprint: this.fingerprint,
      loadedSetIds: this.setIds,
      imageDigests: digests,
    });
    this.counters.findings += r.findings;
    this.counters.imagesMatched += r.images;
    this.counters.imagesWithFailedLayers += r.withFailedLayers;
    for (const [label, n] of Object.entries(r.removedOfOtherSets ?? {})) {
      this.removed[label] = (this.removed[label] ?? 0) + n;
      this.counters.findingsRemovedOfUnloadedSets += n;
    }
  }
}
