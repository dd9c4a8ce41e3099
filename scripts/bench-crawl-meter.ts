/**
 * Measuring what a client pulls from the registry: a TCP byte counter (exact bytes on the wire,
 * headers included) in front of the fault proxy (no faults; its request log says what was asked),
 * in front of the real registry. Client → counter → fault proxy → registry.
 */
import { connect, createServer, type Socket } from 'node:net';
import type { BenchImageSet } from './bench-crawl-images.js';
import { type FaultLogEntry, type FaultProxy, startFaultProxy } from './lib/fault-proxy.js';

export interface Meter {
  /** http://127.0.0.1:PORT of the counter: what the client is pointed at. */
  url: string;
  host: string;
  proxy: FaultProxy;
  /** Bytes the client received (responses, with headers) and sent (requests). */
  bytesDown(): number;
  bytesUp(): number;
  stop(): Promise<void>;
}

/** Starts a fault proxy in front of `registryUrl` and a byte counter in front of the proxy. */
export async function startMeter(registryUrl: string): Promise<Meter> {
  const proxy = await startFaultProxy(registryUrl);
  const proxyPort = Number(new URL(proxy.url).port);
  let down = 0;
  let up = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(proxyPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (c: Buffer) => {
      up += c.length;
    });
    upstream.on('data', (c: Buffer) => {
      down += c.length;
    });
    // pipe() half-closes the other side after the bytes in flight are written; destroying it on
    // 'close' instead would drop what a slow reader has not taken yet (a truncated blob).
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy()).on('close', () => sockets.delete(client));
    upstream.on('error', () => client.destroy()).on('close', () => sockets.delete(upstream));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    proxy,
    bytesDown: () => down,
    bytesUp: () => up,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await proxy.stop();
    },
  };
}

export interface Traffic {
  requests: number;
  pings: number;
  listings: number;
  manifestGets: number;
  manifestHeads: number;
  configGets: number;
  layerGets: number;
  /** Layer GETs of a digest already fetched before in the same run. */
  repeatedLayerGets: number;
  otherRequests: number;
  /** Body bytes of the 200 answers to blob and manifest GETs, from the known sizes. */
  layerBodyBytes: number;
  configBodyBytes: number;
  manifestBodyBytes: number;
  wireBytesDown: number;
  wireBytesUp: number;
}

const MANIFEST = /^\/v2\/(.+)\/manifests\/([^/?]+)$/;
const BLOB = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/;

/** Classifies the proxy's log against the images we pushed. */
export function summarize(log: FaultLogEntry[], set: BenchImageSet, meter: Meter): Traffic {
  const manifestSizeByRef = new Map<string, number>();
  for (const { repository, tag, image } of set.images) {
    manifestSizeByRef.set(`${repository}:${tag}`, image.manifest.length);
    manifestSizeByRef.set(`${repository}:${image.digest}`, image.manifest.length);
  }
  const t: Traffic = {
    requests: log.length,
    pings: 0,
    listings: 0,
    manifestGets: 0,
    manifestHeads: 0,
    configGets: 0,
    layerGets: 0,
    repeatedLayerGets: 0,
    otherRequests: 0,
    layerBodyBytes: 0,
    configBodyBytes: 0,
    manifestBodyBytes: 0,
    wireBytesDown: meter.bytesDown(),
    wireBytesUp: meter.bytesUp(),
  };
  const seenLayers = new Set<string>();
  for (const e of log) {
    const path = e.path.split('?')[0] ?? e.path;
    const ok = e.status === 200;
    const m = MANIFEST.exec(path);
    const b = BLOB.exec(path);
    if (path === '/v2/' || path === '/v2') t.pings++;
    else if (path === '/v2/_catalog' || path.endsWith('/tags/list')) t.listings++;
    else if (m && e.method === 'HEAD') t.manifestHeads++;
    else if (m && e.method === 'GET') {
      t.manifestGets++;
      if (ok) t.manifestBodyBytes += manifestSizeByRef.get(`${m[1]}:${m[2]}`) ?? 0;
    } else if (b && e.method === 'GET') {
      const blob = set.blobs.get(b[2] as string);
      if (blob?.kind === 'config') {
        t.configGets++;
        if (ok) t.configBodyBytes += blob.size;
      } else {
        t.layerGets++;
        if (seenLayers.has(b[2] as string)) t.repeatedLayerGets++;
        seenLayers.add(b[2] as string);
        if (ok) t.layerBodyBytes += blob?.size ?? 0;
      }
    } else t.otherRequests++;
  }
  return t;
}
