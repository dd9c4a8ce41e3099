import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LayerFacts } from '../analyzer/facts.js';
import { Frontier } from './frontier.js';
import { ImageStore } from './image-store.js';
import { LayerStore } from './layer-store.js';
import { RepositoryStore } from './repository-store.js';
import { recordImage } from './test-fixtures/images.js';
import { openTempDataset, type TempDataset } from './test-fixtures/temp-dataset.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
/** The layer shared by every image below, as a base layer is. */
const BASE = digest('0');

function facts(over: Partial<LayerFacts> = {}): LayerFacts {
  return {
    compression: 'gzip',
    compressedBytes: 1,
    uncompressedBytes: 1,
    entryCount: 0,
    files: [],
    packages: [],
    md5sums: [],
    osRelease: [],
    whiteouts: [],
    signatureHits: [],
    selection: 'sel',
    ...over,
  };
}

let dataset: TempDataset;
let db: Database;
let images: ImageStore;
let layers: LayerStore;
let frontier: Frontier;

beforeEach(() => {
  dataset = openTempDataset('hubcrawl-images-');
  db = dataset.db;
  images = new ImageStore(db);
  layers = new LayerStore(db);
  frontier = new Frontier(db);
});
afterEach(() => dataset.remove());

/** Records image `c` (manifest row first, as the crawl does) with these layers, base first. */
function image(c: string, layerDigests: readonly string[]): string {
  const d = digest(c);
  recordImage(db, d, layerDigests);
  return d;
}

/** A layer item of `layer` left in `state` (keys.ts: `<digest>|<analyzer>|<selection>`). */
function layerItem(layer: string, state: 'pending' | 'in-progress' | 'done' | 'failed'): void {
  const id = frontier.enqueue('layer', `${layer}|analyzer-1|sel`);
  db.prepare('UPDATE frontier SET state = ? WHERE id = ?').run(state, id);
}

describe('ImageStore.matchableWithLayer', () => {
  it('lists the images of a layer whose every layer is analyzed or failed for good, and no other', () => {
    layers.markAnalyzed(BASE, facts(), 'analyzer-1');
    const [l1, l2, l3, l4, l5, l6] = ['1', '2', '3', '4', '5', '6'].map(digest) as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    layers.markAnalyzed(l1, facts(), 'analyzer-1');
    const analyzed = image('a', [BASE, l1]);
    // l2 was never attempted: its image waits for it.
    const pendingLayer = image('b', [BASE, l2]);
    layers.markFailed(l3, 'CORRUPT_INPUT', 'truncated');
    layerItem(l3, 'failed');
    const failedForGood = image('c', [BASE, l3]);
    // l4 is analyzed, but its re-analysis is queued: matching now would use facts about to be replaced.
    layers.markAnalyzed(l4, facts(), 'analyzer-0');
    layerItem(l4, 'pending');
    const reanalyzing = image('d', [BASE, l4]);
    // l5 failed once and waits for its retry; l6 is being analyzed right now.
    layers.markFailed(l5, 'NETWORK', 'reset');
    layerItem(l5, 'pending');
    const retrying = image('e', [BASE, l5]);
    layerItem(l6, 'in-progress');
    const inProgress = image('f', [BASE, l6]);
    // Matched with these IOC sets already; and an image listing the base twice, listed once.
    const matched = image('g', [BASE]);
    db.prepare('UPDATE images SET match_fingerprint = ? WHERE digest = ?').run('fp', matched);
    const twice = image('h', [BASE, l1, BASE]);
    const elsewhere = image('i', [l1]);

    expect(images.matchableWithLayer(BASE, 'fp')).toEqual([analyzed, failedForGood, twice].sort());
    // Other IOC sets than its last match: the matched image is stale again.
    expect(images.matchableWithLayer(BASE, 'fp2')).toEqual([analyzed, failedForGood, matched, twice].sort());
    expect(images.matchableWithLayer(l1, 'fp')).toEqual([analyzed, twice, elsewhere].sort());
    expect(images.isMatchable(analyzed, 'fp')).toBe(true);
    expect(images.isMatchable(failedForGood, 'fp')).toBe(true);
    for (const waiting of [pendingLayer, reanalyzing, retrying, inProgress, matched]) {
      expect(images.isMatchable(waiting, 'fp')).toBe(false);
    }
    // Once the waiting layers are done, their images are matchable.
    layers.markAnalyzed(l2, facts(), 'analyzer-1');
    layers.markAnalyzed(l6, facts(), 'analyzer-1');
    db.prepare(`UPDATE frontier SET state = 'done' WHERE kind = 'layer'`).run();
    expect(images.matchableWithLayer(BASE, 'fp')).toEqual(
      [analyzed, pendingLayer, failedForGood, reanalyzing, retrying, inProgress, twice].sort(),
    );
    // A limit bounds the work of one item's transaction (RunMatcher): the first of them, in digest order.
    expect(images.matchableWithLayer(BASE, 'fp', 2)).toEqual(
      [analyzed, pendingLayer, failedForGood, reanalyzing, retrying, inProgress, twice].sort().slice(0, 2),
    );
  });

  it('reaches the images through the layer index and the frontier through its (kind, key) index', () => {
    // It runs inside a layer item's completion, and a base layer may be shared by most of the dataset:
    // neither images nor the frontier (one row per item of every run) may be scanned.
    const source = (images as unknown as { selectMatchableWithLayer: { source: string } })
      .selectMatchableWithLayer.source;
    const plan = (
      db.prepare(`EXPLAIN QUERY PLAN ${source}`).all({ layer: BASE, fingerprint: 'fp', limit: -1 }) as Array<{
        detail: string;
      }>
    ).map((r) => r.detail);
    expect(plan.some((d) => d.startsWith('SEARCH il USING INDEX image_layers_layer'))).toBe(true);
    expect(
      plan.some((d) =>
        d.startsWith('SEARCH f USING INDEX sqlite_autoindex_frontier_1 (kind=? AND key>? AND key<?)'),
      ),
    ).toBe(true);
    expect(plan.some((d) => /^SCAN (i|il|o|l|f|images|frontier)\b/.test(d))).toBe(false);
  });
});

