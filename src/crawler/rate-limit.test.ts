import { describe, expect, it } from 'vitest';
import { BudgetExhaustedError, RateLimitedError } from '../core/errors.js';
import {
  isPullLimitBody,
  isTooManyRequestsBody,
  parseApiQuota,
  parsePullQuota,
  parseQuotaValue,
  parseRetryAfter,
  RateLimiter,
  retryAfterMs,
} from './rate-limit.js';

const NOW = Date.parse('2026-11-28T12:00:00Z');

describe('parseRetryAfter', () => {
  it.each([
    ['120', 120_000],
    ['0', 0],
    [' 5 ', 5_000],
    ['1.5', 1_500],
    ['Sat, 28 Nov 2026 12:00:30 GMT', 30_000],
    ['Saturday, 28-Nov-26 12:01:00 GMT', 60_000],
    [String(NOW / 1000 + 45), 45_000],
    ['Sat, 28 Nov 2026 11:00:00 GMT', 0],
    [String(NOW / 1000 - 100), 0],
  ])('reads %j as %d ms', (value, ms) => {
    expect(parseRetryAfter(value, NOW)).toBe(ms);
  });

  it.each([undefined, '', 'soon', '-5', '12abc'])('ignores %j', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });

  it('falls back to X-Retry-After when Retry-After is absent', () => {
    expect(retryAfterMs({ 'X-Retry-After': String(NOW / 1000 + 10) }, NOW)).toBe(10_000);
  });

  it('prefers Retry-After over X-Retry-After', () => {
    expect(retryAfterMs({ 'retry-after': '3', 'x-retry-after': '99' }, NOW)).toBe(3_000);
  });
});

describe('quota headers', () => {
  it('parses a windowed value', () => {
    expect(parseQuotaValue('100;w=21600')).toEqual({ value: 100, windowSeconds: 21600 });
  });

  it('parses a bare value', () => {
    expect(parseQuotaValue(' 76 ')).toEqual({ value: 76 });
  });

  it('rejects junk', () => {
    expect(parseQuotaValue('lots')).toBeUndefined();
  });

  it('reads the registry pull quota with its source', () => {
    expect(
      parsePullQuota({
        'ratelimit-limit': '100;w=21600',
        'ratelimit-remaining': '0;w=21600',
        'docker-ratelimit-source': '2600:3c00::',
      }),
    ).toEqual({ limit: 100, remaining: 0, windowSeconds: 21600, source: '2600:3c00::' });
  });

  it('reports no pull quota when the headers are absent (unlimited)', () => {
    expect(parsePullQuota({ 'content-type': 'x' })).toBeUndefined();
  });

  it('reads the Hub API quota with a unix reset', () => {
    expect(
      parseApiQuota({
        'x-ratelimit-limit': '180',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': '1790000000',
      }),
    ).toEqual({ limit: 180, remaining: 0, resetAtMs: 1_790_000_000_000 });
  });

  it.each([
    ['{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}', true],
    ['toomanyrequests: You have reached your unauthenticated pull rate limit.', true],
    ['{"detail": "Rate limit exceeded", "error": false}', false],
    ['', false],
  ])('recognises the TOOMANYREQUESTS body in %j: %s', (body, expected) => {
    expect(isTooManyRequestsBody(body)).toBe(expected);
  });
});

/** Docker Hub's pull-limit body as a real 429 carried it (docker-hub-api.md §2.4). */
const HUB_PULL_LIMIT = JSON.stringify({
  errors: [
    {
      code: 'TOOMANYREQUESTS',
      message:
        'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit',
    },
  ],
});
/** The OCI code with distribution's own message: any registry's request-rate limit, not a pull quota. */
const GENERIC_TOO_MANY = '{"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests"}]}';

describe('isPullLimitBody', () => {
  it.each([
    ['Hub JSON envelope', HUB_PULL_LIMIT, true],
    [
      'the 2026 unauthenticated variant',
      'toomanyrequests: You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit',
      true,
    ],
    [
      'the plain text of the docs',
      'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limits',
      true,
    ],
    ['a generic OCI TOOMANYREQUESTS', GENERIC_TOO_MANY, false],
    ["the abuse limit's bare answer", 'Too Many Requests', false],
    ["the Hub API's 429", '{"detail": "Rate limit exceeded", "error": false}', false],
    ['an empty body', '', false],
  ])('tells %s apart: %s', (_what, body, expected) => {
    expect(isPullLimitBody(body)).toBe(expected);
  });
});

