import type { Database, Statement } from 'better-sqlite3';
import type { LayerFacts } from '../analyzer/facts.js';
import { runSteps, type Steps } from '../core/steps.js';
import { FindingStore } from './finding-store.js';
import { type ImageRow, ImageStore } from './image-store.js';
import { LayerStore } from './layer-store.js';
import type { ImageEvidence } from './rows.js';

/**
 * An image's layers, base first, with their stored facts: what the matcher needs, without network.
 * `facts` is null for a layer whose analysis failed (`layers.status = 'failed'`).
 */
export type LayerStack = Array<{ digest: string; facts: LayerFacts | null }>;

export interface RematchResult {
  /** Images whose findings were replaced. */
  images: number;
  /** Of those, images matched without some layer, whose analysis failed: their findings come from the rest. */
  withFailedLayers: number;
  /** Images skipped because some layer is still pending analysis: they are matched once it is analyzed. */
  skipped: string[];
  /** Findings rows written in total. */
  findings: number;
  /**
   * With `loadedSetIds`: the findings of other sets that the re-matched images lost (`<id>@<version>` →
   * rows), since an image's findings are replaced as a whole.
   */
  removedOfOtherSets?: Record<string, number>;
}

/** How far a rematch has come: what it did so far, and how many images it has yet to look at. */
export interface RematchProgress {
  result: RematchResult;
  imagesLeft: number;
}

export interface RematchOptions {
  /** Recorded on every re-matched image (see ImageStore.needingMatch). */
  matchFingerprint?: string;
  /** Only these images (default: every image). */
  imageDigests?: readonly string[];
  /** The ids of the IOC sets `match` applies: findings of other sets removed are counted (removedOfOtherSets). */
  loadedSetIds?: readonly string[];
}

/** How many layers' facts to keep in memory while walking images: base layers are shared by most images. */
const FACTS_CACHE = 64;

/**
 * Stored facts of recently used layers. A layer's facts change only with its row (markAnalyzed, markFailed),
 * so an entry is used only while the row's status, analysis time, attempts, selection and analyzer version
 * are those it was loaded with: a cache that outlives a transaction (kept by a crawl run, across items, or
 * filled in a transaction rolled back) never serves facts the dataset no longer holds.
 */
export class LayerFactsCache {
  private readonly layers: LayerStore;
  private readonly entries = new Map<string, { stamp: string; facts: LayerFacts | undefined }>();

  constructor(
    db: Database,
    private readonly size = FACTS_CACHE,
  ) {
    this.layers = new LayerStore(db);
  }

  /** The layer's facts, as LayerStore.loadFacts gives them (undefined unless analyzed). */
  get(digest: string): LayerFacts | undefined {
    const row = this.layers.get(digest);
    const stamp = row
      ? `${row.status}|${row.analyzedAt}|${row.attempts}|${row.selection}|${row.analyzerVersion}`
      : '';
    const kept = this.entries.get(digest);
    if (kept?.stamp === stamp) {
      // Used again: to the back of the eviction order. A shared base keeps its facts object, and with it
      // the resolution memoized on it (lower-links.ts), however many other layers pass through.
      this.entries.delete(digest);
      this.entries.set(digest, kept);
      return kept.facts;
    }
    const facts = row?.status === 'analyzed' ? this.layers.loadFacts(digest) : undefined;
    this.entries.delete(digest);
    if (this.entries.size >= this.size) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(digest, { stamp, facts });
    return facts;
  }
}

/** The image-level matcher: evidence from an image's layer stack (the analyzer's, passed in). */
export type ImageMatcher = (layers: LayerStack, image: ImageRow) => ImageEvidence[];

/**
 * Re-applies IOC rules to the stored facts of images and replaces their findings, one transaction per image
 * (nested in the caller's when there is one). Its statements are prepared once, so a crawl keeps one and
 * matches a few images per item with it; `facts` is kept across calls.
 */
export class Rematcher {
  private readonly images: ImageStore;
  private readonly findings: FindingStore;
  private readonly otherSets: Statement;

  constructor(
    db: Database,
    private readonly facts: LayerFactsCache = new LayerFactsCache(db),
  ) {
    this.images = new ImageStore(db);
    this.findings = new FindingStore(db);
    this.otherSets = db.prepare(
      `SELECT ioc_set_id || '@' || ioc_set_version AS label, count(*) AS n FROM findings
        WHERE image_digest = ? AND ioc_set_id NOT IN (SELECT value FROM json_each(?)) GROUP BY label`,
    );
  }

  /** Matches the images (`opts.imageDigests`, default every image) and replaces their findings. */
  run(match: ImageMatcher, runId: number | null, opts: RematchOptions = {}): RematchResult {
    return runSteps(this.steps(match, runId, opts));
  }

  /**
   * The same, one image a step: each step ends with the image's transaction committed, so a caller that
   * stops between steps (a rematch that got a SIGINT) leaves every image either as it was or matched anew.
   */
  *steps(
    match: ImageMatcher,
    runId: number | null,
    opts: RematchOptions = {},
  ): Steps<RematchProgress, RematchResult> {
    const { images, findings } = this;
    const loaded = opts.loadedSetIds ? JSON.stringify(opts.loadedSetIds) : null;
    const result: RematchResult = { images: 0, withFailedLayers: 0, skipped: [], findings: 0 };
    const removed: Record<string, number> = {};
    if (loaded !== null) result.removedOfOtherSets = removed;
    const digests = opts.imageDigests ?? images.allDigests();
    for (const [i, digest] of digests.entries()) {
      yield { result, imagesLeft: digests.length - i };
      const image = images.get(digest);
      if (!image) continue;
      const stack: LayerStack = [];
      let pending = false;
      let failed = false;
      for (const l of images.layers(digest)) {
        // A failed layer stays failed until a later crawl analyzes it (LayerStore then clears the image's
        // fingerprint), so the image is matched without it now: a backdoored base layer must not go
        // unreported because an upper layer was corrupt or over a limit. A pending layer will be analyzed.
        const facts = l.status === 'failed' ? null : this.facts.get(l.digest);
        if (facts === undefined) {
          pending = true;
          break;
        }
        if (facts === null) failed = true;
        stack.push({ digest: l.digest, facts });
      }
      if (pending) {
        result.skipped.push(digest);
        continue;
      }
      if (failed) result.withFailedLayers++;
      const evidence = match(stack, image);
      if (loaded !== null) {
        // Every finding of the image goes (replaceForImage below), those of the sets not loaded with them.
        for (const r of this.otherSets.all(digest, loaded) as Array<{ label: string; n: number }>) {
          removed[r.label] = (removed[r.label] ?? 0) + r.n;
        }
      }
      result.findings += findings.replaceForImage(
        digest,
        image.platform,
        evidence,
        runId,
        opts.matchFingerprint === undefined ? {} : { matchFingerprint: opts.matchFingerprint },
      );
      result.images++;
    }
    return result;
  }
}

/**
 * Re-applies IOC rules to the stored facts of every image and replaces its findings, one transaction per
 * image (a kill leaves every image either old or new, and running it again converges). `match` is the
 * analyzer's image-level matcher, passed in so db/ does not depend on analyzer/.
 */
export function rematchAll(
  db: Database,
  match: ImageMatcher,
  runId: number | null,
  opts: RematchOptions = {},
): RematchResult {
  return new Rematcher(db).run(match, runId, opts);
}
