/**
 * The HTTP layer every registry and Hub API call goes through: per-host queueing (concurrency and
 * request rate), retries for network errors and 5xx with bounded full-jitter backoff (a POST only when
 * it cannot have been acted on: http-errors.ts `mayResend`), 429s handed to rate-limit.ts, a budget on
 * counted pulls, typed errors, and counters for every outcome.
 *
 * Redirects are never followed here: callers that expect one (blob GETs) follow it themselves, so they
 * decide which headers go to the other origin.
 *
 * The parts live beside it: http-response.ts (bounded bodies), http-errors.ts (error classes and
 * transport-error classification), http-hosts.ts (per-host queues and pauses), pull-budget.ts, and
 * http-options.ts (the request and client option types).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { type Dispatcher, request as undiciRequest } from 'undici';
import { HostUnreachableError, NoResponseError, RateLimitedError, RetryableError } from '../core/errors.js';
import { redactUrl } from '../core/url.js';
import { TOOL_VERSION } from '../core/version.js';
import { newCrawlAgent } from './agent.js';
import { classify, describeBody, HttpStatusError, mayResend, transportReason } from './http-errors.js';
import { HostQueues } from './http-hosts.js';
import type { HttpClientOptions, HttpRequest } from './http-options.js';
import { type BodySource, BoundedResponse, type HttpResponse } from './http-response.js';
import { PullBudget } from './pull-budget.js';
import { isTooManyRequestsBody, RateLimiter, retryAfterMs } from './rate-limit.js';
import { RequestStats } from './stats.js';

export { type HttpHeaders, HttpStatusError } from './http-errors.js';
export type { HttpClientOptions, HttpRequest } from './http-options.js';
export type { HttpResponse } from './http-response.js';
export type { HttpEvent } from './stats.js';

/** One request's progress across its attempts. */
interface RequestState {
  url: URL;
  host: string;
  method: string;
  /** The URL fit for messages, events and recorded errors: no pre-signed signature, no userinfo. */
  href: string;
  /**
   * What ends the request on the wire and its body: its own signal and the client's (see `send`). Queue
   * waits and sleeps keep the request's own: p-queue adds a listener per waiting task, a queued request
   * meets the aborted signal in `send` anyway, and a run's sleeps listen to its cut themselves.
   */
  signal: AbortSignal | undefined;
  /** The serialized body of a POST (JSON or form) and its content type. */
  body: { text: string; contentType: string } | undefined;
  /** Network errors and 5xx so far (they spend maxRetries). */
  failures: number;
  /** 429s so far (they spend max429Waits). */
  waits429: number;
}

/**
 * A host's current run of requests in a row that got no response at all, all retries spent (see
 * unreachableAfter). Any response to a request sent since it began ends it.
 */
interface UnansweredStreak {
  count: number;
  /**
   * When the run began (its first request's failure). A response to a request sent before then says
   * nothing of the host now (it went out while the host still answered), so it does not end the run;
   * with it, an item could meet the same outage twice and count it twice.
   */
  since: number;
  /**
   * Why the latest of them failed (`connection failed (ECONNREFUSED)`): the requests the host is then no
   * longer sent fail with it, as the cause a reader of the item's error needs.
   */
  lastReason: string;
  /** That failure itself: the cause of the errors the requests not sent fail with. */
  lastError: unknown;
}

/** An attempt's outcome that asks for another attempt. */
const AGAIN = Symbol('again');

/** HTTP client with per-host pacing, retries and typed errors. */
export class HttpClient {
  readonly stats: RequestStats;
  readonly rateLimiter: RateLimiter;
  private readonly opts: Required<
    Pick<
      HttpClientOptions,
      | 'concurrencyPerHost'
      | 'maxRetries'
      | 'retryBaseMs'
      | 'retryMaxMs'
      | 'timeoutMs'
      | 'minBodyBytesPerSecond'
      | 'max429Waits'
      | 'unreachableAfter'
    >
  > &
    HttpClientOptions;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly hosts: HostQueues;
  private readonly pulls: PullBudget;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  /** Per host: its current run of requests in a row that got no response at all. */
  private readonly unanswered = new Map<string, UnansweredStreak>();
  /**
   * Hosts that gave this client any response. Only such a host can be called unreachable: one that never
   * answered (a seed naming a host that does not exist) fails its own items, or every resume would stop
   * again on it while the other hosts' work waits.
   */
  private readonly answered: Set<string>;

