/**
 * The HTTP layer every registry and Hub API call goes through: per-host queueing (concurrency and
 * request rate), retries for network errors and 5xx with bounded full-jitter backoff, 429s handed to
 * rate-limit.ts, a budget on counted pulls, typed errors, and counters for every outcome.
 *
 * Redirects are never followed here: callers that expect one (blob GETs) follow it themselves, so they
 * decide which headers go to the other origin.
 */
import { setTimeout as delay } from 'node:timers/promises';
import PQueue from 'p-queue';
import { Agent, type Dispatcher, request as undiciRequest } from 'undici';
import {
  BudgetExhaustedError,
  CorruptInputError,
  HubcrawlError,
  LimitExceededError,
  PermanentError,
  RateLimitedError,
  RetryableError,
} from '../core/errors.js';
import { isLoopbackHost } from '../core/host.js';
import { redactUrl } from '../core/url.js';
import { TOOL_VERSION } from '../core/version.js';
import {
  headerValue,
  isTooManyRequestsBody,
  parsePullQuota,
  RateLimiter,
  retryAfterMs,
} from './rate-limit.js';
import { type HttpEvent, RequestStats } from './stats.js';

export type { HttpEvent } from './stats.js';

export type HttpHeaders = Record<string, string | string[] | undefined>;

export interface HttpRequest {
  method?: 'GET' | 'HEAD';
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

export interface HttpResponse {
  status: number;
  headers: HttpHeaders;
  url: URL;
  /** The body as a stream; may be iterated once. Stalls longer than timeoutMs throw RetryableError. */
  body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  json(): Promise<unknown>;
  bytes(): Promise<Buffer>;
  /** Discards the body so the connection can be reused. */
  dump(): Promise<void>;
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
  userAgent?: string;
  /** Undici dispatcher (not closed by close()); default a private Agent. */
  dispatcher?: Dispatcher;
  onEvent?: (e: HttpEvent) => void;
  /** Injected in tests so backoffs take no wall-clock time. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** A 4xx that makes this item fail; carries the status and the start of the body for the record. */
export class HttpStatusError extends PermanentError {
  constructor(
    readonly url: string,
    status: number,
    readonly bodySnippet: string,
    readonly headers: HttpHeaders,
  ) {
    super(`${url} answered ${status}${bodySnippet ? `: ${bodySnippet.slice(0, 300)}` : ''}`, { status });
  }
}

const DEFAULT_BUFFER_LIMIT = 16 * 1024 * 1024;
const SNIPPET_BYTES = 64 * 1024;
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (err instanceof Error && err.name === 'AbortError');
}

const BUG_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_INVALID_RETURN_VALUE']);

/** Turns a transport error into RetryableError (anything else passes through). */
function classify(err: unknown, url: string, signal?: AbortSignal): unknown {
  if (err instanceof HubcrawlError || isAbort(err, signal)) return err;
  const code = (err as { code?: string } | null)?.code;
  if (typeof code === 'string' && RETRYABLE_CODES.has(code)) {
    return new RetryableError(`${url}: connection failed (${code})`, { cause: err });
  }
  // Other errno-style (ECONNABORTED, EHOSTUNREACH…) and undici transport codes are transient too; a
  // TypeError or an invalid-argument error is a bug, and retrying it would only hide it.
  if (
    typeof code === 'string' &&
    (/^E[A-Z]+$/.test(code) || (code.startsWith('UND_ERR_') && !BUG_CODES.has(code)))
  ) {
    return new RetryableError(`${url}: ${err instanceof Error ? err.message : code}`, { cause: err });
  }
  return err;
}

type Readable = AsyncIterable<Uint8Array> & {
  destroy(err?: Error): void;
  on?: (event: 'error', listener: (err: Error) => void) => void;
  dump?: (opts: { limit: number }) => Promise<void>;
};

/** Drops a body we will not read; undici reports the destroy as an error event nobody else listens to. */
function discard(source: Readable): void {
  source.on?.('error', () => {});
  source.destroy();
}

class Response implements HttpResponse {
  private consumed = false;
  constructor(
    readonly status: number,
    readonly headers: HttpHeaders,
    readonly url: URL,
    private readonly source: Readable,
    private readonly maxBodyBytes: number | undefined,
    private readonly stats: RequestStats,
    private readonly signal: AbortSignal | undefined,
    private buffered?: Buffer,
  ) {}

