import type { Logger } from '../core/log.js';
import type { CrawlProgress } from '../pipeline/run.js';

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** One status line: what the crawl has done and what it waits for. */
export function progressLine(p: CrawlProgress, now = Date.now()): string {
  const c = p.counters;
  const parts = [
    `repos ${c.repositories ?? 0}`,
    `tags ${c.tags ?? 0}`,
    `images ${c.images ?? 0}`,
    `layers ${c.layersAnalyzed ?? 0} (+${c.layersReused ?? 0} known)`,
    mb(c.layerBytes ?? 0),
    `pulls ${p.http.countedPulls}`,
    `retries ${p.http.retries}`,
    `failed ${c.itemsFailed ?? 0}`,
    `queued ${p.open}`,
  ];
  if (p.rateLimitedUntil) parts.push(`rate-limited, ${Math.ceil((p.rateLimitedUntil - now) / 1000)}s left`);
  return parts.join(' · ');
}

/**
 * On a terminal, a status line redrawn in place on stderr; elsewhere (cron, CI, a pipe), a plain
 * log line at most every `logEveryMs`, so logs stay readable.
 */
export function createProgressReporter(opts: {
  stream: NodeJS.WriteStream;
  log: Logger;
  quiet: boolean;
  logEveryMs?: number;
}): { update(p: CrawlProgress): void; done(): void } {
  if (opts.quiet) return { update() {}, done() {} };
  if (opts.stream.isTTY) {
    let drawn = false;
    return {
      update(p) {
        // A pty that reports no size says 0 columns: unknown width, not "cut everything".
        const width = opts.stream.columns || 120;
        opts.stream.write(`\r\x1b[K${progressLine(p).slice(0, width - 1)}`);
        drawn = true;
      },
      done() {
        if (drawn) opts.stream.write('\n');
      },
    };
  }
  const every = opts.logEveryMs ?? 30_000;
  let last = 0;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < every) return;
      last = now;
      opts.log.info(
        { progress: p.counters, pulls: p.http.countedPulls, queued: p.open },
        progressLine(p, now),
      );
    },
    done() {},
  };
}
