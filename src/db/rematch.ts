import type { Database } from 'better-sqlite3';
import type { LayerFacts } from '../analyzer/facts.js';
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
}

export interface RematchOptions {
  /** Recorded on every re-matched image (see ImageStore.needingMatch). */
  matchFingerprint?: string;
  /** Only these images (default: every image). */
  imageDigests?: readonly string[];
}

/** How many layers' facts to keep in memory while walking images: base layers are shared by most images. */
const FACTS_CACHE = 64;

/**
 * Re-applies IOC rules to the stored facts of every image and replaces its findings, one transaction per
 * image (a kill leaves every image either old or new, and running it again converges). `match` is the
 * analyzer's image-level matcher, passed in so db/ does not depend on analyzer/.
 */
export function rematchAll(
  db: Database,
  match: (layers: LayerStack, image: ImageRow) => ImageEvidence[],
  runId: number | null,
  opts: RematchOptions = {},
): RematchResult {
  const images = new ImageStore(db);
  const layers = new LayerStore(db);
  const findings = new FindingStore(db);
  const cache = new Map<string, LayerFacts | undefined>();
  const factsOf = (digest: string): LayerFacts | undefined => {
    if (cache.has(digest)) return cache.get(digest);
    const facts = layers.loadFacts(digest);
    if (cache.size >= FACTS_CACHE) cache.delete(cache.keys().next().value as string);
    cache.set(digest, facts);
    return facts;
  };

  const result: RematchResult = { images: 0, withFailedLayers: 0, skipped: [], findings: 0 };
  for (const digest of opts.imageDigests ?? images.allDigests()) {
    const image = images.get(digest);
    if (!image) continue;
    const stack: LayerStack = [];
    let pending = false;
    let failed = false;
    for (const l of images.layers(digest)) {
      // A failed layer stays failed until a later crawl analyzes it (LayerStore then clears the image's
      // fingerprint), so the image is matched without it now: a backdoored base layer must not go
      // unreported because an upper layer was corrupt or over a limit. A pending layer will be analyzed.
      const facts = l.status === 'failed' ? null : factsOf(l.digest);
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
