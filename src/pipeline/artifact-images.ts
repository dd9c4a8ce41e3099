/**
 * OCI artifacts (cosign signatures, SBOMs, charts) that a hubcrawl from before they were told apart
 * recorded as `unknown/unknown` images: their payload "layers" failed as corrupt tar, so every later run
 * retried them and `report` counted the images as not known clean. A crawl or rematch forgets those image
 * rows (ImageStore.forget); their manifests stay, so the manifest handler skips them without a GET. Only
 * images recorded without a platform are read again: an artifact's config names none.
 */
import type { Database } from 'better-sqlite3';
import type { Logger } from '../core/log.js';
import { parseManifest } from '../crawler/registry/manifests.js';
import { ImageStore } from '../db/image-store.js';

/** Forgets the image rows whose manifest is an artifact; returns how many. */
export function forgetArtifactImages(db: Database, log: Logger): number {
  const images = new ImageStore(db);
  let forgotten = 0;
  for (const c of images.withoutPlatform()) {
    let kind: string;
    try {
      const source = `stored manifest ${c.digest}`;
      kind = parseManifest({ raw: c.raw, contentType: c.mediaType, source, maxBytes: c.raw.length }).parsed
        .kind;
    } catch {
      continue; // Not for this pass to judge: the manifest handler reports what is wrong with it.
    }
    if (kind !== 'artifact') continue;
    images.forget(c.digest);
    forgotten += 1;
  }
  if (forgotten > 0) {
    log.info(
      { images: forgotten },
      'forgot image rows that an older hubcrawl recorded for OCI artifacts (signatures, SBOMs): they are no images',
    );
  }
  return forgotten;
}
