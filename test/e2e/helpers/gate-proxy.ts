/**
 * A pass-through proxy in front of the real registry that HOLDS requests matching a pattern until
 * the test opens the gate, so a test can act "mid-crawl" (signal the process, start a second crawl)
 * at a moment it knows for certain, without timing guesses.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GateProxy {
  url: string;
  host: string;
  /** Resolves when the first held request has arrived. */
  held(): Promise<void>;
  /** Lets every held and future request through. */
  open(): void;
  /** Holds matching requests again (a new `held()` waits for the next one). */
  close(): void;
  stop(): Promise<void>;
}

export async function startGateProxy(upstreamUrl: string, hold: RegExp): Promise<GateProxy> {
  const upstream = new URL(upstreamUrl);
  let isOpen = false;
  let waiting: Array<() => void> = [];
  let arrived!: () => void;
  let arrival = new Promise<void>((r) => {
    arrived = r;
  });

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    if (req.destroyed || res.destroyed) return;
    const up = request(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  };

  const server = createServer((req, res) => {
    if (!isOpen && hold.test(req.url ?? '')) {
      waiting.push(() => forward(req, res));
      arrived();
      return;
    }
    forward(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    held: () => arrival,
    open() {
      isOpen = true;
      const w = waiting;
      waiting = [];
      for (const go of w) go();
    },
    close() {
      isOpen = false;
      arrival = new Promise<void>((r) => {
        arrived = r;
      });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
