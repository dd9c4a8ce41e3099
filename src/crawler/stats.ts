/**
 * Counters for every request and its outcome, for the crawl's stats and the progress display.
 * Library code: it emits events, it does not log.
 */

/** What the HTTP layer reports as it goes. */
export type HttpEvent =
  | { type: 'response'; method: string; host: string; url: string; status: number; attempt: number }
  | {
      type: 'retry';
      method: string;
      host: string;
      url: string;
      attempt: number;
      delayMs: number;
      reason: string;
    }
  | { type: 'rate-limited'; host: string; url: string; pauseMs: number; reason: string; extended: boolean }
  | { type: 'pull'; host: string; url: string; used: number; max: number | undefined }
  | { type: 'failure'; method: string; host: string; url: string; error: string };

/** A plain-object copy of the counters. */
export interface RequestStatsSnapshot {
  requests: number;
  byMethod: Record<string, number>;
  byStatusClass: Record<string, number>;
  retries: number;
  rateLimitPauses: number;
  rateLimitPauseMs: number;
  countedPulls: number;
  bytesReceived: number;
  failures: number;
}

/** Mutable counters owned by one HttpClient. */
export class RequestStats {
  requests = 0;
  readonly byMethod: Record<string, number> = {};
  /** `2xx`, `3xx`, `4xx`, `5xx`, or `network` for requests that got no status. */
  readonly byStatusClass: Record<string, number> = {};
  retries = 0;
  rateLimitPauses = 0;
  rateLimitPauseMs = 0;
  countedPulls = 0;
  bytesReceived = 0;
  failures = 0;

  constructor(private readonly onEvent?: (e: HttpEvent) => void) {}

  /** Emits to the listener; a throwing listener must not break a request. */
  emit(e: HttpEvent): void {
    try {
      this.onEvent?.(e);
    } catch {
      // The progress display is best effort.
    }
  }

  recordResponse(method: string, host: string, url: string, status: number, attempt: number): void {
    this.requests += 1;
    this.byMethod[method] = (this.byMethod[method] ?? 0) + 1;
    const cls = `${Math.floor(status / 100)}xx`;
    this.byStatusClass[cls] = (this.byStatusClass[cls] ?? 0) + 1;
    this.emit({ type: 'response', method, host, url, status, attempt });
  }

  recordNetworkError(method: string): void {
    this.requests += 1;
    this.byMethod[method] = (this.byMethod[method] ?? 0) + 1;
    this.byStatusClass.network = (this.byStatusClass.network ?? 0) + 1;
  }

  recordRetry(
    method: string,
    host: string,
    url: string,
    attempt: number,
    delayMs: number,
    reason: string,
  ): void {
    this.retries += 1;
    this.emit({ type: 'retry', method, host, url, attempt, delayMs, reason });
  }

  recordRateLimit(host: string, url: string, pauseMs: number, reason: string, extended: boolean): void {
    // Only a 429 that starts a pause counts as one; followers share it.
    if (extended) {
      this.rateLimitPauses += 1;
      this.rateLimitPauseMs += pauseMs;
    }
    this.emit({ type: 'rate-limited', host, url, pauseMs, reason, extended });
  }

  recordPull(host: string, url: string, max: number | undefined): void {
    this.countedPulls += 1;
    this.emit({ type: 'pull', host, url, used: this.countedPulls, max });
  }

  recordBytes(n: number): void {
    this.bytesReceived += n;
  }

  recordFailure(method: string, host: string, url: string, error: string): void {
    this.failures += 1;
    this.emit({ type: 'failure', method, host, url, error });
  }

  snapshot(): RequestStatsSnapshot {
    return {
      requests: this.requests,
      byMethod: { ...this.byMethod },
      byStatusClass: { ...this.byStatusClass },
      retries: this.retries,
      rateLimitPauses: this.rateLimitPauses,
      rateLimitPauseMs: this.rateLimitPauseMs,
      countedPulls: this.countedPulls,
      bytesReceived: this.bytesReceived,
      failures: this.failures,
    };
  }
}
