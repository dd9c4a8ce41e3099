/**
 * A second loopback host that serves one blob and records every request's headers, standing in
 * for the CDN / object store that Docker Hub redirects blob downloads to. Tests use it to prove
 * that the registry's Authorization header is never forwarded on a cross-host redirect.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FaultProxy } from '../../scripts/lib/fault-proxy.js';

export interface BlobHostRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface BlobHost {
  url: string;
  host: string;
  /** Every request received, in order. */
  requests: BlobHostRequest[];
  /** Replaces the bytes served (e.g. to serve a corrupt blob). */
  setBlob(data: Buffer): void;
  stop(): Promise<void>;
}

/** Serves `data` on any path (GET and HEAD; honours a simple `Range: bytes=N-`). */
export async function startBlobHost(data: Buffer | { data: Buffer }): Promise<BlobHost> {
  let blob = Buffer.isBuffer(data) ? data : data.data;
  const requests: BlobHostRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers } });
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    const start = range?.[1] ? Math.min(Number(range[1]), blob.length) : 0;
    const body = blob.subarray(start);
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'accept-ranges': 'bytes',
    };
    if (range) headers['content-range'] = `bytes ${start}-${blob.length - 1}/${blob.length}`;
    res.writeHead(range ? 206 : 200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    setBlob(d) {
      blob = d;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Makes `proxy` answer blob GETs with 307 to `host` (like Docker Hub's redirect to its CDN).
 * The Location carries a presigned-looking query so clients must keep it verbatim.
 */
export function redirectBlobsTo(
  proxy: FaultProxy,
  host: BlobHost,
  opts: { times?: number; status?: 301 | 302 | 303 | 307 | 308; location?: string } = {},
): void {
  proxy.addRule({
    method: 'GET',
    path: /\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}/,
    times: opts.times ?? Number.POSITIVE_INFINITY,
    action: {
      kind: 'respond',
      status: opts.status ?? 307,
      headers: {
        location: opts.location ?? `${host.url}/blob-cdn/data?X-Amz-Signature=fixture&expires=3600`,
      },
    },
  });
}
