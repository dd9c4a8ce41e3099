/**
 * The HttpClient tests' kit: a scripted loopback server (the handler sees each request with its 0-based
 * index) and an HttpClient whose backoff and pause sleeps are recorded instead of waited. A test file
 * calls `scriptedHttp()` once at its top level; the afterEach it registers closes both.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';
import { HttpClient, type HttpClientOptions } from '../http.js';
import type { HttpEvent } from '../stats.js';

export type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** What a test file uses; `state` is there for a test that stops or replaces the server itself. */
export function scriptedHttp() {
  const state: { server?: Server | undefined; client?: HttpClient | undefined } = {};

  afterEach(async () => {
    await state.client?.close();
    state.client = undefined;
    const server = state.server;
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    state.server = undefined;
  });

  async function serve(handler: Handler): Promise<string> {
    let n = 0;
    const server = createServer((req, res) => handler(req, res, n++));
    state.server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** A client closed after the test, with `retryBaseMs` 10 and its sleeps and events recorded. */
  function makeClient(opts: HttpClientOptions = {}): {
    client: HttpClient;
    sleeps: number[];
    events: HttpEvent[];
  } {
    const sleeps: number[] = [];
    const events: HttpEvent[] = [];
    const client = new HttpClient({
      retryBaseMs: 10,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      onEvent: (e) => events.push(e),
      ...opts,
    });
    state.client = client;
    return { client, sleeps, events };
  }

  return { state, serve, makeClient };
}
