/**
 * A programmable reverse proxy on loopback, in front of the real registry (or any server), that
 * injects the faults a crawler meets on the internet: canned answers (429 + Retry-After, 503),
 * connection resets before or during a body, stalls, truncated and corrupted bodies, delays.
 * Everything no rule matches is passed through faithfully, streaming, with all headers; Location
 * and WWW-Authenticate realms that point at the upstream are rewritten to point at the proxy.
 */
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type FaultAction =
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string }
  | { kind: 'reset-before-headers' }
  | { kind: 'reset-mid-body'; afterBytes: number }
  | { kind: 'stall-body'; afterBytes: number; stallMs: number }
  /** Keeps the upstream Content-Length, sends `dropBytes` fewer bytes, then closes the connection. */
  | { kind: 'short-body'; dropBytes: number }
  /**
   * Answers as an HTTP/1.0 server may: no Content-Length, the body's end marked by closing the connection,
   * here `dropBytes` early, so the client cannot tell the body was cut.
   */
  | { kind: 'close-delimited-cut'; dropBytes: number }
  /** Flips every bit of the byte at offset `atByte` of the body (length unchanged). */
  | { kind: 'corrupt-body'; atByte: number }
  /** Waits, then proxies normally. */
  | { kind: 'delay'; ms: number }
  /** Holds the request until `until` resolves (a state the test waits for), then proxies normally. */
  | { kind: 'hold'; until: () => Promise<void> };

export interface FaultRule {
  method?: string;
  /** Tested against the request target (path + query), e.g. /\/blobs\/sha256:/. */
  path: RegExp;
  /** How many matching requests this rule applies to; default 1; Infinity allowed. */
  times?: number;
  /** Matching requests let through untouched before the rule applies (a server that goes down later). Default 0. */
  after?: number;
  action: FaultAction;
}

export interface FaultLogEntry {
  method: string;
  path: string;
  status: number | 'reset';
  /** Request headers as the proxy received them (e.g. to check Authorization). */
  headers: Record<string, string | string[] | undefined>;
}

export interface FaultProxy {
  url: string;
  host: string;
  addRule(r: FaultRule): void;
  clearRules(): void;
  /** Clears the rules and the log: a clean proxy between tests that share it. */
  reset(): void;
  log: FaultLogEntry[];
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

function rewriteHeaders(
  headers: IncomingHttpHeaders,
  from: string,
  to: string,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k)) continue;
    if (k === 'location' || k === 'www-authenticate') {
      out[k] = Array.isArray(v) ? v.map((x) => x.split(from).join(to)) : v.split(from).join(to);
    } else out[k] = v;
  }
  return out;
}

