import type { LayerFacts } from '../facts.js';

/** A layer's facts for matcher and store tests: nothing recorded, except what `p` gives. */
export function layerFacts(p: Partial<LayerFacts> = {}): LayerFacts {
  return {
    compression: 'gzip',
    compressedBytes: 0,
    uncompressedBytes: 0,
    entryCount: 0,
    files: [],
    packages: [],
    md5sums: [],
    osRelease: [],
    whiteouts: [],
    signatureHits: [],
    selection: 'x',
    ...p,
  };
}
