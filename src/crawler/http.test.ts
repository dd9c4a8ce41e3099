import type { ServerResponse } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { freePort } from '../../scripts/lib/registry.js';
import {
  BudgetExhaustedError,
  CorruptInputError,
  HostUnreachableError,
  LimitExceededError,
  PermanentError,
  RateLimitedError,
  RetryableError,
  stopsTheRun,
} from '../core/errors.js';
import { HttpStatusError } from './http.js';
import { scriptedHttp } from './test-fixtures/scripted-http.js';

const { serve, makeClient } = scriptedHttp();

describe('HttpClient', () => {
  it("combines a request's signal with the client's only when they differ", async () => {
    // AbortSignal.any on Node 20 keeps an entry on the client's long-lived signal per call: a crawl's layer
    // downloads pass the client's own signal, and must not add one each.
    const base = await serve((_q, res) => res.end('ok'));
    const cut = new AbortController();
    const { client } = makeClient({ signal: cut.signal });
    const any = vi.spyOn(AbortSignal, 'any');
    try {
      for (let i = 0; i < 3; i++)
        await (await client.request({ url: `${base}/x`, signal: cut.signal })).text();
      await (await client.request({ url: `${base}/x` })).text();
      expect(any).not.toHaveBeenCalled();
      await (await client.request({ url: `${base}/x`, signal: new AbortController().signal })).text();
      expect(any).toHaveBeenCalledTimes(1);
    } finally {
      any.mockRestore();
    }
  });

  it('retries a 503 and returns the later success', async () => {
    const base = await serve((_q, res, n) => {
      res.statusCode = n < 2 ? 503 : 200;
      res.end(n < 2 ? 'busy' : 'ok');
    });
    const { client, sleeps } = makeClient();
    const res = await client.request({ url: `${base}/x` });
    expect(await res.text()).toBe('ok');
    expect(client.stats.retries).toBe(2);
    expect(client.stats.failures).toBe(0);
    expect(sleeps).toHaveLength(2);
  });

  it('gives up with RetryableError after maxRetries 5xx answers', async () => {
    const base = await serve((_q, res) => {
      res.statusCode = 502;
      res.end();
    });
    const { client } = makeClient({ maxRetries: 2 });
    await expect(client.request({ url: `${base}/x` })).rejects.toMatchObject({
      constructor: RetryableError,
      status: 502,
    });
    expect(client.stats.requests).toBe(3);
    expect(client.stats.failures).toBe(1);
  });

  it('retries a connection reset before the headers', async () => {
    const base = await serve((req, res, n) => {
      if (n === 0) {
        req.socket.destroy();
        return;
      }
      res.end('ok');
    });
    const { client } = makeClient();
    expect(await (await client.request({ url: base })).text()).toBe('ok');
    expect(client.stats.retries).toBe(1);
    expect(client.stats.byStatusClass.network).toBe(1);
  });

  it('stops asking a host that never answered after 3 requests in a row failed, without stopping anything', async () => {
    // A server that resets every connection before answering.
    const base = await serve((req) => req.socket.destroy());
    const { client } = makeClient({ maxRetries: 1, unreachableAfter: 3 });
    const fail = () => client.request({ url: `${base}/x` });
    // Never answered yet (a seed naming a host that is not there): its own requests fail, nothing stops,
    // and after three the host is not asked again in this client's life (no request reaches the server).
    for (let i = 0; i < 3; i++) await expect(fail()).rejects.toBeInstanceOf(RetryableError);
    const sent = client.stats.requests;
    await expect(fail()).rejects.toThrow(
      /^127\.0\.0\.1:\d+ answered none of the 3 requests before this one in this run, the last: connection failed \(\w+\); GET http:\/\/127\.0\.0\.1:\d+\/x not sent/,
    );
    expect(client.stats.requests).toBe(sent);
    expect(client.answeredHosts()).toEqual([]);
  });

  it('names why the last request to a host it no longer asks failed, host and cause first', async () => {
    // Nothing listens on the port: the cause a user needs is the refusal, not that the host is skipped.
    const host = `127.0.0.1:${await freePort()}`;
    const { client } = makeClient({ maxRetries: 0, unreachableAfter: 2 });
    const fail = () => client.request({ url: `http://${host}/v2/_catalog` });
    for (let i = 0; i < 2; i++) await expect(fail()).rejects.toBeInstanceOf(RetryableError);
    const err = await fail().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as Error).message).toBe(
      `${host} answered none of the 2 requests before this one in this run, the last: connection failed (ECONNREFUSED); GET http://${host}/v2/_catalog not sent, the next crawl tries it again`,
    );
    // The refusal itself goes with it, for a log that prints causes.
    expect((err as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('calls a host that answered an earlier invocation of the run unreachable at once (answeredHosts)', async () => {
    const base = await serve((req) => req.socket.destroy());
    const host = new URL(base).host;
    const { client } = makeClient({ maxRetries: 0, unreachableAfter: 2, answeredHosts: [host] });
    await expect(client.request({ url: `${base}/x` })).rejects.toBeInstanceOf(RetryableError);
    await expect(client.request({ url: `${base}/x` })).rejects.toBeInstanceOf(HostUnreachableError);
  });

  it('calls a host that answered unreachable after 3 requests in a row got nothing; it lists the host', async () => {
    let answer = false;
    const base = await serve((req, res) => {
      if (answer) res.end('ok');
      else req.socket.destroy();
    });
    const { client } = makeClient({ maxRetries: 1, unreachableAfter: 3 });
    const fail = () => client.request({ url: `${base}/x` });
    answer = true;
    await (await fail()).text();
    expect(client.answeredHosts()).toEqual([new URL(base).host]);
    answer = false;
    await expect(fail()).rejects.toBeInstanceOf(RetryableError);
    // A response in between starts the count again.
    answer = true;
    await (await fail()).text();
    answer = false;
    await expect(fail()).rejects.toBeInstanceOf(RetryableError);
    await expect(fail()).rejects.toBeInstanceOf(RetryableError);
    const third = fail();
    await expect(third).rejects.toBeInstanceOf(HostUnreachableError);
    await expect(third).rejects.toThrow(
      /^127\.0\.0\.1:\d+ stopped answering: 3 requests in a row got no response after all their retries/,
    );
    expect(stopsTheRun(await third.catch((e: unknown) => e))).toBe(true);
  });

  it('does not end a run of unanswered requests on the late answer to a request sent before it began', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let answer = true;
    const base = await serve((req, res) => {
      if (req.url === '/slow') void held.then(() => res.end('late'));
      else if (answer) res.end('ok');
      else req.socket.destroy();
    });
    const { client } = makeClient({ maxRetries: 0, unreachableAfter: 3 });
    const fail = () => client.request({ url: `${base}/x` });
    await (await fail()).text();
    const slow = client.request({ url: `${base}/slow` });
    await new Promise((resolve) => setTimeout(resolve, 20)); // sent before the outage
    answer = false;
    await expect(fail()).rejects.toBeInstanceOf(RetryableError);
    await expect(fail()).rejects.toBeInstanceOf(RetryableError);
    release();
    expect(await (await slow).text()).toBe('late');
    // Its answer went out while the host still answered: the third request in a row still stops the run.
    await expect(fail()).rejects.toBeInstanceOf(HostUnreachableError);
  });

  it('fails a TLS handshake with a plain-HTTP server at once, as a PermanentError that says what to set', async () => {
    const base = await serve((_q, res) => res.end('plain HTTP'));
    const https = base.replace('http://', 'https://');
    const host = new URL(base).host;
    const { client } = makeClient();
    const err = await client.request({ url: `${https}/v2/` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toBe(
      `${https}/v2/: the TLS handshake with ${host} failed (ERR_SSL_WRONG_VERSION_NUMBER); the server may speak plain HTTP: if so, set scheme: http for "${host}" under registries in the config file`,
    );
    expect(client.stats.retries).toBe(0);
  });

  it('waits out a 429 Retry-After in seconds and does not count a failure', async () => {
    const base = await serve((_q, res, n) => {
      if (n === 0) {
        res.writeHead(429, { 'retry-after': '7' });
        res.end();
        return;
      }
      res.end('ok');
    });
    const { client, sleeps } = makeClient();
    expect(await (await client.request({ url: base })).text()).toBe('ok');
    expect(client.stats.failures).toBe(0);
    expect(client.stats.retries).toBe(0);
    expect(client.stats.rateLimitPauses).toBe(1);
    expect(sleeps[0]).toBeGreaterThan(6000);
    expect(sleeps[0]).toBeLessThanOrEqual(7000);
  });

  it('waits until X-RateLimit-Reset after a Hub API 429 without Retry-After', async () => {
    const reset = Math.floor(Date.now() / 1000) + 10;
    const base = await serve((_q, res, n) => {
      if (n === 0) {
        res.writeHead(429, {
          'x-ratelimit-limit': '180',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String(reset),
        });
        res.end('{"detail":"Rate limit exceeded"}');
        return;
      }
      res.end('ok');
    });
    const { client, sleeps } = makeClient();
    expect(await (await client.request({ url: base })).text()).toBe('ok');
    expect(client.stats.rateLimitPauses).toBe(1);
    expect(sleeps[0]).toBeGreaterThan(8000);
    expect(sleeps[0]).toBeLessThanOrEqual(10_000);
  });

  it('lets 429s from requests already in flight share one host pause', async () => {
    const held: ServerResponse[] = [];
    const base = await serve((_q, res, n) => {
      if (n >= 4) {
        res.end('ok');
        return;
      }
      held.push(res);
      // Answer all four only once all four are in flight.
      if (held.length === 4) {
        for (const r of held) {
          r.writeHead(429);
          r.end();
        }
      }
    });
    const { client, sleeps } = makeClient({ concurrencyPerHost: 4 });
    const bodies = await Promise.all(
      [1, 2, 3, 4].map(async () => (await client.request({ url: base })).text()),
    );
    expect(bodies).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(client.stats.rateLimitPauses).toBe(1);
    expect(client.stats.failures).toBe(0);
    expect(sleeps.length).toBeGreaterThanOrEqual(1);
  });

  it('throws RateLimitedError when the server asks for a pause longer than maxPauseMs', async () => {
    const base = await serve((_q, res) => {
      res.writeHead(429, { 'retry-after': '3600' });
      res.end();
    });
    const { client } = makeClient({ maxPauseMs: 60_000 });
    const err = await client.request({ url: base }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).retryAfterMs).toBe(3_600_000);
    expect(client.stats.failures).toBe(0);
  });

  it('gives up at once when the caller aborts while the host is paused', async () => {
    const base = await serve((_q, res) => {
      res.writeHead(429, { 'retry-after': '60' });
      res.end();
    });
    const { client } = makeClient({ maxPauseMs: 120_000, sleep: undefined });
    const ac = new AbortController();
    const pending = client.request({ url: base, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const err = await pending.catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(client.stats.failures).toBe(0);
  });

  it('gives up at once when the caller aborts while waiting for headers', async () => {
    const base = await serve(() => {
      // never answers
    });
    const { client } = makeClient();
    const ac = new AbortController();
    const pending = client.request({ url: base, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const err = await pending.catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(RetryableError);
    expect(client.stats.retries).toBe(0);
  });

  it('refuses counted requests past maxPulls with BudgetExhaustedError', async () => {
    const base = await serve((_q, res) => res.end('{}'));
    const { client } = makeClient({ maxPulls: 2 });
    await (await client.request({ url: base, counted: true })).dump();
    await (await client.request({ url: base, counted: true })).dump();
    await expect(client.request({ url: base, counted: true })).rejects.toBeInstanceOf(BudgetExhaustedError);
    await (await client.request({ url: base })).dump();
    expect(client.stats.countedPulls).toBe(2);
  });

  it('refuses a counted request only once the in-flight pulls have really spent the budget', async () => {
    const held: ServerResponse[] = [];
    const base = await serve((q, res) => {
      held.push(res);
      if (held.length === 2) {
        // Let the third request reach the budget check while both pulls are still in flight.
        setTimeout(() => {
          for (const r of held) {
            r.statusCode = q.url === '/missing' ? 404 : 200;
            r.end('{}');
          }
        }, 50);
      }
    });
    const { client } = makeClient({ maxPulls: 2 });
    const results = await Promise.allSettled([
      client.request({ url: `${base}/a`, counted: true }),
      client.request({ url: `${base}/b`, counted: true }),
      client.request({ url: `${base}/c`, counted: true }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(BudgetExhaustedError);
    expect(client.stats.countedPulls).toBe(2);
  });

  it('lets a waiting counted request through when an in-flight pull fails', async () => {
    let n = 0;
    const held: ServerResponse[] = [];
    const base = await serve((_q, res) => {
      n += 1;
      if (n > 2) {
        res.end('{}');
        return;
      }
      held.push(res);
      if (held.length === 2) {
        setTimeout(() => {
          held[0]!.statusCode = 404;
          held[0]!.end();
          held[1]!.end('{}');
        }, 50);
      }
    });
    const { client } = makeClient({ maxPulls: 2 });
    const results = await Promise.allSettled([
      client.request({ url: `${base}/a`, counted: true }),
      client.request({ url: `${base}/b`, counted: true }),
      client.request({ url: `${base}/c`, counted: true }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect(client.stats.countedPulls).toBe(2);
  });

  it('ends counted requests once the registry reports ratelimit-remaining 0', async () => {
    const base = await serve((_q, res) => {
      res.writeHead(200, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600' });
      res.end('{}');
    });
    const { client } = makeClient();
    await (await client.request({ url: base, counted: true })).dump();
    const err = await client.request({ url: base, counted: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetExhaustedError);
    expect((err as Error).message).toMatch(/until about \d{4}-/);
  });

  it('turns a 429 pull-limit answer on a counted request into BudgetExhaustedError', async () => {
    const base = await serve((_q, res) => {
      res.writeHead(429, { 'ratelimit-remaining': '0;w=21600', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}');
    });
    const { client } = makeClient();
    await expect(client.request({ url: base, counted: true })).rejects.toBeInstanceOf(BudgetExhaustedError);
    expect(client.stats.countedPulls).toBe(0);
  });

  describe("Docker Hub's pull-limit 429 without quota headers", () => {
    const PULL_LIMIT =
      '{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}';
    /** Answers the pull limit on /manifests/, and 200 to everything else (blobs). */
    const hub = () => {
      const seen: string[] = [];
      const start = serve((q, res) => {
        seen.push(`${q.method} ${q.url}`);
        if (q.url?.startsWith('/manifests/')) {
          res.writeHead(429, { 'content-type': 'application/json' });
          res.end(PULL_LIMIT);
          return;
        }
        res.end('blob');
      });
      return { seen, start };
    };

    it('ends a counted request with BudgetExhaustedError after one GET, without pausing or backing off', async () => {
      const { seen, start } = hub();
      const base = await start;
      const { client, sleeps, events } = makeClient();
      const err = await client
        .request({ url: `${base}/manifests/a`, counted: true })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BudgetExhaustedError);
      expect(seen).toEqual(['GET /manifests/a']);
      expect(sleeps).toEqual([]);
      expect(events.filter((e) => e.type === 'rate-limited')).toEqual([]);
      expect(client.rateLimiter.remainingPauseMs(new URL(base).host)).toBe(0);
      expect(client.stats.countedPulls).toBe(0);
      expect(client.stats.failures).toBe(0);
    });

    it('refuses the next counted request without sending it', async () => {
      const { seen, start } = hub();
      const base = await start;
      const { client } = makeClient();
      await client.request({ url: `${base}/manifests/a`, counted: true }).catch(() => {});
      await expect(client.request({ url: `${base}/manifests/b`, counted: true })).rejects.toBeInstanceOf(
        BudgetExhaustedError,
      );
      expect(seen).toEqual(['GET /manifests/a']);
    });

    it('lets uncounted requests to the same host go on at once', async () => {
      const { start } = hub();
      const base = await start;
      const { client, sleeps } = makeClient();
      await client.request({ url: `${base}/manifests/a`, counted: true }).catch(() => {});
      expect(await (await client.request({ url: `${base}/blobs/x` })).text()).toBe('blob');
      expect(await (await client.request({ url: `${base}/blobs/y`, method: 'HEAD' })).status).toBe(200);
      expect(sleeps).toEqual([]);
    });

    it('ends an uncounted request with BudgetExhaustedError too, rather than backing off for hours', async () => {
      const { seen, start } = hub();
      const base = await start;
      const { client, sleeps } = makeClient();
      await expect(client.request({ url: `${base}/manifests/a` })).rejects.toBeInstanceOf(
        BudgetExhaustedError,
      );
      expect(seen).toEqual(['GET /manifests/a']);
      expect(sleeps).toEqual([]);
    });
  });

  it('still pauses and retries a counted request on a generic TOOMANYREQUESTS 429 with Retry-After', async () => {
    const base = await serve((_q, res, n) => {
      if (n === 0) {
        res.writeHead(429, { 'retry-after': '3', 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests"}]}');
        return;
      }
      res.end('{}');
    });
    const { client, sleeps, events } = makeClient();
    expect(await (await client.request({ url: base, counted: true })).text()).toBe('{}');
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThan(2000);
    expect(sleeps[0]).toBeLessThanOrEqual(3000);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'rate-limited', reason: 'TOOMANYREQUESTS' }),
    );
    expect(client.stats.countedPulls).toBe(1);
  });

  it('still pauses and retries a counted request on a bare 429 (the abuse limit)', async () => {
    const base = await serve((_q, res, n) => {
      res.statusCode = n === 0 ? 429 : 200;
      res.end(n === 0 ? 'Too Many Requests' : '{}');
    });
    const { client, sleeps } = makeClient();
    expect(await (await client.request({ url: base, counted: true })).text()).toBe('{}');
    expect(sleeps).toHaveLength(1);
    expect(client.stats.rateLimitPauses).toBe(1);
    expect(client.stats.countedPulls).toBe(1);
  });

  it('throws HttpStatusError (a PermanentError) with the status for a 404', async () => {
    const base = await serve((_q, res) => {
      res.statusCode = 404;
      res.end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
    });
    const { client } = makeClient();
    const err = await client.request({ url: base }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as HttpStatusError).status).toBe(404);
    expect((err as HttpStatusError).bodySnippet).toContain('MANIFEST_UNKNOWN');
  });

  it('names an HTML page by its title, not its markup, in a 4xx or 5xx message', async () => {
    // A URL that reaches a web server or a proxy, not a registry: its error pages are HTML.
    const page = (title: string) =>
      `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN">\n<html><head>\n<title>${title}</title></head><body>…</body></html>`;
    const base = await serve((q, res) => {
      res.statusCode = q.url === '/gone' ? 404 : 502;
      res.end(page(q.url === '/gone' ? 'Error response' : '502 Bad   Gateway'));
    });
    const { client } = makeClient({ maxRetries: 0 });
    await expect(client.request({ url: `${base}/gone` })).rejects.toThrow(
      `${base}/gone answered 404: an HTML page titled "Error response", not a registry API answer`,
    );
    await expect(client.request({ url: `${base}/x` })).rejects.toThrow(
      `GET ${base}/x answered 502: an HTML page titled "502 Bad Gateway", not a registry API answer (after 1 attempt)`,
    );
  });

  it('names a page that opens with an XML declaration or a comment by its title, entities decoded', async () => {
    const base = await serve((_q, res) => {
      res.statusCode = 403;
      res.end(
        '<?xml version="1.0"?>\n<!-- generated -->\n<html><head><title>Access &amp; rights &#8212; &#x41;</title></head></html>',
      );
    });
    const { client } = makeClient();
    await expect(client.request({ url: `${base}/denied` })).rejects.toThrow(
      `${base}/denied answered 403: an HTML page titled "Access & rights \u2014 A", not a registry API answer`,
    );
  });

  it('returns a 4xx listed in passStatuses as a response', async () => {
    const base = await serve((_q, res) => {
      res.statusCode = 404;
      res.end();
    });
    const { client } = makeClient();
    expect((await client.request({ url: base, passStatuses: [404] })).status).toBe(404);
  });

  it('does not follow redirects', async () => {
    const base = await serve((_q, res) => {
      res.writeHead(307, { location: 'http://127.0.0.1:1/elsewhere' });
      res.end();
    });
    const { client } = makeClient();
    const res = await client.request({ url: base });
    expect(res.status).toBe(307);
  });

  it('rejects a body over maxBodyBytes with LimitExceededError', async () => {
    const base = await serve((_q, res) => res.end('x'.repeat(5000)));
    const { client } = makeClient();
    const res = await client.request({ url: base, maxBodyBytes: 1000 });
    await expect(res.bytes()).rejects.toBeInstanceOf(LimitExceededError);
  });

  it('reports malformed JSON as CorruptInputError naming the URL', async () => {
    const base = await serve((_q, res) => res.end('{nope'));
    const { client } = makeClient();
    const res = await client.request({ url: `${base}/j` });
    await expect(res.json()).rejects.toThrow(CorruptInputError);
  });

  it('retries a body cut short when buffer is set', async () => {
    const base = await serve((_q, res, n) => {
      res.writeHead(200, { 'content-length': '10' });
      if (n === 0) {
        res.write('abc');
        setTimeout(() => res.socket?.destroy(), 5);
        return;
      }
      res.end('0123456789');
    });
    const { client } = makeClient();
    const res = await client.request({ url: base, buffer: true });
    expect(await res.text()).toBe('0123456789');
    expect(client.stats.retries).toBe(1);
  });

  describe('a body that comes slower than minBodyBytesPerSecond once timeoutMs of waiting has passed', () => {
    /** A 400-byte body sent `bytes` at a time every `everyMs`. */
    const trickle = (bytes: number, everyMs: number) =>
      serve((_q, res) => {
        res.writeHead(200, { 'content-length': '400' });
        let sent = 0;
        const timer = setInterval(() => {
          res.write('x'.repeat(bytes));
          sent += bytes;
          if (sent >= 400) {
            clearInterval(timer);
            res.end();
          }
        }, everyMs);
        res.on('close', () => clearInterval(timer));
      });

    it('ends as RetryableError naming the URL and the pace, though it never stalls past timeoutMs', async () => {
      const base = await trickle(1, 20); // about 50 bytes/s
      const { client } = makeClient({ timeoutMs: 300, minBodyBytesPerSecond: 200 });
      const res = await client.request({ url: `${base}/m` });
      const err = await res.bytes().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RetryableError);
      expect((err as Error).message).toMatch(
        new RegExp(
          `^${base}/m sent its body at [\\d.]+ bytes/s \\(\\d+ bytes in \\d+ s\\), under the 200 bytes/s`,
        ),
      );
    });

    it('goes on for a body that comes faster, and does not count the time its reader holds a chunk', async () => {
      const base = await trickle(20, 10); // about 2000 bytes/s
      const { client } = makeClient({ timeoutMs: 100, minBodyBytesPerSecond: 1500 });
      const res = await client.request({ url: base });
      let n = 0;
      for await (const chunk of res.body) {
        n += chunk.length;
        // A slow reader: by the wall clock the body comes at under 1500 bytes/s.
        await new Promise((r) => setTimeout(r, 150));
      }
      expect(n).toBe(400);
    });
  });

  it('surfaces a body that stalls past timeoutMs as RetryableError', async () => {
    const base = await serve((_q, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.write('abc');
    });
    const { client } = makeClient({ timeoutMs: 200 });
    const res = await client.request({ url: base });
    await expect(res.bytes()).rejects.toBeInstanceOf(RetryableError);
  });
});
