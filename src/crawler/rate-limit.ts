/**
 * The one owner of 429s and rate-limit headers (STYLE.md "HTTP and registries").
 *
 * Parsers for every form the registries and the Hub web API use (docker-hub-api.md §1.8, §2.3, §2.4),
 * and a per-host pause book: a 429 pauses the whole host, and other requests that were already in
 * flight when the pause began do not stretch it again. A 429 for Docker Hub's pull quota pauses nothing:
 * it ends the pulls (onPullQuota429), as a spent `--max-pulls` budget does.
 */
import { BudgetExhaustedError, RateLimitedError } from '../core/errors.js';

type Headers = Record<string, string | string[] | undefined>;

/** First value of a header, case-insensitively. */
export function headerValue(headers: Headers, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== want || v === undefined) continue;
    return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

/**
 * Milliseconds to wait from `Retry-After` (or `X-Retry-After`): delta seconds, an HTTP date, or — as the
 * older Hub docs said — a unix timestamp in seconds (any number above 1e9). Undefined when absent or junk.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) {
    const n = Number(v);
    if (n > 1e9) return Math.max(0, Math.round(n * 1000 - nowMs));
    return Math.round(n * 1000);
  }
  // RFC 9110 HTTP-date; Date.parse also takes the obsolete RFC 850 and asctime forms.
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** The wait a response asks for: `Retry-After` first, then `X-Retry-After`. */
export function retryAfterMs(headers: Headers, nowMs: number = Date.now()): number | undefined {
  return (
    parseRetryAfter(headerValue(headers, 'retry-after'), nowMs) ??
    parseRetryAfter(headerValue(headers, 'x-retry-after'), nowMs)
  );
}

/** One `ratelimit-limit`/`ratelimit-remaining` value such as `100;w=21600`. */
export interface QuotaValue {
  value: number;
  windowSeconds?: number;
}

/** Parses `<n>[;w=<seconds>]` (Docker registry pull limit headers). */
export function parseQuotaValue(value: string | undefined): QuotaValue | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(\d+)(?:\s*;\s*w=(\d+))?/.exec(value);
  if (!m) return undefined;
  const out: QuotaValue = { value: Number(m[1]) };
  if (m[2] !== undefined) out.windowSeconds = Number(m[2]);
  return out;
}

/** The Docker Hub registry pull quota as the response reports it (absent headers mean unlimited). */
export interface PullQuota {
  limit?: number;
  remaining?: number;
  windowSeconds?: number;
  /** `docker-ratelimit-source`: the client IP or account id the limit is attributed to. */
  source?: string;
}

/** Reads `ratelimit-limit`, `ratelimit-remaining`, `docker-ratelimit-source`; undefined when none present. */
export function parsePullQuota(headers: Headers): PullQuota | undefined {
  const limit = parseQuotaValue(headerValue(headers, 'ratelimit-limit'));
  const remaining = parseQuotaValue(headerValue(headers, 'ratelimit-remaining'));
  if (!limit && !remaining) return undefined;
  const q: PullQuota = {};
  if (limit) q.limit = limit.value;
  if (remaining) q.remaining = remaining.value;
  const w = remaining?.windowSeconds ?? limit?.windowSeconds;
  if (w !== undefined) q.windowSeconds = w;
  const source = headerValue(headers, 'docker-ratelimit-source');
  if (source) q.source = source;
  return q;
}

/** The Hub web API's per-minute quota (`X-RateLimit-*`, reset as a unix timestamp). */
export interface ApiQuota {
  limit?: number;
  remaining?: number;
  resetAtMs?: number;
}

/** Reads `X-RateLimit-Limit/Remaining/Reset`; undefined when none present. */
export function parseApiQuota(headers: Headers): ApiQuota | undefined {
  const num = (name: string) => {
    const v = headerValue(headers, name);
    if (v === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(v)) return undefined;
    return Number(v);
  };
  const limit = num('x-ratelimit-limit');
  const remaining = num('x-ratelimit-remaining');
  const reset = num('x-ratelimit-reset');
  if (limit === undefined && remaining === undefined && reset === undefined) return undefined;
  const q: ApiQuota = {};
  if (limit !== undefined) q.limit = limit;
  if (remaining !== undefined) q.remaining = remaining;
  // A reset below 1e9 cannot be a unix timestamp; read it as seconds from now.
  if (reset !== undefined) q.resetAtMs = reset > 1e9 ? reset * 1000 : Date.now() + reset * 1000;
  return q;
}

/** True when a body is the registry's `TOOMANYREQUESTS` error (JSON envelope or the plain-text form). */
export function isTooManyRequestsBody(body: string): boolean {
  return /toomanyrequests/i.test(body) || isPullLimitBody(body);
}

