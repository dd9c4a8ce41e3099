import { createServer, type IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { RetryableError } from '../core/errors.js';
import { HttpStatusError } from './http.js';
import { scriptedHttp } from './test-fixtures/scripted-http.js';

const { state, serve, makeClient } = scriptedHttp();

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
    await new Promise<void>((r) => state.server!.close(() => r()));
    state.server = undefined;
    let requests = 0;
    const { client, sleeps } = makeClient({
      // The server comes up during the backoff after the refused attempt.
      sleep: async (ms) => {
        sleeps.push(ms);
        state.server ??= createServer((_q, res) => {
          requests += 1;
          res.end('ok');
        });
        const server = state.server;
        if (!server.listening) await new Promise<void>((r) => server.listen(Number(port), '127.0.0.1', r));
      },
    });
    const res = await client.request({ method: 'POST', url: probe, json: {} });
    expect(await res.text()).toBe('ok');
    expect(requests).toBe(1);
    expect(sleeps).toHaveLength(1);
    expect(client.stats.byStatusClass.network).toBe(1);
  });
});
