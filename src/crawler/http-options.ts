/** The options of one request and of an HttpClient (http.ts re-exports both). */
import type { Dispatcher } from 'undici';
import type { HttpEvent } from './stats.js';

export interface HttpRequest {
  /**
   * GET and HEAD retry every transient failure. POST is not idempotent: it is sent again only when it
   * cannot have reached the server or was refused (connection never opened, 503, 429); see mayResend.
   */
  method?: 'GET' | 'HEAD' | 'POST';
  /**
   * POST only: the body, sent as JSON (`content-type: application/json` unless headers say otherwise).
   * It may hold credentials, so neither it nor a POST's answer is quoted in messages, events or errors.
   */
  json?: unknown;
  /**
   * POST only, instead of `json`: the body as `application/x-www-form-urlencoded`, which OAuth2 token
   * endpoints take (distribution docs/spec/auth/oauth.md). Never quoted either.
   */
  form?: URLSearchParams;
  /**
   * POST only: sending the request twice does no harm (a login, which only issues a second token), so
   * it is sent again after any transient failure, as a GET is: a reset, a timeout, a 5xx, a cut body.
   */
  idempotent?: boolean;
  url: string | URL;
  headers?: Record<string, string>;
  /** A Docker Hub pull (manifest GET): checked against maxPulls and the registry's remaining quota. */
  counted?: boolean;
  /** Upper bound on the body; text()/json()/bytes() default to 16 MiB when unset, the stream is unbounded. */
  maxBodyBytes?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Read the whole body (bounded by maxBodyBytes) before returning, so a connection reset mid-body is
   * retried here. Right for JSON endpoints; wrong for layers.
   */
  buffer?: boolean;
  /** 4xx statuses returned as responses instead of thrown as PermanentError (401 always is). */
  passStatuses?: number[];
}

export interface HttpClientOptions {
  /** In-flight requests per host (until response headers). Default 8. */
  concurrencyPerHost?: number;
  /** Requests started per second per host (loopback hosts are exempt). Default unlimited. */
  requestsPerSecondPerHost?: number;
  /** Retries after a network error or 5xx (429s are not failures and do not use these). Default 4. */
  maxRetries?: number;
  /** Backoff ceiling for the first retry; doubles per retry (full jitter). Default 500. */
  retryBaseMs?: number;
  /** Largest backoff between retries. Default 30 000. */
  retryMaxMs?: number;
  /** Counted pulls allowed for this client's lifetime (a run). Default unlimited. */
  maxPulls?: number;
  /** Longest 429 pause waited out in-run; longer throws RateLimitedError. Default 120 000. */
  maxPauseMs?: number;
  /** Consecutive 429s tolerated for one request before giving up with RateLimitedError. Default 8. */
  max429Waits?: number;
  /** Headers timeout and body idle timeout. Default 30 000. */
  timeoutMs?: number;
  /**
   * The slowest a body may come once it has taken timeoutMs of waiting: a server that trickles a byte now
   * and then never trips the idle timeout, and would hold its item (and a run) for hours. Default 4096.
   */
  minBodyBytesPerSecond?: number;
  /**
   * Requests in a row to one host that end with no response after all their retries, before a host that
   * answered earlier counts as unreachable (HostUnreachableError). Any response from the host starts the
   * count again. Default 3.
   */
  unreachableAfter?: number;
  /**
   * Hosts that answered this run before (its earlier invocations, for a resumed run): one of them that
   * still does not answer stops the resumed run again, instead of failing every item on it.
   */
  answeredHosts?: Iterable<string>;
  userAgent?: string;
  /** Undici dispatcher (not closed by close()); default a private Agent. */
  dispatcher?: Dispatcher;
  /**
   * Ends every request of this client once aborted — waiting for its headers, or its body — as if each
   * request had passed it too (besides its own). A run's cut-off (src/pipeline/network.ts).
   */
  signal?: AbortSignal;
  onEvent?: (e: HttpEvent) => void;
  /** Injected in tests so backoffs take no wall-clock time. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}
