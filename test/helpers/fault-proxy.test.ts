/**
 * Self-tests of the fault proxy and blob host in front of the real registry: each fault does
 * exactly what its name says, and everything else passes through unchanged.
 */
import { randomBytes } from 'node:crypto';
import { get } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../scripts/lib/fault-proxy.js';
import { type BuiltBlob, blobOf, sha256 } from '../../scripts/lib/image-builder.js';
import { pushBlob } from '../../scripts/lib/push.js';
import { type BlobHost, redirectBlobsTo, startBlobHost } from './blob-host.js';

const registries = inject('registries');
const REPO = 'selftest/faults';
let blob: BuiltBlob;
let proxy: FaultProxy;
let blobPath: string;

beforeAll(async () => {
  // Random bytes: big enough to arrive in several chunks, unique per run.
  blob = blobOf(randomBytes(256 * 1024), 'application/octet-stream');
  await pushBlob(registries.none, REPO, blob);
  proxy = await startFaultProxy(registries.none.url);
  blobPath = `/v2/${REPO}/blobs/${blob.digest}`;
});
afterAll(async () => {
  await proxy.stop();
});

interface RawResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** How the body ended: cleanly, or with an error / premature close. */
  ended: 'end' | 'error';
  /** Arrival time (ms, monotonic) of each chunk with its size. */
  chunks: Array<{ at: number; size: number }>;
}

/** A plain node:http GET that reports exactly what arrived, even when the body breaks off. */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    // Once the response has begun, a socket error ends the body instead of failing the request.
    let onSocketError: (() => void) | undefined;
    const req = get(url, { headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      const chunks: RawResult['chunks'] = [];
      let settled = false;
      onSocketError = () => finish('error');
      const finish = (ended: RawResult['ended']) => {
        if (settled) return;
        settled = true;
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts),
          ended,
          chunks,
        });
      };
      res.on('data', (c: Buffer) => {
        parts.push(c);
        chunks.push({ at: performance.now(), size: c.length });
      });
      res.on('end', () => finish(res.complete ? 'end' : 'error'));
      res.on('error', () => finish('error'));
      res.on('aborted', () => finish('error'));
      res.on('close', () => finish(res.complete ? 'end' : 'error'));
    });
    req.on('error', (err) => (onSocketError ? onSocketError() : reject(err)));
  });
}