  get body(): AsyncIterable<Uint8Array> {
    return { [Symbol.asyncIterator]: () => this.iterate(this.maxBodyBytes)[Symbol.asyncIterator]() };
  }

  private async *iterate(limit: number | undefined): AsyncGenerator<Uint8Array> {
    if (this.consumed) throw new Error(`body of ${redactUrl(this.url)} was already read`);
    this.consumed = true;
    if (this.buffered) {
      yield this.buffered;
      return;
    }
    const declared = Number(headerValue(this.headers, 'content-length'));
    if (limit !== undefined && Number.isFinite(declared) && declared > limit) {
      discard(this.source);
      throw new LimitExceededError(
        'maxBodyBytes',
        declared,
        `${redactUrl(this.url)} declares ${declared} bytes, over the ${limit}-byte limit`,
      );
    }
    let seen = 0;
    let done = false;
    try {
      for await (const chunk of this.source) {
        seen += chunk.length;
        this.stats.recordBytes(chunk.length);
        if (limit !== undefined && seen > limit) {
          throw new LimitExceededError(
            'maxBodyBytes',
            seen,
            `${redactUrl(this.url)} sent more than the ${limit}-byte limit`,
          );
        }
        yield chunk;
      }
      done = true;
    } catch (err) {
      throw classify(err, redactUrl(this.url), this.signal);
    } finally {
      if (!done) discard(this.source);
    }
  }

  async bytes(): Promise<Buffer> {
    if (this.buffered && !this.consumed) {
      this.consumed = true;
      return this.buffered;
    }
    const chunks: Uint8Array[] = [];
    for await (const c of this.iterate(this.maxBodyBytes ?? DEFAULT_BUFFER_LIMIT)) chunks.push(c);
    return Buffer.concat(chunks);
  }

  async text(): Promise<string> {
    return (await this.bytes()).toString('utf8');
  }

  async json(): Promise<unknown> {
    const text = await this.text();
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new CorruptInputError(`${redactUrl(this.url)} returned malformed JSON`, { cause: err });
    }
  }

  async dump(): Promise<void> {
    if (this.consumed) return;
    this.consumed = true;
    // Reading a small leftover body keeps the connection reusable; a big one is cut off instead.
    if (typeof this.source.dump === 'function') {
      try {
        await this.source.dump({ limit: SNIPPET_BYTES });
        return;
      } catch {
        // fall through to destroy
      }
    }
    discard(this.source);
  }

  /** Reads at most SNIPPET_BYTES for an error message or a 429 body. */
  async snippet(): Promise<string> {
    try {
      const chunks: Uint8Array[] = [];
      let n = 0;
      for await (const c of this.iterate(undefined)) {
        chunks.push(c);
        n += c.length;
        if (n >= SNIPPET_BYTES) break;
      }
      return Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString('utf8');
    } catch {
      return '';
    }
  }
}

interface HostSlot {
  queue: PQueue;
}

/** HTTP client with per-host pacing, retries and typed errors. */
export class HttpClient {
  readonly stats: RequestStats;
  readonly rateLimiter: RateLimiter;
  private readonly opts: Required<
    Pick<
      HttpClientOptions,
      'concurrencyPerHost' | 'maxRetries' | 'retryBaseMs' | 'retryMaxMs' | 'timeoutMs' | 'max429Waits'
    >
  > &
    HttpClientOptions;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly hosts = new Map<string, HostSlot>();
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private pullsReserved = 0;
  private readonly pullWaiters: Array<() => void> = [];

  constructor(opts: HttpClientOptions = {}) {
    this.opts = {
      concurrencyPerHost: 8,
      maxRetries: 4,
      retryBaseMs: 500,
      retryMaxMs: 30_000,
      timeoutMs: 30_000,
      max429Waits: 8,
      ...opts,
    };
    this.stats = new RequestStats(opts.onEvent);
    this.random = opts.random ?? Math.random;
    const limiterOpts: ConstructorParameters<typeof RateLimiter>[0] = { random: this.random };
    if (opts.maxPauseMs !== undefined) limiterOpts.maxPauseMs = opts.maxPauseMs;
    this.rateLimiter = new RateLimiter(limiterOpts);
    this.sleep = opts.sleep ?? ((ms, signal) => delay(ms, undefined, signal ? { signal } : undefined));
    this.ownsDispatcher = opts.dispatcher === undefined;
    this.dispatcher = opts.dispatcher ?? new Agent({ keepAliveTimeout: 10_000, connections: 64 });
  }

