import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BudgetExhaustedError,
  CorruptInputError,
  LimitExceededError,
  PermanentError,
  RateLimitedError,
  RetryableError,
} from '../core/errors.js';
import { HttpClient, type HttpClientOptions, HttpStatusError } from './http.js';
import type { HttpEvent } from './stats.js';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

let server: Server | undefined;
let client: HttpClient | undefined;

/** A scripted loopback server: the handler sees each request with its 0-based index. */
async function serve(handler: Handler): Promise<string> {
  let n = 0;
  server = createServer((req, res) => handler(req, res, n++));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function makeClient(opts: HttpClientOptions = {}): {
  client: HttpClient;
  sleeps: number[];
  events: HttpEvent[];
} {
  const sleeps: number[] = [];
  const events: HttpEvent[] = [];
  client = new HttpClient({
    retryBaseMs: 10,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    onEvent: (e) => events.push(e),
    ...opts,
  });
  return { client, sleeps, events };
}

afterEach(async () => {
  await client?.close();
  client = undefined;
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

describe('HttpClient', () => {
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
    client = new HttpClient({ maxPauseMs: 120_000 });
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

describe('HttpClient POST', () => {
  const SECRET = 'dckr_pat_post-body-secret';

  /** Reads a request body on the fake server. */
  async function bodyOf(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  it('sends the JSON body with content-type application/json', async () => {
    const seen: Array<{ method?: string; type?: string; body: string }> = [];
    const base = await serve(async (req, res) => {
      seen.push({ method: req.method, type: req.headers['content-type'], body: await bodyOf(req) });
      res.end('{}');
    });
    const { client } = makeClient();
    const res = await client.request({
      method: 'POST',
      url: base,
      json: { identifier: 'a', secret: SECRET },
    });
    expect(res.status).toBe(200);
    expect(seen).toEqual([
      { method: 'POST', type: 'application/json', body: JSON.stringify({ identifier: 'a', secret: SECRET }) },
    ]);
  });

  it('refuses a JSON body on a GET before sending anything', async () => {
    let requests = 0;
    const base = await serve((_q, res) => {
      requests += 1;
      res.end();
    });
    const { client } = makeClient();
    await expect(client.request({ url: base, json: {} })).rejects.toThrow(TypeError);
    expect(requests).toBe(0);
  });

  it('sends a POST again after a 503, waiting its Retry-After', async () => {
    const bodies: string[] = [];
    const base = await serve(async (req, res, n) => {
      bodies.push(await bodyOf(req));
      res.writeHead(n === 0 ? 503 : 200, n === 0 ? { 'retry-after': '3' } : {});
      res.end();
    });
    const { client, sleeps } = makeClient();
    const res = await client.request({ method: 'POST', url: base, json: { n: 1 } });
    expect(res.status).toBe(200);
    expect(sleeps).toEqual([3000]);
    expect(bodies).toEqual(['{"n":1}', '{"n":1}']);
  });

  it('sends a POST again after a 429, waiting its Retry-After', async () => {
    const base = await serve(async (req, res, n) => {
      await bodyOf(req);
      res.writeHead(n === 0 ? 429 : 200, n === 0 ? { 'retry-after': '5' } : {});
      res.end();
    });
    const { client, sleeps } = makeClient();
    expect((await client.request({ method: 'POST', url: base, json: {} })).status).toBe(200);
    expect(sleeps).toEqual([5000]);
  });

  it('does not send a POST again after a 500, nor quote the answer that echoes its body', async () => {
    let requests = 0;
    const base = await serve(async (req, res) => {
      requests += 1;
      res.statusCode = 500;
      res.end(`could not handle ${await bodyOf(req)}`);
    });
    const { client, sleeps, events } = makeClient();
    const err = await client.request({ method: 'POST', url: base, json: { secret: SECRET } }).catch((e) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({ status: 500 });
    expect(requests).toBe(1);
    expect(sleeps).toEqual([]);
    expect(JSON.stringify([String(err), events])).not.toContain(SECRET);
  });

  it('does not quote a POST answer in an HttpStatusError', async () => {
    const base = await serve(async (req, res) => {
      res.statusCode = 400;
      res.end(`bad request: ${await bodyOf(req)}`);
    });
    const { client } = makeClient();
    const err = await client.request({ method: 'POST', url: base, json: { secret: SECRET } }).catch((e) => e);
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err).toMatchObject({ status: 400, bodySnippet: '' });
    expect(String(err)).not.toContain(SECRET);
  });

  it('does not send a POST again when the connection drops after the request was sent', async () => {
    let requests = 0;
    const base = await serve(async (req) => {
      requests += 1;
      await bodyOf(req);
      req.socket.destroy();
    });
    const { client, sleeps } = makeClient();
    const err = await client.request({ method: 'POST', url: base, json: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as Error).message).toMatch(/not sent again/);
    expect(requests).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('sends an idempotent POST (a login) again after a drop after sending and after a 500, body intact', async () => {
    const bodies: string[] = [];
    const base = await serve(async (req, res, n) => {
      bodies.push(await bodyOf(req));
      if (n === 0) req.socket.destroy();
      else if (n === 1) {
        res.statusCode = 500;
        res.end();
      } else res.end('token');
    });
    const { client, sleeps } = makeClient();
    const res = await client.request({ method: 'POST', idempotent: true, url: base, json: { n: 1 } });
    expect(await res.text()).toBe('token');
    expect(bodies).toEqual(['{"n":1}', '{"n":1}', '{"n":1}']);
    expect(sleeps).toHaveLength(2);
  });

  it('sends a POST again when the connection was refused, so it never reached the server', async () => {
    const probe = await serve(() => {});
    const port = new URL(probe).port;
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    let requests = 0;
    const { client, sleeps } = makeClient({
      // The server comes up during the backoff after the refused attempt.
      sleep: async (ms) => {
        sleeps.push(ms);
        server ??= createServer((_q, res) => {
          requests += 1;
          res.end('ok');
        });
        if (!server.listening) await new Promise<void>((r) => server!.listen(Number(port), '127.0.0.1', r));
      },
    });
    const res = await client.request({ method: 'POST', url: probe, json: {} });
    expect(await res.text()).toBe('ok');
    expect(requests).toBe(1);
    expect(sleeps).toHaveLength(1);
    expect(client.stats.byStatusClass.network).toBe(1);
  });
});