  constructor(opts: HttpClientOptions = {}) {
    this.opts = {
      concurrencyPerHost: 8,
      maxRetries: 4,
      retryBaseMs: 500,
      retryMaxMs: 30_000,
      timeoutMs: 30_000,
      minBodyBytesPerSecond: 4096,
      max429Waits: 8,
      unreachableAfter: 3,
      ...opts,
    };
    this.stats = new RequestStats(opts.onEvent);
    this.answered = new Set(opts.answeredHosts ?? []);
    this.random = opts.random ?? Math.random;
    const limiterOpts: ConstructorParameters<typeof RateLimiter>[0] = { random: this.random };
    if (opts.maxPauseMs !== undefined) limiterOpts.maxPauseMs = opts.maxPauseMs;
    this.rateLimiter = new RateLimiter(limiterOpts);
    this.sleep = opts.sleep ?? ((ms, signal) => delay(ms, undefined, signal ? { signal } : undefined));
    this.hosts = new HostQueues({
      concurrencyPerHost: this.opts.concurrencyPerHost,
      requestsPerSecondPerHost: this.opts.requestsPerSecondPerHost,
      rateLimiter: this.rateLimiter,
      sleep: this.sleep,
    });
    this.pulls = new PullBudget(opts.maxPulls, this.rateLimiter, this.stats);
    this.ownsDispatcher = opts.dispatcher === undefined;
    this.dispatcher = opts.dispatcher ?? newCrawlAgent();
  }