describe('fault proxy', () => {
  it('passes a blob through unchanged when no rule matches', async () => {
    const r = await rawGet(`${proxy.url}${blobPath}`);
    expect(r.status).toBe(200);
    expect(sha256(r.body)).toBe(blob.digest);
    expect(r.headers['docker-content-digest']).toBe(blob.digest);
  });

  it('rewrites an upload Location that points at the upstream to point at the proxy', async () => {
    const res = await fetch(`${proxy.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
    await res.arrayBuffer();
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toMatch(new RegExp(`^${proxy.url}/v2/${REPO}/blobs/uploads/`));
  });

  it('answers a canned 429 with Retry-After the given number of times, then passes through', async () => {
    proxy.addRule({
      path: /\/manifests\//,
      times: 2,
      action: { kind: 'respond', status: 429, headers: { 'retry-after': '7' }, body: '{"errors":[]}' },
    });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${proxy.url}/v2/${REPO}/manifests/missing`);
      await res.arrayBuffer();
      statuses.push(res.status);
      retryAfter ??= res.headers.get('retry-after');
    }
    expect(statuses).toEqual([429, 429, 404]);
    expect(retryAfter).toBe('7');
  });

  it('applies a rule only to its method', async () => {
    proxy.addRule({ method: 'HEAD', path: /\/blobs\//, action: { kind: 'respond', status: 503 } });
    const get1 = await fetch(`${proxy.url}${blobPath}`);
    await get1.arrayBuffer();
    const head = await fetch(`${proxy.url}${blobPath}`, { method: 'HEAD' });
    expect([get1.status, head.status]).toEqual([200, 503]);
  });

  it('resets the connection before any header and logs it as a reset', async () => {
    proxy.addRule({ path: /\/blobs\//, action: { kind: 'reset-before-headers' } });
    await expect(rawGet(`${proxy.url}${blobPath}`)).rejects.toThrow();
    expect(proxy.log.at(-1)?.status).toBe('reset');
  });

  it('resets the connection after exactly the given number of body bytes', async () => {
    proxy.addRule({ path: /\/blobs\//, action: { kind: 'reset-mid-body', afterBytes: 1000 } });
    const r = await rawGet(`${proxy.url}${blobPath}`);
    expect(r.status).toBe(200);
    expect(r.ended).toBe('error');
    expect(r.body.length).toBe(1000);
    expect(r.body.equals(blob.data.subarray(0, 1000))).toBe(true);
  });

  it('sends fewer bytes than its Content-Length and closes on short-body', async () => {
    proxy.addRule({ path: /\/blobs\//, action: { kind: 'short-body', dropBytes: 10 } });
    const r = await rawGet(`${proxy.url}${blobPath}`);
    expect(r.headers['content-length']).toBe(String(blob.size));
    expect(r.body.length).toBe(blob.size - 10);
    expect(r.ended).toBe('error');
  });

  it('flips exactly one byte on corrupt-body, so the digest no longer matches', async () => {
    proxy.addRule({ path: /\/blobs\//, action: { kind: 'corrupt-body', atByte: 70_000 } });
    const r = await rawGet(`${proxy.url}${blobPath}`);
    expect(r.ended).toBe('end');
    expect(r.body.length).toBe(blob.size);
    const diffs = [...r.body.keys()].filter((i) => r.body[i] !== blob.data[i]);
    expect(diffs).toEqual([70_000]);
    expect(sha256(r.body)).not.toBe(blob.digest);
  });

  it('pauses the body after the given bytes for at least stallMs, then completes it intact', async () => {
    proxy.addRule({ path: /\/blobs\//, action: { kind: 'stall-body', afterBytes: 5000, stallMs: 300 } });
    const r = await rawGet(`${proxy.url}${blobPath}`);
    expect(sha256(r.body)).toBe(blob.digest);
    let seen = 0;
    const i = r.chunks.findIndex((c) => {
      seen += c.size;
      return seen >= 5000;
    });
    expect(seen).toBe(5000);
    const before = r.chunks[i]?.at ?? 0;
    const after = r.chunks[i + 1]?.at ?? 0;
    // Lower bound only (timers never fire early): a slow machine cannot make this fail.
    expect(after - before).toBeGreaterThanOrEqual(250);
  });

  it('records request headers, including Authorization, in its log', async () => {
    const res = await fetch(`${proxy.url}/v2/`, { headers: { authorization: 'Bearer secret-for-log-test' } });
    await res.arrayBuffer();
    const entry = proxy.log.at(-1);
    expect(entry).toMatchObject({ method: 'GET', path: '/v2/', status: 200 });
    expect(entry?.headers.authorization).toBe('Bearer secret-for-log-test');
  });

  it('keeps an Infinity rule until clearRules', async () => {
    proxy.addRule({
      path: /^\/v2\/$/,
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'respond', status: 503 },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${proxy.url}/v2/`)).status);
    proxy.clearRules();
    statuses.push((await fetch(`${proxy.url}/v2/`)).status);
    expect(statuses).toEqual([503, 503, 503, 200]);
  });

  it('lets `after` matching requests through before a rule applies', async () => {
    proxy.reset();
    proxy.addRule({ path: /^\/v2\/$/, after: 2, times: 2, action: { kind: 'respond', status: 503 } });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${proxy.url}/v2/`)).status);
    expect(statuses).toEqual([200, 200, 503, 503, 200]);
  });

  it('forgets its rules and its log on reset', async () => {
    proxy.addRule({
      path: /^\/v2\/$/,
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'respond', status: 503 },
    });
    expect((await fetch(`${proxy.url}/v2/`)).status).toBe(503);
    expect(proxy.log.length).toBeGreaterThan(0);
    proxy.reset();
    expect(proxy.log).toEqual([]);
    expect((await fetch(`${proxy.url}/v2/`)).status).toBe(200);
    expect(proxy.log.map((e) => [e.path, e.status])).toEqual([['/v2/', 200]]);
  });
});

describe('blob host behind a redirecting front', () => {
  let host: BlobHost;
  let front: FaultProxy;
  beforeAll(async () => {
    host = await startBlobHost(blob);
    front = await startFaultProxy(registries.none.url);
    redirectBlobsTo(front, host);
  });
  afterAll(async () => {
    await front.stop();
    await host.stop();
  });

  it('answers blob GETs with a 307 to the blob host', async () => {
    const res = await fetch(`${front.url}${blobPath}`, { redirect: 'manual' });
    expect(res.status).toBe(307);
    expect(res.headers.get('location')).toMatch(new RegExp(`^${host.url}/`));
  });

  it('serves the blob to a client that follows, and records that fetch dropped Authorization', async () => {
    const res = await fetch(`${front.url}${blobPath}`, {
      headers: { authorization: 'Bearer must-not-leak' },
    });
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(blob.digest);
    expect(front.log.at(-1)?.headers.authorization).toBe('Bearer must-not-leak');
    expect(host.requests.at(-1)?.headers.authorization).toBeUndefined();
  });

  it('honours a Range request from the given offset', async () => {
    const r = await rawGet(`${host.url}/x`, { range: 'bytes=100-' });
    expect(r.status).toBe(206);
    expect(r.body.equals(blob.data.subarray(100))).toBe(true);
  });
});