describe('RateLimiter', () => {
  function limiter(maxPauseMs = 60_000) {
    let now = NOW;
    const rl = new RateLimiter({ now: () => now, random: () => 0.5, maxPauseMs, baseBackoffMs: 1000 });
    return { rl, advance: (ms: number) => (now += ms), now: () => now };
  }

  it('pauses the host for the Retry-After seconds', () => {
    const { rl } = limiter();
    const d = rl.on429('h', { 'retry-after': '10' }, NOW);
    expect(d).toEqual({ pauseMs: 10_000, extended: true, reason: 'retry-after' });
    expect(rl.remainingPauseMs('h')).toBe(10_000);
    expect(rl.remainingPauseMs('other')).toBe(0);
  });

  it('does not stretch the pause for 429s from requests already in flight', () => {
    const { rl, advance } = limiter();
    rl.on429('h', {}, NOW);
    const first = rl.remainingPauseMs('h');
    advance(100);
    const d = rl.on429('h', {}, NOW - 50);
    expect(d.extended).toBe(false);
    expect(rl.remainingPauseMs('h')).toBe(first - 100);
  });

  it('keeps the wait a 429 from a request in flight states, when it is longer than the pause', () => {
    const { rl, advance } = limiter();
    const bare = rl.on429('h', {}, NOW).pauseMs; // about a second
    advance(10);
    const d = rl.on429('h', { 'retry-after': '2' }, NOW - 50);
    expect(d).toEqual({ pauseMs: 2_000, extended: true, reason: 'retry-after' });
    expect(rl.remainingPauseMs('h')).toBe(2_000);
    // Shorter than what is left: the pause stands as it is.
    advance(10);
    expect(rl.on429('h', { 'retry-after': '1' }, NOW - 50).extended).toBe(false);
    expect(rl.remainingPauseMs('h')).toBe(1_990);
    // The backoff did not escalate for it: the next bare 429 after the pause doubles once, not twice.
    advance(2_000);
    expect(rl.on429('h', {}, NOW + 2_020).pauseMs).toBe(bare * 2);
  });

  it('doubles the backoff for consecutive 429s without Retry-After', () => {
    const { rl, advance } = limiter();
    const a = rl.on429('h', {}, NOW).pauseMs;
    advance(a + 1);
    const b = rl.on429('h', {}, NOW + a + 1).pauseMs;
    expect(b).toBe(a * 2);
  });

  it('waits until X-RateLimit-Reset when the Hub API names no Retry-After', () => {
    const { rl } = limiter();
    const d = rl.on429(
      'h',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 20) },
      NOW,
    );
    expect(d).toMatchObject({ pauseMs: 20_000, reason: 'api-quota' });
  });

  it('throws RateLimitedError for a pause beyond maxPauseMs', () => {
    const { rl } = limiter(5_000);
    expect(() => rl.on429('h', { 'retry-after': '6' }, NOW)).toThrow(RateLimitedError);
  });

  it('pauses a host proactively when the Hub API quota reaches zero', () => {
    const { rl } = limiter();
    rl.observe('h', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 30) });
    expect(rl.remainingPauseMs('h')).toBe(30_000);
  });

  it('reports a proactive pause it starts once, so stats count it like a 429', () => {
    const { rl } = limiter();
    const reset = String(NOW / 1000 + 30);
    expect(rl.observe('h', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset })).toBe(30_000);
    expect(rl.observe('h', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset })).toBe(0);
    expect(rl.observe('h', { 'x-ratelimit-remaining': '5', 'x-ratelimit-reset': reset })).toBe(0);
  });

  it('ends a counted request on a pull-limit body without quota headers and pauses nothing', () => {
    const { rl } = limiter();
    const pull = () => rl.onPullQuota429('h', {}, HUB_PULL_LIMIT, true);
    expect(pull).toThrow(BudgetExhaustedError);
    expect(pull).toThrow(/pull quota is spent \(a 429 saying "pull rate limit"\); stop/);
    expect(rl.remainingPauseMs('h')).toBe(0);
  });

  it('refuses later counted requests for the rest of the run after a pull-limit body with no window', () => {
    const { rl, advance } = limiter();
    expect(() => rl.onPullQuota429('h', {}, HUB_PULL_LIMIT, true)).toThrow(BudgetExhaustedError);
    advance(7 * 24 * 3600_000);
    expect(() => rl.assertPullsAvailable('h')).toThrow(BudgetExhaustedError);
    expect(() => rl.assertPullsAvailable('other')).not.toThrow();
  });

  it('ends an uncounted request on a pull-limit body too, because no in-run wait can make it succeed', () => {
    const { rl } = limiter();
    expect(() => rl.onPullQuota429('h', {}, HUB_PULL_LIMIT, false)).toThrow(BudgetExhaustedError);
    expect(rl.remainingPauseMs('h')).toBe(0);
  });

  it('takes the window of a pull-limit body from the quota headers when they come with it', () => {
    const { rl, advance } = limiter();
    const headers = { 'ratelimit-limit': '100;w=600' };
    expect(() => rl.onPullQuota429('h', headers, HUB_PULL_LIMIT, true)).toThrow(/until about \d{4}-/);
    advance(600_001);
    expect(() => rl.assertPullsAvailable('h')).not.toThrow();
  });

  it('leaves a generic TOOMANYREQUESTS 429 to the pause, counted or not', () => {
    const { rl } = limiter();
    expect(() => rl.onPullQuota429('h', {}, GENERIC_TOO_MANY, true)).not.toThrow();
    expect(() => rl.onPullQuota429('h', {}, GENERIC_TOO_MANY, false)).not.toThrow();
    expect(() => rl.onPullQuota429('h', {}, '', true)).not.toThrow();
    expect(() => rl.assertPullsAvailable('h')).not.toThrow();
  });

  it('ends a counted request on ratelimit-remaining 0 without a body, and leaves an uncounted one to the pause', () => {
    const { rl } = limiter();
    const headers = { 'ratelimit-remaining': '0;w=21600' };
    expect(() => rl.onPullQuota429('h', headers, '', false)).not.toThrow();
    expect(() => rl.onPullQuota429('h', headers, '', true)).toThrow(/\(ratelimit-remaining: 0\) until about/);
  });

  it('refuses counted pulls until the registry window resets', () => {
    const { rl, advance } = limiter();
    rl.observe('h', { 'ratelimit-remaining': '0;w=600' });
    expect(() => rl.assertPullsAvailable('h')).toThrow(BudgetExhaustedError);
    advance(600_001);
    expect(() => rl.assertPullsAvailable('h')).not.toThrow();
  });
});
