/** What a crawl did, for the progress display and the run's recorded stats. */
export class CrawlCounters {
  repositories = 0;
  tags = 0;
  manifestsFetched = 0;
  manifestsReused = 0;
  /** Tags whose digest only a GET could tell: the registry's HEAD gave no Docker-Content-Digest. */
  tagDigestsByGet = 0;
  images = 0;
  /** Manifests that are OCI artifacts (signatures, SBOMs, Helm charts…), not images: skipped, not failed. */
  artifactsSkipped = 0;
  /** Indexes none of whose platforms `--platform` selects: nothing of them is analyzed. */
  indexesWithoutSelectedPlatform = 0;
  layersAnalyzed = 0;
  /**
   * Layers of the run's images that were already analyzed (this analyzer version, a covering selection) when
   * the run reached them, so not downloaded: each layer once per run, however many of its images use it.
   */
  layersReused = 0;
  layersSkippedNotDebian = 0;
  layerBytes = 0;
  /** Items that failed for good in this invocation (no attempts left, or not retryable). */
  itemsFailed = 0;
  /** Failed attempts that were put back to pending and tried again (the item may yet succeed). */
  itemAttemptsRetried = 0;
  /** Findings rows this invocation's matching wrote (as items completed images, then the end-of-run sweep). */
  findings = 0;
  /** Images matched: as their last layer or their manifest item completed them, or by the end-of-run sweep. */
  imagesMatched = 0;
  /** Of those, images matched without a layer that failed analysis (docs/limits.md). */
  imagesWithFailedLayers = 0;
  /** Findings of IOC sets not loaded now, removed from the images matched (warned about once per run). */
  findingsRemovedOfUnloadedSets = 0;

  snapshot(): Record<string, number> {
    return Object.fromEntries(Object.entries(this).filter(([, v]) => typeof v === 'number'));
  }

  /** Sets every count back to `snapshot` (one taken from this object). */
  restore(snapshot: Record<string, number>): void {
    Object.assign(this, snapshot);
  }
}
