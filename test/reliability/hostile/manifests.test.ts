/**
 * Hostile manifests in a real crawl. Where the real registry stores them (10 000 layers, nested
 * indexes, a big manifest) it serves them; where it refuses them on PUT (invalid JSON, a wrong or
 * missing media type, bytes that do not match their digest) a fault-proxy `respond` rule in front
 * of it plays the lying registry. Each fails the manifest item with a typed error in the failures
 * table, and the honest image seeded in the same crawl is finished.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import {
  type BuiltImage,
  buildImage,
  buildIndex,
  MEDIA_TYPES,
  sha256,
} from '../../../scripts/lib/image-builder.js';
import {
  crawl,
  crawlInto,
  failures,
  failuresOf,
  imageFullyAnalyzed,
  pushImage,
  putRawManifest,
} from './harness.js';

const registry = inject('registries').none;
const REPO = 'hostile-manifests';
let proxy: FaultProxy;
let good: BuiltImage;

beforeAll(async () => {
  proxy = await startFaultProxy(registry.url);
  good = await buildImage({
    layers: [{ entries: [{ type: 'file', path: 'etc/debian_version', content: '12.5\n' }] }],
  });
  await pushImage(registry, `${REPO}/good`, '1', good);
});

afterAll(async () => {
  await proxy?.stop();
});

/** Makes the proxy serve `body` as `<REPO>/<name>:1` (HEAD gives its true digest; GET by digest serves it). */
function serve(name: string, body: Buffer | string, contentType: string | undefined): string {
  const raw = Buffer.from(body);
  const digest = sha256(raw);
  const headers: Record<string, string> = { 'docker-content-digest': digest };
  if (contentType) headers['content-type'] = contentType;
  const path = new RegExp(`^/v2/${REPO}/${name}/manifests/`);
  proxy.addRule({
    method: 'HEAD',
    path,
    times: Number.POSITIVE_INFINITY,
    action: { kind: 'respond', status: 200, headers },
  });
  proxy.addRule({
    method: 'GET',
    path,
    times: Number.POSITIVE_INFINITY,
    action: { kind: 'respond', status: 200, headers, body: raw.toString('latin1') },
  });
  return digest;
}

/** Crawls `<REPO>/<name>:1` and the honest image through the proxy; checks the honest one finished. */
async function crawlWithGood(name: string, limits: Record<string, number> = {}) {
  const r = await crawl({
    seeds: { images: [`${proxy.host}/${REPO}/${name}:1`, `${proxy.host}/${REPO}/good:1`] },
    limits,
  });
  expect(imageFullyAnalyzed(r.db, good.digest)).toBe(true);
  return r;
}

/** The crawl recorded a manifest failure with `code` for `name`, and nothing else failed. */
async function expectManifestFailure(name: string, code: string, limits: Record<string, number> = {}) {
  const r = await crawlWithGood(name, limits);
  try {
    expect(r.outcome.status).toBe('completed-with-failures');
    // Manifest keys name the digest only (one fetch per digest whatever the repository): find it by the message.
    const f = failures(r.db);
    expect(f.map((x) => [x.kind, x.error_code])).toEqual([['manifest', code]]);
    expect(f[0]?.message).toContain(`/${REPO}/${name}`);
    expect(r.outcome.failedItems).toBe(1);
    return f[0]!.message;
  } finally {
    r.close();
  }
}

const goodManifest = () => JSON.parse(good.manifest.toString()) as Record<string, unknown>;