  /** Full-jitter exponential backoff for retry number `attempt` (1-based). */
  private backoffMs(attempt: number): number {
    const ceiling = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** (attempt - 1));
    return Math.round(this.random() * ceiling);
  }

  /** The client's own signal (HttpClientOptions.signal): every request it sends ends when it is aborted. */
  get signal(): AbortSignal | undefined {
    return this.opts.signal;
  }

  /** The hosts that gave any response: a resumed run hands them to its next client (answeredHosts). */
  answeredHosts(): string[] {
    return [...this.answered].sort();
  }

  /** Sends one request with queueing, retries and rate-limit handling; see the module comment. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.url);
    const method = req.method ?? 'GET';
    if ((req.json !== undefined || req.form !== undefined) && method !== 'POST')
      throw new TypeError(`a ${method} request has no body`);
    if (req.json !== undefined && req.form !== undefined)
      throw new TypeError('a POST has one body: json or form');
    const s: RequestState = {
      url,
      host: url.host,
      method,
      href: redactUrl(url),
      signal: eitherSignal(req.signal, this.opts.signal),
      body: serializeBody(req),
      failures: 0,
      waits429: 0,
    };
    // A host that never answered and has had unreachableAfter requests in a row fail outright is not asked
    // again in this run: each request would spend every retry on timeouts (minutes per item).
    const streak = this.unanswered.get(s.host);
    if (!this.answered.has(s.host) && streak !== undefined && streak.count >= this.opts.unreachableAfter) {
      this.stats.recordFailure(s.method, s.host, s.href, 'host never answered');
      // The host and the cause lead: this message is what the item's error shows (frontier.last_error,
      // scan's Failed table, which cuts a long message), and the request is only the last to meet it.
      throw new RetryableError(
        `${s.host} answered none of the ${streak.count} requests before this one in this run, the last: ${streak.lastReason}; ${s.method} ${s.href} not sent, the next crawl tries it again`,
        { cause: streak.lastError },
      );
    }
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(req, s, attempt);
      if (outcome !== AGAIN) return outcome;
    }
  }

  /** One attempt: a response to hand out, AGAIN after a wait, or a typed error. */
  private async attempt(
    req: HttpRequest,
    s: RequestState,
    attempt: number,
  ): Promise<HttpResponse | typeof AGAIN> {
    const pull = req.counted ? await this.pulls.reserve(s.host, req.signal) : undefined;
    let res: BoundedResponse;
    let startedAt = 0;
    try {
      res = await this.hosts.queue(s.host).add(
        async () => {
          await this.hosts.waitForHost(s.host, req.signal);
          startedAt = Date.now();
          return this.send(s, req);
        },
        req.signal ? { signal: req.signal } : {},
      );
    } catch (err) {
      pull?.release();
      return this.onTransportError(req, s, attempt, err);
    }
    const status = res.status;
    const streak = this.unanswered.get(s.host);
    if (streak !== undefined && startedAt >= streak.since) this.unanswered.delete(s.host);
    this.answered.add(s.host);
    this.stats.recordResponse(s.method, s.host, s.href, status, attempt);
    if (status === 429) {
      pull?.release();
      return this.on429(req, s, res, startedAt);
    }
    const pausedMs = this.rateLimiter.observe(s.host, res.headers);
    if (pausedMs > 0) this.stats.recordRateLimit(s.host, s.href, pausedMs, 'X-RateLimit-Remaining: 0', true);
    if (status >= 500) {
      pull?.release();
      return this.on5xx(req, s, attempt, res);
    }
    this.rateLimiter.onSuccess(s.host);
    if (status >= 400 && status !== 401 && !req.passStatuses?.includes(status)) {
      pull?.release();
      const body = await res.snippet();
      this.stats.recordFailure(s.method, s.host, s.href, `status ${status}`);
      throw new HttpStatusError(s.href, status, quotable(s.method, body), res.headers);
    }
    if (status >= 200 && status < 300) pull?.spend(s.host, s.href);
    pull?.release();
    if (req.buffer && s.method !== 'HEAD') return this.buffered(req, s, attempt, res);
    return res;
  }

  /** A connection failure or timeout before the response headers: retried like a 5xx. */
  private async onTransportError(
    req: HttpRequest,
    s: RequestState,
    attempt: number,
    err: unknown,
  ): Promise<typeof AGAIN> {
    const e = classify(err, s.href, s.signal);
    if (!(e instanceof RetryableError)) throw e;
    this.stats.recordNetworkError(s.method);
    s.failures += 1;
    const resend = mayResend(s.method, { kind: 'transport', error: err }, req.idempotent);
    if (s.failures > this.opts.maxRetries || !resend) {
      this.stats.recordFailure(s.method, s.host, s.href, e.message);
      const outcome = resend ? `failed after ${attempts(s.failures)}` : `failed and was not sent again`;
      // A transport error's short reason (no URL: the message that repeats it leads with the host), else
      // the message of an error of our own that classify passed through (a timeout's: it may name the URL).
      const unanswered = this.countUnanswered(s.host, transportReason(err) ?? e.message, err);
      if (unanswered >= this.opts.unreachableAfter && this.answered.has(s.host)) {
        throw new HostUnreachableError(
          `${s.host} stopped answering: ${unanswered} requests in a row got no response after all their retries, the last ${s.method} ${s.href}: ${e.message}; the run stops here and the next crawl resumes it`,
          { cause: err },
        );
      }
      throw new NoResponseError(`${s.method} ${s.href} ${outcome}: ${e.message}`, s.host, unanswered, {
        cause: err,
      });
    }
    return this.retryAfter(req, s, attempt, this.backoffMs(s.failures), e.message);
  }

  /**
   * Adds a request that got no response, failed with `error` for `reason`, to its host's streak; returns the
   * streak's length.
   */
  private countUnanswered(host: string, reason: string, error: unknown): number {
    const streak = this.unanswered.get(host) ?? {
      count: 0,
      since: Date.now(),
      lastReason: reason,
      lastError: error,
    };
    streak.count += 1;
    streak.lastReason = reason;
    streak.lastError = error;
    this.unanswered.set(host, streak);
    return streak.count;
  }

  /** Not a failure: the rate limiter decides the pause; the request that started it sleeps it out. */
  private async on429(
    req: HttpRequest,
    s: RequestState,
    res: BoundedResponse,
    startedAt: number,
  ): Promise<typeof AGAIN> {
    const body = await res.snippet();
    // A spent pull quota (headers or body) waits hours: the limiter ends the pulls now, pausing nothing.
    this.rateLimiter.onPullQuota429(s.host, res.headers, body, req.counted === true);
    // on429 reads X-RateLimit-Reset itself; observe() first would start the pause and hide this 429.
    const decision = this.rateLimiter.on429(s.host, res.headers, startedAt);
    const why = isTooManyRequestsBody(body) ? 'TOOMANYREQUESTS' : decision.reason;
    this.stats.recordRateLimit(s.host, s.href, decision.pauseMs, why, decision.extended);
    s.waits429 += 1;
    if (s.waits429 > this.opts.max429Waits) {
      throw new RateLimitedError(
        `${s.host} kept answering 429 after ${s.waits429 - 1} pauses; stop and resume later`,
        decision.pauseMs,
      );
    }
    if (decision.extended) {
      // The request that started the pause sleeps exactly what was asked; others queue behind it.
      const until = this.rateLimiter.pausedUntil(s.host);
      await this.sleep(decision.pauseMs, req.signal);
      this.rateLimiter.pauseServed(s.host, until);
    }
    return AGAIN;
  }

  /** A 5xx: retried after Retry-After (capped at retryMaxMs) or backoff, until maxRetries. */
  private async on5xx(
    req: HttpRequest,
    s: RequestState,
    attempt: number,
    res: BoundedResponse,
  ): Promise<typeof AGAIN> {
    const status = res.status;
    const body = quotable(s.method, await res.snippet());
    s.failures += 1;
    const described = body ? describeBody(body) : '';
    const msg = `${s.method} ${s.href} answered ${status}${described ? `: ${described}` : ''}`;
    const resend = mayResend(s.method, { kind: 'status', status }, req.idempotent);
    if (s.failures > this.opts.maxRetries || !resend) {
      this.stats.recordFailure(s.method, s.host, s.href, msg);
      const outcome = resend ? `after ${attempts(s.failures)}` : 'not sent again';
      throw new RetryableError(`${msg} (${outcome})`, { status });
    }
    const asked = retryAfterMs(res.headers);
    const wait = asked !== undefined ? Math.min(asked, this.opts.retryMaxMs) : this.backoffMs(s.failures);
    return this.retryAfter(req, s, attempt, wait, `status ${status}`);
  }

  /** Reads the whole body so a reset mid-body is retried here rather than by the caller. */
  private async buffered(
    req: HttpRequest,
    s: RequestState,
    attempt: number,
    res: BoundedResponse,
  ): Promise<HttpResponse | typeof AGAIN> {
    try {
      return res.withBufferedBody(await res.bytes());
    } catch (err) {
      if (!(err instanceof RetryableError)) throw err;
      s.failures += 1;
      if (s.failures > this.opts.maxRetries || !mayResend(s.method, { kind: 'body' }, req.idempotent)) {
        this.stats.recordFailure(s.method, s.host, s.href, err.message);
        throw err;
      }
      return this.retryAfter(req, s, attempt, this.backoffMs(s.failures), err.message);
    }
  }

  /** Records a retry and sleeps before it. */
  private async retryAfter(
    req: HttpRequest,
    s: RequestState,
    attempt: number,
    waitMs: number,
    reason: string,
  ): Promise<typeof AGAIN> {
    this.stats.recordRetry(s.method, s.host, s.href, attempt, waitMs, reason);
    await this.sleep(waitMs, req.signal);
    return AGAIN;
  }

  /**
   * One request on the wire. The client's signal goes to undici with every request, not only to the
   * dispatcher's destroy(): undici's Agent forgets a pool that still carries requests (the connection a HEAD
   * leaves is closed, the origin's count of connections drops to 0, and a forgotten pool's later disconnect
   * counts against the next pool of that origin; agent.js), and Agent.destroy() reaches only the pools it
   * knows. A signal reaches its request wherever it is queued (test/integration/registry/run-network-cut.test.ts).
   */
  private async send(s: RequestState, req: HttpRequest): Promise<BoundedResponse> {
    const timeout = req.timeoutMs ?? this.opts.timeoutMs;
    const headers: Record<string, string> = {
      'user-agent': this.opts.userAgent ?? `hubcrawl/${TOOL_VERSION}`,
      ...(s.body !== undefined ? { 'content-type': s.body.contentType } : {}),
      ...req.headers,
    };
    const r = await undiciRequest(s.url, {
      method: s.method,
      headers,
      ...(s.body !== undefined ? { body: s.body.text } : {}),
      dispatcher: this.dispatcher,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      ...(s.signal ? { signal: s.signal } : {}),
    });
    return new BoundedResponse(
      r.statusCode,
      r.headers,
      s.url,
      r.body as unknown as BodySource,
      req.maxBodyBytes,
      this.stats,
      s.signal,
      { graceMs: timeout, minBytesPerSecond: this.opts.minBodyBytesPerSecond },
    );
  }

  /** Closes the private connection pool (a supplied dispatcher is left to its owner). */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }
}

