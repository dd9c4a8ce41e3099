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
  layersAnalyzed = 0;
  layersReused = 0;
  layersSkippedNotDebian = 0;
  layerBytes = 0;
  /** Items that failed for good in this invocation (no attempts left, or not retryable). */
  itemsFailed = 0;
  /** Failed attempts that were put back to pending and tried again (the item may yet succeed). */
  itemAttemptsRetried = 0;
  findings = 0;

  snapshot(): Record<string, number> {
    return Object.fromEntries(Object.entries(this).filter(([, v]) => typeof v === 'number'));
  }

  /** Sets every count back to `snapshot` (one taken from this object). */
  restore(snapshot: Record<string, number>): void {
    Object.assign(this, snapshot);
  }
}