  private slot(host: string): HostSlot {
    let s = this.hosts.get(host);
    if (!s) {
      // The request rate is politeness towards remote services; a registry on loopback is our own.
      const rps = isLoopbackHost(host) ? undefined : this.opts.requestsPerSecondPerHost;
      s = {
        queue: new PQueue({
          concurrency: this.opts.concurrencyPerHost,
          ...(rps !== undefined && rps > 0
            ? { intervalCap: Math.max(1, Math.floor(rps)), interval: 1000 }
            : {}),
        }),
      };
      this.hosts.set(host, s);
    }
    return s;
  }

  /** Full-jitter exponential backoff for retry number `attempt` (1-based). */
  private backoffMs(attempt: number): number {
    const ceiling = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** (attempt - 1));
    return Math.round(this.random() * ceiling);
  }

  /** Sleeps out the host's pause; a pause extended meanwhile is waited out too. */
  private async waitForHost(host: string, signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < 64; i++) {
      const until = this.rateLimiter.pausedUntil(host);
      const ms = this.rateLimiter.remainingPauseMs(host);
      if (ms <= 0) return;
      await this.sleep(ms, signal);
      this.rateLimiter.pauseServed(host, until);
    }
  }

  /**
   * Reserves one counted pull. While other pulls are in flight the outcome is not known yet, so a
   * request that would exceed the budget waits for them: refused only once the budget is truly spent.
   */
  private async reservePull(host: string, signal?: AbortSignal): Promise<void> {
    const max = this.opts.maxPulls;
    for (;;) {
      this.rateLimiter.assertPullsAvailable(host);
      if (max === undefined || this.stats.countedPulls + this.pullsReserved < max) break;
      if (this.pullsReserved === 0 || signal?.aborted) {
        throw new BudgetExhaustedError(
          `the budget of ${max} counted pulls for this run is spent; resume in a later run`,
        );
      }
      await new Promise<void>((resolve) => this.pullWaiters.push(resolve));
    }
    this.pullsReserved += 1;
  }

  /** Wakes requests waiting for the outcome of in-flight pulls. */
  private settlePull(): void {
    this.pullsReserved -= 1;
    for (const wake of this.pullWaiters.splice(0)) wake();
  }

  /** Sends one request with queueing, retries and rate-limit handling; see the module comment. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.url);
    const host = url.host;
    const method = req.method ?? 'GET';
    // Messages, events and recorded errors never carry a pre-signed URL's signature or userinfo.
    const href = redactUrl(url);
    let failures = 0;
    let waits429 = 0;
    for (let attempt = 1; ; attempt++) {
      if (req.counted) await this.reservePull(host, req.signal);
      let reserved = req.counted === true;
      const release = () => {
        if (reserved) this.settlePull();
        reserved = false;
      };
      let res: Response;
      let startedAt = 0;
      try {
        res = await this.slot(host).queue.add(
          async () => {
            await this.waitForHost(host, req.signal);
            startedAt = Date.now();
            return this.send(url, method, req);
          },
          req.signal ? { signal: req.signal } : {},
        );
      } catch (err) {
        release();
        const e = classify(err, href, req.signal);
        if (!(e instanceof RetryableError)) throw e;
        this.stats.recordNetworkError(method);
        failures += 1;
        if (failures > this.opts.maxRetries) {
          this.stats.recordFailure(method, host, href, e.message);
          throw new RetryableError(`${method} ${href} failed after ${failures} attempts: ${e.message}`, {
            cause: err,
          });
        }
        const wait = this.backoffMs(failures);
        this.stats.recordRetry(method, host, href, attempt, wait, e.message);
        await this.sleep(wait, req.signal);
        continue;
      }
      const status = res.status;
      this.stats.recordResponse(method, host, href, status, attempt);

      if (status === 429) {
        release();
        const body = await res.snippet();
        // The registry's pull quota spent on a counted request waits hours: end the counted work now.
        const pulls = parsePullQuota(res.headers);
        if (pulls?.remaining === 0) this.rateLimiter.exhaustPulls(host, pulls.windowSeconds);
        if (req.counted) this.rateLimiter.assertPullsAvailable(host);
        // on429 reads X-RateLimit-Reset itself; observe() first would start the pause and hide this 429.
        const decision = this.rateLimiter.on429(host, res.headers, startedAt);
        const why = isTooManyRequestsBody(body) ? 'TOOMANYREQUESTS' : decision.reason;
        this.stats.recordRateLimit(host, href, decision.pauseMs, why, decision.extended);
        waits429 += 1;
        if (waits429 > this.opts.max429Waits) {
          throw new RateLimitedError(
            `${host} kept answering 429 after ${waits429 - 1} pauses; stop and resume later`,
            decision.pauseMs,
          );
        }
        if (decision.extended) {
          // The request that started the pause sleeps exactly what was asked; others queue behind it.
          const until = this.rateLimiter.pausedUntil(host);
          await this.sleep(decision.pauseMs, req.signal);
          this.rateLimiter.pauseServed(host, until);
        }
        continue;
      }

      const pausedMs = this.rateLimiter.observe(host, res.headers);
      if (pausedMs > 0) this.stats.recordRateLimit(host, href, pausedMs, 'X-RateLimit-Remaining: 0', true);
      if (status >= 500) {
        release();
        const body = await res.snippet();
        failures += 1;
        const msg = `${method} ${href} answered ${status}${body ? `: ${body.slice(0, 200)}` : ''}`;
        if (failures > this.opts.maxRetries) {
          this.stats.recordFailure(method, host, href, msg);
          throw new RetryableError(`${msg} (after ${failures} attempts)`, { status });
        }
        const asked = retryAfterMs(res.headers);
        const wait = asked !== undefined ? Math.min(asked, this.opts.retryMaxMs) : this.backoffMs(failures);
        this.stats.recordRetry(method, host, href, attempt, wait, `status ${status}`);
        await this.sleep(wait, req.signal);
        continue;
      }

      this.rateLimiter.onSuccess(host);
      if (status >= 400 && status !== 401 && !req.passStatuses?.includes(status)) {
        release();
        const body = await res.snippet();
        this.stats.recordFailure(method, host, href, `status ${status}`);
        throw new HttpStatusError(href, status, body, res.headers);
      }
      if (reserved && status >= 200 && status < 300) {
        // Counted before the reservation is released, so waiters see the spent pull.
        this.stats.recordPull(host, href, this.opts.maxPulls);
        release();
      }
      release();

      if (req.buffer && method !== 'HEAD') {
        try {
          const buf = await res.bytes();
          return new Response(
            status,
            res.headers,
            url,
            emptySource(),
            undefined,
            this.stats,
            req.signal,
            buf,
          );
        } catch (err) {
          if (!(err instanceof RetryableError)) throw err;
          failures += 1;
          if (failures > this.opts.maxRetries) {
            this.stats.recordFailure(method, host, href, err.message);
            throw err;
          }
          const wait = this.backoffMs(failures);
          this.stats.recordRetry(method, host, href, attempt, wait, err.message);
          await this.sleep(wait, req.signal);
          continue;
        }
      }
      return res;
    }
  }

  private async send(url: URL, method: string, req: HttpRequest): Promise<Response> {
    const timeout = req.timeoutMs ?? this.opts.timeoutMs;
    const headers: Record<string, string> = {
      'user-agent': this.opts.userAgent ?? `hubcrawl/${TOOL_VERSION}`,
      ...req.headers,
    };
    const r = await undiciRequest(url, {
      method,
      headers,
      dispatcher: this.dispatcher,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      ...(req.signal ? { signal: req.signal } : {}),
    });
    return new Response(
      r.statusCode,
      r.headers,
      url,
      r.body as unknown as Readable,
      req.maxBodyBytes,
      this.stats,
      req.signal,
    );
  }

  /** Closes the private connection pool (a supplied dispatcher is left to its owner). */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }
}

function emptySource(): Readable {
  return {
    async *[Symbol.asyncIterator]() {},
    destroy() {},
  };
}