/**
 * A signal aborted when either is. Most requests have no signal of their own and share the client's; a
 * crawl's layer downloads pass the client's own (RunNetwork.cutSignal). Only two distinct signals are
 * combined: AbortSignal.any on Node 20 keeps an entry on each source per call, and the client's lives as
 * long as the client.
 */
function eitherSignal(
  own: AbortSignal | undefined,
  client: AbortSignal | undefined,
): AbortSignal | undefined {
  if (own === undefined || client === undefined || own === client) return own ?? client;
  return AbortSignal.any([own, client]);
}

/** A POST's body as sent: JSON, or a form for OAuth2 token endpoints. */
function serializeBody(req: HttpRequest): RequestState['body'] {
  if (req.form !== undefined)
    return { text: req.form.toString(), contentType: 'application/x-www-form-urlencoded' };
  if (req.json !== undefined) return { text: JSON.stringify(req.json), contentType: 'application/json' };
  return undefined;
}

/** `1 attempt`, `3 attempts`: a count of tries as a message says it. */
function attempts(n: number): string {
  return `${n} attempt${n === 1 ? '' : 's'}`;
}

/** A response body fit for a message: a POST's answer may echo its credentials, so it is never quoted. */
function quotable(method: string, body: string): string {
  return method === 'POST' ? '' : body;
}