describe('hostile manifests in a crawl', () => {
  it('records a manifest that is not JSON as corrupt input', async () => {
    serve('not-json', '{"schemaVersion": 2, "config": {', MEDIA_TYPES.dockerManifest);
    expect(await expectManifestFailure('not-json', 'CORRUPT_INPUT')).toMatch(/not valid JSON/);
  });

  it('refuses a manifest served with a media type that is not a manifest as unsupported', async () => {
    // Not good.manifest itself: one manifest item per digest would make the two crawls one.
    const body = JSON.stringify({ ...goodManifest(), annotations: { served: 'as html' } });
    serve('html', body, 'text/html; charset=utf-8');
    expect(await expectManifestFailure('html', 'UNSUPPORTED')).toMatch(/text\/html/);
  });

  it('refuses an image config served in place of a manifest as unsupported', async () => {
    serve('config-type', good.config.data, MEDIA_TYPES.dockerConfig);
    await expectManifestFailure('config-type', 'UNSUPPORTED');
  });

  it('records a manifest with no media type anywhere and no recognisable shape as corrupt input', async () => {
    serve('no-type', JSON.stringify({ schemaVersion: 2, layers: [] }), undefined);
    expect(await expectManifestFailure('no-type', 'CORRUPT_INPUT')).toMatch(/no media type/);
  });

  it('records a manifest whose body contradicts its Content-Type as corrupt input', async () => {
    serve(
      'contradicts',
      JSON.stringify({ ...goodManifest(), mediaType: MEDIA_TYPES.ociIndex }),
      MEDIA_TYPES.dockerManifest,
    );
    await expectManifestFailure('contradicts', 'CORRUPT_INPUT');
  });

  it('refuses manifest bytes that do not hash to the digest the tag resolved to', async () => {
    const other = await buildImage({
      layers: [{ entries: [{ type: 'file', path: 'other', content: 'x' }] }],
    });
    await pushImage(registry, `${REPO}/mismatch`, '1', other);
    // HEAD goes to the real registry; the GET by digest is answered with another manifest's bytes.
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`^/v2/${REPO}/mismatch/manifests/${other.digest}`),
      times: Number.POSITIVE_INFINITY,
      action: {
        kind: 'respond',
        status: 200,
        headers: { 'content-type': MEDIA_TYPES.dockerManifest },
        body: good.manifest.toString(),
      },
    });
    expect(await expectManifestFailure('mismatch', 'DIGEST_MISMATCH')).toContain(other.digest);
  });

  it('refuses an index whose child resolves back to the index itself instead of following it', async () => {
    const child = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'c', content: 'c' }] }] });
    const index = buildIndex({ images: [child], format: 'oci' });
    await pushImage(registry, `${REPO}/self`, '1', index);
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`^/v2/${REPO}/self/manifests/${child.digest}`),
      times: Number.POSITIVE_INFINITY,
      action: {
        kind: 'respond',
        status: 200,
        headers: { 'content-type': MEDIA_TYPES.ociIndex, 'docker-content-digest': index.digest },
        body: index.manifest.toString(),
      },
    });
    const r = await crawlWithGood('self');
    try {
      const f = failuresOf(r.db, `@${child.digest}`);
      expect(f.map((x) => [x.kind, x.error_code])).toEqual([['manifest', 'DIGEST_MISMATCH']]);
      // The index itself was read once, and no image came out of the loop.
      const manifests = r.db.prepare('SELECT digest FROM manifests WHERE digest = ?').all(index.digest);
      expect(manifests).toHaveLength(1);
      expect(r.db.prepare('SELECT count(*) AS n FROM images WHERE digest = ?').get(child.digest)).toEqual({
        n: 0,
      });
    } finally {
      r.close();
    }
  });

  it('stops following indexes nested deeper than the depth limit with a limit error', async () => {
    const leaf = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'deep', content: 'd' }] }] });
    let top: { digest: string; size: number } = { digest: leaf.digest, size: leaf.manifest.length };
    let topType: string = leaf.mediaType;
    await pushImage(registry, `${REPO}/deep`, undefined, leaf);
    for (let level = 0; level < 10; level++) {
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.ociIndex,
          manifests: [{ mediaType: topType, ...top, platform: { os: 'linux', architecture: 'amd64' } }],
        }),
      );
      const put = await putRawManifest(
        registry,
        `${REPO}/deep`,
        level === 9 ? '1' : sha256(body),
        body,
        MEDIA_TYPES.ociIndex,
      );
      expect(put.status).toBe(201);
      top = { digest: put.digest, size: body.length };
      topType = MEDIA_TYPES.ociIndex;
    }
    expect(await expectManifestFailure('deep', 'LIMIT_EXCEEDED')).toMatch(/nest/);
  });

  it('refuses an image manifest with 10 000 layers with a limit error', async () => {
    const m = goodManifest();
    const layers = Array.from({ length: 10_000 }, () => (m.layers as unknown[])[0]);
    await pushImage(registry, `${REPO}/ten-thousand`, undefined, good);
    const body = Buffer.from(JSON.stringify({ ...m, layers }));
    const put = await putRawManifest(registry, `${REPO}/ten-thousand`, '1', body, MEDIA_TYPES.dockerManifest);
    expect(put.status).toBe(201);
    expect(await expectManifestFailure('ten-thousand', 'LIMIT_EXCEEDED')).toMatch(/layers/);
  });

  it('refuses a manifest body larger than the default 4 MiB limit', async () => {
    const big = JSON.stringify({ ...goodManifest(), annotations: { pad: 'a'.repeat(5 * 1024 * 1024) } });
    serve('huge', big, MEDIA_TYPES.dockerManifest);
    expect(await expectManifestFailure('huge', 'LIMIT_EXCEEDED')).toMatch(/manifest/);
  });

  it('reads back, in a later crawl, a manifest it accepted under a raised maxManifestBytes', async () => {
    // The registry refuses manifests over 4 MiB on PUT: the proxy serves it, over the image's real blobs.
    await pushImage(registry, `${REPO}/huge-allowed`, undefined, good);
    const big = JSON.stringify({ ...goodManifest(), annotations: { pad: 'b'.repeat(5 * 1024 * 1024) } });
    const digest = serve('huge-allowed', big, MEDIA_TYPES.dockerManifest);
    const limits = { maxManifestBytes: 8 * 1024 * 1024 };
    const r = await crawlWithGood('huge-allowed', limits);
    try {
      expect(failures(r.db)).toEqual([]);
      expect(r.outcome.status).toBe('completed');
      expect(imageFullyAnalyzed(r.db, digest)).toBe(true);
      const fetches = () => proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(digest)).length;
      const fetched = fetches();
      // The second run finds the manifest in the dataset: no GET, and the stored bytes are not limited again.
      const again = await crawlInto(r.db, {
        seeds: { images: [`${proxy.host}/${REPO}/huge-allowed:1`] },
        limits,
      });
      expect(failures(r.db)).toEqual([]);
      expect(again.status).toBe('completed');
      expect(fetches()).toBe(fetched);
    } finally {
      r.close();
    }
  });

  it('refuses a real stored manifest larger than a configured maxManifestBytes', async () => {
    const m = goodManifest();
    await pushImage(registry, `${REPO}/configured`, undefined, good);
    const body = Buffer.from(JSON.stringify({ ...m, annotations: { pad: 'p'.repeat(4000) } }));
    const put = await putRawManifest(registry, `${REPO}/configured`, '1', body, MEDIA_TYPES.dockerManifest);
    expect(put.status).toBe(201);
    await expectManifestFailure('configured', 'LIMIT_EXCEEDED', { maxManifestBytes: 2048 });
  });

  // Manifest items are keyed by (run, registry, digest) and carry the repository of whichever reference
  // enqueued them first. When that repository refuses the manifest (404, 401: private, deleted, hostile),
  // the same digest must still be fetched from another repository that serves it (src/pipeline/fallback.ts).
  it('still records an image whose manifest digest another repository refused first', async () => {
    await pushImage(registry, `${REPO}/refused`, '1', good);
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`^/v2/${REPO}/refused/manifests/sha256:`),
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'respond', status: 404, body: '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}' },
    });
    // The honest tag resolves later, so the refusing repository's reference enqueues the digest first.
    proxy.addRule({
      method: 'HEAD',
      path: new RegExp(`^/v2/${REPO}/good/manifests/1`),
      action: { kind: 'delay', ms: 300 },
    });
    const r = await crawl({
      seeds: { images: [`${proxy.host}/${REPO}/refused:1`, `${proxy.host}/${REPO}/good:1`] },
    });
    try {
      expect(imageFullyAnalyzed(r.db, good.digest)).toBe(true);
    } finally {
      r.close();
    }
  });
});
