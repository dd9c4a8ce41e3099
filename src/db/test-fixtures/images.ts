import type { Database } from 'better-sqlite3';
import { ImageStore } from '../image-store.js';
import { ManifestStore } from '../manifest-store.js';

/** Records a linux/amd64 image with these layers, base first: its manifest row first, as the crawl does. */
export function recordImage(db: Database, digest: string, layers: readonly string[]): void {
  new ManifestStore(db).put({
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    kind: 'image',
    raw: Buffer.from(digest),
    configDigest: null,
    runId: null,
  });
  new ImageStore(db).put({
    digest,
    platform: { os: 'linux', architecture: 'amd64' },
    configDigest: null,
    layers: layers.map((l) => ({ digest: l, mediaType: null, size: 1 })),
  });
}
