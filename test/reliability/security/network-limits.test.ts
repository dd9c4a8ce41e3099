/**
 * Everything read from the network has a size limit, and passing it is a clear, typed error on the
 * item that read it, while the rest of the crawl finishes: a Docker Hub page, a token response, an
 * image config blob (the manifest limit is in ../hostile/manifests.test.ts, the layer limits in
 * ../hostile/layers.test.ts). Bodies come from the real registry where it stores them, else from a
 * fault-proxy `respond` rule or a one-route loopback server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import {
  type BuiltImage,
  blobOf,
  buildImage,
  MEDIA_TYPES,
  sha256,
} from '../../../scripts/lib/image-builder.js';
import { type FakeHub, fakeHubTagFor, startFakeHub } from '../../helpers/fake-hub.js';
import {
  crawl,
  failures,
  imageFullyAnalyzed,
  pushBlob,
  pushImage,
  putRawManifest,
} from '../hostile/harness.js';

const registry = inject('registries').none;
let good: BuiltImage;
const stops: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  good = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'etc/limits', content: 'ok' }] }] });
  await pushImage(registry, 'limits/good', '1', good);
});

afterAll(async () => {
  await Promise.allSettled(stops.map((s) => s()));
});

const goodRef = () => `${registry.host}/limits/good:1`;

/** A fault proxy in front of `url`, stopped in the file's afterAll. */
async function startProxy(url: string): Promise<FaultProxy> {
  const proxy = await startFaultProxy(url);
  stops.push(() => proxy.stop());
  return proxy;
}

/** A proxy to the registry that answers every /v2/ request with a Bearer challenge naming `realm`. */
async function challengingProxy(realm: string, service: string, body?: string): Promise<FaultProxy> {
  const proxy = await startProxy(registry.url);
  proxy.addRule({
    path: /^\/v2\//,
    times: Number.POSITIVE_INFINITY,
    action: {
      kind: 'respond',
      status: 401,
      headers: { 'www-authenticate': `Bearer realm="${realm}",service="${service}"` },
      ...(body === undefined ? {} : { body }),
    },
  });
  return proxy;
}

describe('limits on what is read from the network', () => {
  it('fails the image whose config blob is larger than the 8 MiB config limit, and finishes the other', async () => {
    const base = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'a', content: 'a' }] }] });
    const config = blobOf(
      Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', pad: 'x'.repeat(9 * 1024 * 1024) })),
      MEDIA_TYPES.dockerConfig,
    );
    await pushImage(registry, 'limits/big-config', undefined, base);
    await pushBlob(registry, 'limits/big-config', config);
    const m = JSON.parse(base.manifest.toString());
    m.config = { mediaType: config.mediaType, size: config.size, digest: config.digest };
    const body = Buffer.from(JSON.stringify(m));
    expect(
      (await putRawManifest(registry, 'limits/big-config', '1', body, MEDIA_TYPES.dockerManifest)).status,
    ).toBe(201);

    const r = await crawl({ seeds: { images: [`${registry.host}/limits/big-config:1`, goodRef()] } });
    try {
      expect(failures(r.db).map((f) => [f.kind, f.error_code])).toEqual([['manifest', 'LIMIT_EXCEEDED']]);
      expect(failures(r.db)[0]?.key).toContain(sha256(body));
      expect(imageFullyAnalyzed(r.db, good.digest)).toBe(true);
    } finally {
      r.close();
    }
  });

  it('fails the registry item whose token response is larger than the 1 MiB token limit', async () => {
    // A token service that answers with 4 MiB of JSON, announced by a proxy that challenges every request.
    const huge = JSON.stringify({ token: 't'.repeat(4 * 1024 * 1024), expires_in: 300 });
    const tokenServer: Server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(huge);
    });
    await new Promise<void>((resolve) => tokenServer.listen(0, '127.0.0.1', resolve));
    stops.push(() => new Promise((resolve) => tokenServer.close(resolve)));
    const realm = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;
    const proxy = await challengingProxy(realm, 'limits', '{"errors":[{"code":"UNAUTHORIZED"}]}');
    const r = await crawl({ seeds: { images: [`${proxy.host}/limits/good:1`, goodRef()] } });
    try {
      const f = failures(r.db);
      expect(f.map((x) => [x.kind, x.error_code])).toEqual([['reference', 'LIMIT_EXCEEDED']]);
      expect(f[0]?.message).not.toContain('tttttttttt');
      expect(imageFullyAnalyzed(r.db, good.digest)).toBe(true);
    } finally {
      r.close();
    }
  });

  it('gives up on a token service that never answers after the request timeout, and finishes the rest', async () => {
    // Accepts connections and requests, never sends a byte back.
    const held: Array<{ destroy(): void }> = [];
    const silent: Server = createServer((req) => {
      held.push(req.socket);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    stops.push(
      () =>
        new Promise((resolve) => {
          for (const s of held) s.destroy();
          silent.close(resolve);
        }),
    );
    const realm = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/token`;
    const proxy = await challengingProxy(realm, 'silent');
    const r = await crawl({
      seeds: { images: [`${proxy.host}/limits/good:1`, goodRef()] },
      http: { timeoutMs: 500, maxRetries: 1 },
      // A timeout is retryable: one attempt keeps the test to one failure row.
      maxAttempts: 1,
    });
    try {
      expect(r.outcome.status).toBe('completed-with-failures');
      const f = failures(r.db);
      expect(f.map((x) => x.kind)).toEqual(['reference']);
      expect(f[0]?.error_code).toBe('RETRYABLE');
      expect(imageFullyAnalyzed(r.db, good.digest)).toBe(true);
    } finally {
      r.close();
    }
  });

  it('fails the namespace whose Hub page is larger than the 32 MiB page limit, and crawls the other', async () => {
    const image = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'hub', content: 'h' }] }] });
    await pushImage(registry, 'limitsok/app', '1', image);
    const hub: FakeHub = await startFakeHub({
      anonymousOffsetCap: null,
      repos: [{ namespace: 'limitsok', name: 'app', tags: [fakeHubTagFor('1', image)] }],
    });
    stops.push(() => hub.stop());
    const proxy = await startProxy(hub.url);
    const results = [{ name: 'x', namespace: 'limitsbig', description: 'd'.repeat(33 * 1024 * 1024) }];
    proxy.addRule({
      method: 'GET',
      path: /\/limitsbig\/?(repositories)?\?/,
      times: Number.POSITIVE_INFINITY,
      action: {
        kind: 'respond',
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ count: 1, next: null, previous: null, results }),
      },
    });
    const r = await crawl({
      seeds: { namespaces: ['limitsbig', 'limitsok'] },
      hubApiUrl: proxy.url,
      registryMirror: registry.url,
    });
    try {
      expect(failures(r.db).map((f) => [f.kind, f.error_code])).toEqual([['namespace', 'LIMIT_EXCEEDED']]);
      expect(failures(r.db)[0]?.key).toContain('limitsbig');
      expect(imageFullyAnalyzed(r.db, image.digest)).toBe(true);
    } finally {
      r.close();
    }
  });
});
