import { describe, expect, it } from 'vitest';
import { BudgetExhaustedError, RateLimitedError } from '../core/errors.js';
import {
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

  it('refuses counted pulls until the registry window resets', () => {
    const { rl, advance } = limiter();
    rl.observe('h', { 'ratelimit-remaining': '0;w=600' });
    expect(() => rl.assertPullsAvailable('h')).toThrow(BudgetExhaustedError);
    advance(600_001);
    expect(() => rl.assertPullsAvailable('h')).not.toThrow();
  });
});