/** Sends TCP RST where the platform allows (a real "connection reset by peer"), else closes. */
function reset(socket: Socket | null | undefined): void {
  if (!socket || socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

/** Starts the proxy on a free 127.0.0.1 port in front of `upstreamUrl`. */
export async function startFaultProxy(upstreamUrl: string): Promise<FaultProxy> {
  const upstream = new URL(upstreamUrl);
  const upstreamOrigin = upstream.origin;
  const agent = new Agent({ keepAlive: true });
  const rules: Array<FaultRule & { left: number; skip: number }> = [];
  const log: FaultLogEntry[] = [];
  let proxyOrigin = '';

  const take = (method: string, path: string): FaultAction | undefined => {
    const i = rules.findIndex((r) => (!r.method || r.method.toUpperCase() === method) && r.path.test(path));
    const rule = rules[i];
    if (!rule) return undefined;
    if (rule.skip > 0) {
      rule.skip--;
      return undefined;
    }
    rule.left--;
    if (rule.left <= 0) rules.splice(i, 1);
    return rule.action;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const entry: FaultLogEntry = { method, path, status: 'reset', headers: { ...req.headers } };
    log.push(entry);
    let action = take(method, path);
    if (action?.kind === 'delay') {
      await sleep(action.ms);
      action = undefined;
    } else if (action?.kind === 'hold') {
      await action.until();
      action = undefined;
    }
    if (action?.kind === 'reset-before-headers') {
      reset(req.socket);
      return;
    }
    if (action?.kind === 'respond') {
      entry.status = action.status;
      req.resume();
      res.writeHead(action.status, {
        'content-length': Buffer.byteLength(action.body ?? ''),
        ...action.headers,
      });
      res.end(action.body ?? '');
      return;
    }
    const bodyAction = action;
    const headers = rewriteHeaders(req.headers, proxyOrigin, upstreamOrigin);
    headers.host = upstream.host;
    const up = request(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method,
        path,
        headers,
        agent,
      },
      (upRes) => {
        const status = upRes.statusCode ?? 502;
        entry.status = status;
        const outHeaders = rewriteHeaders(upRes.headers, upstreamOrigin, proxyOrigin);
        if (bodyAction?.kind === 'close-delimited-cut') {
          void closeDelimitedCut(upRes, res, outHeaders, bodyAction.dropBytes).catch(() => reset(res.socket));
          return;
        }
        res.writeHead(status, upRes.statusMessage, outHeaders);
        void pipeBody(upRes, res, bodyAction).catch(() => reset(res.socket));
      },
    );
    up.on('error', () => {
      entry.status = 'reset';
      reset(req.socket);
    });
    req.on('aborted', () => up.destroy());
    req.pipe(up);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => reset(req.socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  proxyOrigin = `http://127.0.0.1:${port}`;

  return {
    url: proxyOrigin,
    host: `127.0.0.1:${port}`,
    addRule(r) {
      rules.push({ ...r, left: r.times ?? 1, skip: r.after ?? 0 });
    },
    clearRules() {
      rules.length = 0;
    },
    reset() {
      rules.length = 0;
      log.length = 0;
    },
    log,
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The upstream answer written raw as HTTP/1.0 without a length, `dropBytes` short, then the socket closed. */
async function closeDelimitedCut(
  upRes: IncomingMessage,
  res: ServerResponse,
  headers: IncomingHttpHeaders,
  dropBytes: number,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of upRes) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  const lines = [`HTTP/1.0 ${upRes.statusCode} ${upRes.statusMessage ?? ''}`];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || ['content-length', 'transfer-encoding', 'connection'].includes(name)) continue;
    for (const one of [value].flat()) lines.push(`${name}: ${one}`);
  }
  lines.push('connection: close', '', '');
  res.socket?.end(
    Buffer.concat([Buffer.from(lines.join('\r\n')), body.subarray(0, Math.max(0, body.length - dropBytes))]),
  );
}

/** Streams the upstream body to the client, applying a body fault if any. */
async function pipeBody(
  upRes: IncomingMessage,
  res: ServerResponse,
  action: FaultAction | undefined,
): Promise<void> {
  const write = (chunk: Buffer): Promise<void> =>
    new Promise((resolve) => {
      // A client that went away never drains: resolve on close too, so the loop ends.
      if (res.destroyed || res.write(chunk)) resolve();
      else {
        // Whichever comes first removes the other, so a long body does not pile up listeners.
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.once('drain', done);
        res.once('close', done);
      }
    });
  if (action?.kind === 'short-body') {
    // Needs the whole body to know where to stop; registry bodies in tests are small.
    const chunks: Buffer[] = [];
    for await (const c of upRes) chunks.push(c as Buffer);
    const all = Buffer.concat(chunks);
    await write(all.subarray(0, Math.max(0, all.length - action.dropBytes)));
    // Destroy instead of ending the message: the client is still owed bytes it will never get, and a
    // half-closed keep-alive socket could hang the next request on it until the headers timeout.
    res.socket?.destroy();
    return;
  }
  let sent = 0;
  let stalled = false;
  for await (const raw of upRes) {
    if (res.destroyed) {
      upRes.destroy();
      return;
    }
    let chunk = raw as Buffer;
    if (action?.kind === 'corrupt-body' && action.atByte >= sent && action.atByte < sent + chunk.length) {
      chunk = Buffer.from(chunk);
      const i = action.atByte - sent;
      chunk[i] = (chunk[i] ?? 0) ^ 0xff;
    }
    if (
      (action?.kind === 'reset-mid-body' || action?.kind === 'stall-body') &&
      sent + chunk.length > action.afterBytes
    ) {
      const head = chunk.subarray(0, Math.max(0, action.afterBytes - sent));
      if (head.length > 0 && !(action.kind === 'stall-body' && stalled)) await write(head);
      if (action.kind === 'reset-mid-body') {
        upRes.destroy();
        // Let the bytes already written reach the kernel first: a reset drops unsent buffers.
        await new Promise<void>((resolve) => res.write(Buffer.alloc(0), () => resolve()));
        await sleep(20);
        reset(res.socket);
        return;
      }
      if (!stalled) {
        stalled = true;
        await sleep(action.stallMs);
        chunk = chunk.subarray(head.length);
      }
    }
    await write(chunk);
    sent += (raw as Buffer).length;
  }
  res.end();
}