/**
 * True when a 429's body is Docker Hub's pull-limit answer: "You have reached your [unauthenticated]
 * pull rate limit…", in the `TOOMANYREQUESTS` JSON envelope or as plain text (docker-hub-api.md §2.4).
 * The phrase is what tells it apart, not the code: Hub's abuse limit answers a bare 429 with no `errors`
 * JSON, the OCI `TOOMANYREQUESTS` code (distribution-spec code-14) is any "too many requests" a registry
 * may send for a request-rate limit, and the Hub API's 429 says `{"detail":"Rate limit exceeded"}`.
 */
export function isPullLimitBody(body: string): boolean {
  return /\bpull rate limit\b/i.test(body);
}

export interface RateLimiterOptions {
  /** Longest single pause we wait out; a longer one throws RateLimitedError so the caller can stop. Default 120 000. */
  maxPauseMs?: number;
  /** First pause for a 429 that names no wait; doubles per consecutive 429 on the host. Default 1000. */
  baseBackoffMs?: number;
  /** Jitter source in [0, 1). */
  random?: () => number;
  now?: () => number;
}

interface HostState {
  pausedUntil: number;
  pauseStartedAt: number;
  consecutive429: number;
  /** Counted requests on this host are refused until then (registry pull quota spent). */
  pullsExhaustedUntil: number;
  pullsExhaustedKnown: boolean;
  /** What said the quota is spent, for the error that refuses a pull. */
  pullsExhaustedBy: string;
}

/** What to do about one 429. */
export interface PauseDecision {
  pauseMs: number;
  /** Whether this 429 began a new pause (false when it arrived from a request already covered by one). */
  extended: boolean;
  reason: 'retry-after' | 'api-quota' | 'backoff';
}

/** The wait a 429 states: its Retry-After, else the Hub API's quota reset when none is left. */
function statedPause(
  headers: Headers,
  now: number,
): { pauseMs: number; reason: 'retry-after' | 'api-quota' } | undefined {
  const retryAfter = retryAfterMs(headers, now);
  if (retryAfter !== undefined) return { pauseMs: retryAfter, reason: 'retry-after' };
  const api = parseApiQuota(headers);
  if (api?.remaining === 0 && api.resetAtMs !== undefined) {
    return { pauseMs: Math.max(0, api.resetAtMs - now), reason: 'api-quota' };
  }
  return undefined;
}

/** Per-host pause book shared by every request to that host. */
export class RateLimiter {
  readonly maxPauseMs: number;
  private readonly baseBackoffMs: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly hosts = new Map<string, HostState>();

  constructor(opts: RateLimiterOptions = {}) {
    this.maxPauseMs = opts.maxPauseMs ?? 120_000;
    this.baseBackoffMs = opts.baseBackoffMs ?? 1000;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
  }

  private state(host: string): HostState {
    let s = this.hosts.get(host);
    if (!s) {
      s = {
        pausedUntil: 0,
        pauseStartedAt: 0,
        consecutive429: 0,
        pullsExhaustedUntil: 0,
        pullsExhaustedKnown: false,
        pullsExhaustedBy: '',
      };
      this.hosts.set(host, s);
    }
    return s;
  }

  /** Milliseconds until `host` may be contacted again (0 when not paused). */
  remainingPauseMs(host: string): number {
    return Math.max(0, this.state(host).pausedUntil - this.now());
  }

  /**
   * Records a 429 for a request that started at `requestStartedAt` and returns how long to wait.
   * Throws RateLimitedError when the wait exceeds maxPauseMs.
   */
  on429(host: string, headers: Headers, requestStartedAt: number): PauseDecision {
    const s = this.state(host);
    const now = this.now();
    const stated = statedPause(headers, now);
    // A request sent before the current pause began was in flight when another 429 paused the host:
    // its 429 is the same event, so it waits for the existing pause instead of escalating the backoff.
    // A wait the server states is still kept: a pause begun on a bare 429 is no reason to come back sooner.
    if (requestStartedAt < s.pauseStartedAt) {
      const left = Math.max(0, s.pausedUntil - now);
      if (stated === undefined || stated.pauseMs <= left) {
        return { pauseMs: left, extended: false, reason: 'backoff' };
      }
      this.refuseLongPause(host, stated.pauseMs);
      this.pause(host, stated.pauseMs);
      return { ...stated, extended: true };
    }
    let pauseMs = stated?.pauseMs;
    let reason: PauseDecision['reason'] = stated?.reason ?? 'retry-after';
    if (pauseMs === undefined) {
      // Full jitter over an exponentially growing ceiling, never above the max.
      const ceiling = Math.min(this.maxPauseMs, this.baseBackoffMs * 2 ** s.consecutive429);
      pauseMs = Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
      reason = 'backoff';
    }
    s.consecutive429 += 1;
    this.refuseLongPause(host, pauseMs);
    this.pause(host, pauseMs);
    return { pauseMs, extended: true, reason };
  }