describe('ImageStore.layerReachedInRun', () => {
  it('says whether another image listing the layer has a done manifest item of the run', () => {
    new RepositoryStore(db).upsertRepository('r.example', 'a/b');
    const manifestItem = (image: string, run: number, done: boolean) => {
      const id = frontier.enqueue('manifest', `${run}|r.example@${image}`);
      if (!done) return;
      frontier.claim(['manifest'], 10);
      frontier.complete(id);
    };
    const x = image('a', [BASE]);
    const y = image('b', [BASE]);
    manifestItem(x, 7, false);
    expect(images.layerReachedInRun(BASE, '7|', x)).toBe(false);
    // Done in another run only.
    manifestItem(y, 6, true);
    expect(images.layerReachedInRun(BASE, '7|', x)).toBe(false);
    manifestItem(y, 7, true);
    expect(images.layerReachedInRun(BASE, '7|', x)).toBe(true);
    // The image itself does not count.
    expect(images.layerReachedInRun(BASE, '7|', y)).toBe(false);
  });
});

describe('ImageStore.undecidedWithAnalyzedBase', () => {
  it('lists the images without an OS verdict on an analyzed base: all, per base layer, or one image', () => {
    const other = digest('9');
    layers.markAnalyzed(BASE, facts(), 'analyzer-1');
    layers.markAnalyzed(other, facts(), 'analyzer-1');
    const a = image('a', [BASE, digest('1')]);
    const b = image('b', [other, digest('1')]);
    const decided = image('c', [BASE]);
    images.setOsFacts(decided, { isDebianDerived: false, osId: 'alpine', osVersion: '3' });
    // Its base is not analyzed: nothing to decide from.
    image('d', [digest('2')]);
    expect(images.undecidedWithAnalyzedBase()).toEqual([
      { digest: a, baseLayer: BASE },
      { digest: b, baseLayer: other },
    ]);
    expect(images.undecidedWithAnalyzedBase({ baseLayer: BASE })).toEqual([{ digest: a, baseLayer: BASE }]);
    expect(images.undecidedWithAnalyzedBase({ image: b })).toEqual([{ digest: b, baseLayer: other }]);
    expect(images.undecidedWithAnalyzedBase({ image: decided })).toEqual([]);
  });
});
