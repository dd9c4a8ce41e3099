import { describe, expect, it } from 'vitest';
import { type HttpEvent, RequestStats } from './stats.js';

describe('RequestStats', () => {
  it('counts responses by method and status class', () => {
    const s = new RequestStats();
    s.recordResponse('GET', 'h', 'u', 200, 1);
    s.recordResponse('GET', 'h', 'u', 404, 1);
    s.recordResponse('HEAD', 'h', 'u', 503, 1);
    s.recordNetworkError('GET');
    expect(s.snapshot()).toMatchObject({
      requests: 4,
      byMethod: { GET: 3, HEAD: 1 },
      byStatusClass: { '2xx': 1, '4xx': 1, '5xx': 1, network: 1 },
    });
  });

  it('counts a rate-limit pause only when it started one', () => {
    const s = new RequestStats();
    s.recordRateLimit('h', 'u', 1000, 'retry-after', true);
    s.recordRateLimit('h', 'u', 900, 'backoff', false);
    expect(s.rateLimitPauses).toBe(1);
    expect(s.rateLimitPauseMs).toBe(1000);
  });

  it('emits events to the listener', () => {
    const events: HttpEvent[] = [];
    const s = new RequestStats((e) => events.push(e));
    s.recordPull('h', 'u', 10);
    s.recordFailure('GET', 'h', 'u', 'boom');
    expect(events.map((e) => e.type)).toEqual(['pull', 'failure']);
    expect(events[0]).toMatchObject({ used: 1, max: 10 });
  });

  it('survives a listener that throws', () => {
    const s = new RequestStats(() => {
      throw new Error('display broke');
    });
    expect(() => s.recordRetry('GET', 'h', 'u', 1, 10, 'status 503')).not.toThrow();
    expect(s.retries).toBe(1);
  });

  it('returns a snapshot that later counting does not change', () => {
    const s = new RequestStats();
    s.recordResponse('GET', 'h', 'u', 200, 1);
    const snap = s.snapshot();
    s.recordResponse('GET', 'h', 'u', 200, 1);
    expect(snap.byMethod.GET).toBe(1);
  });
});