  private refuseLongPause(host: string, pauseMs: number): void {
    if (pauseMs <= this.maxPauseMs) return;
    throw new RateLimitedError(
      `${host} asked us to wait ${Math.ceil(pauseMs / 1000)} s, longer than the ${Math.ceil(this.maxPauseMs / 1000)} s we wait in-run; stop and resume later`,
      pauseMs,
    );
  }

  /** Pauses the host for `ms` unless it is already paused for longer. */
  pause(host: string, ms: number): void {
    const s = this.state(host);
    const now = this.now();
    const until = now + ms;
    if (until > s.pausedUntil) {
      s.pausedUntil = until;
      s.pauseStartedAt = now;
    }
  }

  /** The instant the host's current pause ends (0 when none). */
  pausedUntil(host: string): number {
    return this.state(host).pausedUntil;
  }

  /**
   * Called by a request that has slept until `until`: the pause is over (unless it was extended
   * meanwhile), so later requests do not wait it out again.
   */
  pauseServed(host: string, until: number): void {
    const s = this.state(host);
    if (s.pausedUntil === until) s.pausedUntil = 0;
  }

  /** A success resets the host's 429 escalation. */
  onSuccess(host: string): void {
    this.state(host).consecutive429 = 0;
  }

  /**
   * Learns from any response's quota headers: the Hub API's `X-RateLimit-Remaining: 0` pauses the host
   * until the reset; the registry's `ratelimit-remaining: 0` stops counted pulls until the window ends.
   * Returns the length of a pause this answer started (0 when none), so it is counted like a 429's.
   */
  observe(host: string, headers: Headers): number {
    let startedMs = 0;
    const api = parseApiQuota(headers);
    if (api?.remaining === 0 && api.resetAtMs !== undefined) {
      const ms = api.resetAtMs - this.now();
      if (ms > 0 && ms <= this.maxPauseMs) {
        // Only a pause that reaches past the current one is new (concurrent answers share it).
        if (this.now() + ms > this.state(host).pausedUntil) startedMs = ms;
        this.pause(host, ms);
      }
    }
    const pulls = parsePullQuota(headers);
    if (pulls?.remaining === 0) this.exhaustPulls(host, pulls.windowSeconds);
    return startedMs;
  }

  /**
   * Marks the host's pull quota as spent for `windowSeconds` (or for the rest of the run when unknown);
   * `evidence` names what said so in the error that then refuses counted requests.
   */
  exhaustPulls(host: string, windowSeconds?: number, evidence = 'ratelimit-remaining: 0'): void {
    const s = this.state(host);
    s.pullsExhaustedKnown = windowSeconds !== undefined;
    s.pullsExhaustedUntil =
      windowSeconds !== undefined ? this.now() + windowSeconds * 1000 : Number.POSITIVE_INFINITY;
    s.pullsExhaustedBy = evidence;
  }

  /**
   * The pull-quota half of a 429, decided before any pause (on429). Docker Hub's quota window is hours,
   * so neither `ratelimit-remaining: 0` nor the pull-limit body alone (Hub may send it without the
   * headers) is waited out in-run: the host's pulls are marked spent and BudgetExhaustedError ends a
   * counted request, or any request the body says hit the pull limit, since retrying it cannot succeed.
   * The host is not paused: the quota counts manifest GETs only, so its blobs and HEADs go on. Returns
   * when the 429 is to be paced like any other.
   */
  onPullQuota429(host: string, headers: Headers, body: string, counted: boolean): void {
    const quota = parsePullQuota(headers);
    const pullLimit = isPullLimitBody(body);
    if (quota?.remaining === 0) this.exhaustPulls(host, quota.windowSeconds);
    else if (pullLimit) this.exhaustPulls(host, quota?.windowSeconds, 'a 429 saying "pull rate limit"');
    if (counted || pullLimit) this.assertPullsAvailable(host);
  }

  /** Throws BudgetExhaustedError when the host's pull quota is known to be spent. */
  assertPullsAvailable(host: string): void {
    const s = this.state(host);
    if (s.pullsExhaustedUntil <= this.now()) return;
    const when = s.pullsExhaustedKnown ? ` until about ${new Date(s.pullsExhaustedUntil).toISOString()}` : '';
    throw new BudgetExhaustedError(
      `${host} reports its pull quota is spent (${s.pullsExhaustedBy})${when}; stop and resume later or authenticate`,
    );
  }
}
