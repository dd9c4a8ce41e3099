import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LayerFacts } from '../analyzer/facts.js';
import { FindingStore } from './finding-store.js';
import { ImageStore } from './image-store.js';
import { LayerStore } from './layer-store.js';
import { ManifestStore } from './manifest-store.js';
import { LayerFactsCache, Rematcher } from './rematch.js';
import type { ImageEvidence } from './rows.js';
import { openTempDataset, type TempDataset } from './test-fixtures/temp-dataset.js';

const L = `sha256:${'a'.repeat(64)}`;
const IMG = `sha256:${'b'.repeat(64)}`;

function facts(version: string): LayerFacts {
  return {
    compression: 'gzip',
    compressedBytes: 1,
    uncompressedBytes: 1,
    entryCount: 1,
    files: [],
    packages: [
      { name: 'liblzma5', version, architecture: 'amd64', source: null, status: null, statusFile: '/s' },
    ],
    md5sums: [],
    osRelease: [],
    whiteouts: [],
    signatureHits: [],
    selection: 'sel',
  };
}

let dataset: TempDataset;
let db: Database;
let layers: LayerStore;
beforeEach(() => {
  dataset = openTempDataset('hubcrawl-rematch-');
  db = dataset.db;
  layers = new LayerStore(db);
});
afterEach(() => dataset.remove());

describe('LayerFactsCache', () => {
  it('keeps the facts object of a layer in use (a shared base) while others come and go', () => {
    const digests = ['a', 'b', 'c'].map((c) => `sha256:${c.repeat(64)}`);
    for (const d of digests) layers.markAnalyzed(d, facts('1'), 'analyzer-1');
    const cache = new LayerFactsCache(db, 2);
    const base = cache.get(digests[0]!);
    cache.get(digests[1]!);
    expect(cache.get(digests[0]!)).toBe(base);
    cache.get(digests[2]!); // evicts the least recently used: b, not the base
    expect(cache.get(digests[0]!)).toBe(base);
  });

  it('serves a layer’s new facts once it is analyzed again, and none once its analysis is rolled back', () => {
    const cache = new LayerFactsCache(db);
    expect(cache.get(L)).toBeUndefined();
    layers.markAnalyzed(L, facts('5.6.1-1'), 'analyzer-1');
    expect(cache.get(L)?.packages[0]?.version).toBe('5.6.1-1');
    layers.markAnalyzed(L, facts('5.6.1-2'), 'analyzer-1');
    expect(cache.get(L)?.packages[0]?.version).toBe('5.6.1-2');
    // Kept by a crawl across items: facts read inside a transaction that rolls back are not served after it.
    expect(() =>
      db.transaction(() => {
        layers.markAnalyzed(L, facts('9.9.9-9'), 'analyzer-1');
        expect(cache.get(L)?.packages[0]?.version).toBe('9.9.9-9');
        throw new Error('disk full');
      })(),
    ).toThrow('disk full');
    expect(cache.get(L)?.packages[0]?.version).toBe('5.6.1-2');
  });
});

describe('Rematcher', () => {
  it('counts the findings of the sets not loaded that a match removes', () => {
    new ManifestStore(db).put({
      digest: IMG,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      kind: 'image',
      raw: Buffer.from('x'),
      configDigest: null,
      runId: null,
    });
    new ImageStore(db).put({
      digest: IMG,
      platform: { os: 'linux', architecture: 'amd64' },
      configDigest: null,
      layers: [{ digest: L, mediaType: null, size: 1 }],
    });
    layers.markAnalyzed(L, facts('5.6.1-1'), 'analyzer-1');
    const evidence = (set: string, rule: string): ImageEvidence => ({
      iocSetId: set,
      iocSetVersion: '1',
      ruleId: rule,
      kind: 'dpkg-version',
      path: '/s',
      value: 'liblzma5=5.6.1-1',
      layerDigest: L,
      layerIndex: 0,
      inFinalFs: true,
    });
    new FindingStore(db).replaceForImage(
      IMG,
      'linux/amd64',
      [evidence('xz', 'r1'), evidence('custom', 'c1'), evidence('custom', 'c2')],
      null,
    );
    const result = new Rematcher(db).run(() => [evidence('xz', 'r1')], null, { loadedSetIds: ['xz'] });
    expect(result).toMatchObject({ images: 1, findings: 1, removedOfOtherSets: { 'custom@1': 2 } });
  });
});
