/**
 * Hostile layers served by the real distribution registry (it stores any bytes as a blob): each one
 * fails with a typed error recorded against the layer (layers.error_code and the failures table),
 * and the same crawl still finishes the honest image seeded next to it.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { compress as zstdCompress } from 'zstd-napi';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import {
  type BuiltImage,
  blobOf,
  buildImage,
  buildLayerTar,
  MEDIA_TYPES,
  sha256,
} from '../../../scripts/lib/image-builder.js';
import {
  crawl,
  crawlInto,
  failuresOf,
  imageFullyAnalyzed,
  layerRow,
  openDataset,
  pushImage,
} from './harness.js';
import { type RawEntry, rawTar } from './raw-tar.js';

const registry = inject('registries').none;
const REPO = 'hostile-layers';
let good: BuiltImage;

beforeAll(async () => {
  good = await buildImage({
    layers: [
      {
        entries: [
          { type: 'file', path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
          { type: 'file', path: 'usr/lib/x86_64-linux-gnu/liblzma.so.5.4.1', content: 'honest' },
        ],
      },
    ],
  });
  await pushImage(registry, `${REPO}/good`, '1', good);
});

/** Pushes an image whose only layer is `data` (any bytes) and returns its layer digest. */
async function pushHostileLayer(name: string, data: Buffer, mediaType: string): Promise<string> {
  // The diff_id is never checked by the crawler; a fixed value keeps a truncated blob pushable.
  const layer = blobOf(data, mediaType, sha256(`diff-id of ${name}`));
  await pushImage(registry, `${REPO}/${name}`, '1', await buildImage({ layers: [layer] }));
  return layer.digest;
}

/** Crawls the hostile image and the honest one; asserts the honest one finished. */
async function crawlWithGood(name: string, limits: Record<string, number> = {}) {
  const result = await crawl({
    seeds: { images: [`${registry.host}/${REPO}/${name}:1`, `${registry.host}/${REPO}/good:1`] },
    limits,
  });
  expect(imageFullyAnalyzed(result.db, good.digest)).toBe(true);
  return result;
}

/** The layer failed with `code`, in both the layers row and the failures table; the run says so. */
async function expectLayerFailure(name: string, data: Buffer, mediaType: string, code: string) {
  const digest = await pushHostileLayer(name, data, mediaType);
  const r = await crawlWithGood(name);
  try {
    expect(r.outcome.status).toBe('completed-with-failures');
    const row = layerRow(r.db, digest);
    expect(row?.status).toBe('failed');
    expect(row?.error_code).toBe(code);
    const f = failuresOf(r.db, digest);
    expect(f.length).toBeGreaterThan(0);
    expect(f.every((x) => x.kind === 'layer' && x.error_code === code)).toBe(true);
    return row?.error_message ?? '';
  } finally {
    r.close();
  }
}

describe('hostile layers in a crawl', () => {
  it('refuses a gzip bomb past the compression-ratio limit and finishes the other image', async () => {
    // 72 MiB of zeros gzip to ~72 KiB: ratio ~1000, past the default 200 once output passes 64 MiB.
    const tar = rawTar([{ name: 'zeros', body: Buffer.alloc(72 * 1024 * 1024) }]);
    const bomb = gzipSync(tar, { level: 9 });
    const message = await expectLayerFailure('bomb', bomb, MEDIA_TYPES.dockerLayerGzip, 'LIMIT_EXCEEDED');
    expect(message).toMatch(/maxCompressionRatio/);
  });

  it('refuses a layer blob larger than maxLayerBytes before reading it, naming the setting', async () => {
    // Random bytes do not compress: the blob is about as large as the file in it.
    const blob = gzipSync(rawTar([{ name: 'noise', body: randomBytes(64 * 1024) }]));
    const digest = await pushHostileLayer('too-large', blob, MEDIA_TYPES.dockerLayerGzip);
    const r = await crawlWithGood('too-large', { maxLayerBytes: 32 * 1024 });
    try {
      expect(layerRow(r.db, digest)).toMatchObject({ status: 'failed', error_code: 'LIMIT_EXCEEDED' });
      expect(layerRow(r.db, digest)?.error_message).toContain(
        `is ${blob.length} bytes, more than maxLayerBytes (32768 bytes)`,
      );
    } finally {
      r.close();
    }
  });

  it('records a truncated gzip layer as corrupt input', async () => {
    const gz = gzipSync(await buildLayerTar([{ type: 'file', path: 'a', content: 'x'.repeat(5000) }]));
    await expectLayerFailure(
      'trunc-gzip',
      gz.subarray(0, gz.length >> 1),
      MEDIA_TYPES.dockerLayerGzip,
      'CORRUPT_INPUT',
    );
  });

  it('records a truncated zstd layer as corrupt input', async () => {
    const tar = await buildLayerTar([{ type: 'file', path: 'a', content: Buffer.alloc(20_000, 3) }]);
    const zst = zstdCompress(tar);
    await expectLayerFailure(
      'trunc-zstd',
      zst.subarray(0, zst.length - 9),
      MEDIA_TYPES.ociLayerZstd,
      'CORRUPT_INPUT',
    );
  });

  it('records a tar header with a wrong checksum as corrupt input', async () => {
    const tar = rawTar([
      { name: 'ok', body: Buffer.from('1') },
      { name: 'bad', badChecksum: true },
    ]);
    await expectLayerFailure('bad-checksum', gzipSync(tar), MEDIA_TYPES.dockerLayerGzip, 'CORRUPT_INPUT');
  });

  it('records a tar header whose size field is not a number as corrupt input', async () => {
    const tar = rawTar([{ name: 'bad-size', rawSize: 'zzzzzzzzzzz\0' }]);
    await expectLayerFailure('bad-size', gzipSync(tar), MEDIA_TYPES.dockerLayerGzip, 'CORRUPT_INPUT');
  });

  it('refuses a path of 10 000 characters with a maxPathLength limit error', async () => {
    const tar = rawTar([{ name: 'short', pax: { path: `usr/${'a/'.repeat(4998)}liblzma.so.5` } }]);
    const message = await expectLayerFailure(
      'long-path',
      gzipSync(tar),
      MEDIA_TYPES.dockerLayerGzip,
      'LIMIT_EXCEEDED',
    );
    expect(message).toMatch(/maxPathLength/);
  });

  it('refuses a 100 MB dpkg status file with a maxCaptureBytes limit error before reading it', async () => {
    const paragraph = 'Package: p\nStatus: install ok installed\nVersion: 1.0\nDescription: filler\n\n';
    const body = Buffer.from(paragraph.repeat(Math.ceil(100_000_000 / paragraph.length)));
    const tar = rawTar([{ name: 'var/lib/dpkg/status', body }]);
    const message = await expectLayerFailure(
      'huge-status',
      gzipSync(tar, { level: 1 }),
      MEDIA_TYPES.dockerLayerGzip,
      'LIMIT_EXCEEDED',
    );
    expect(message).toMatch(/maxCaptureBytes/);
  });

  it('analyzes a 100 000-entry layer and records its entry count', async () => {
    function* entries(): Generator<RawEntry> {
      for (let i = 0; i < 100_000; i++) yield { name: `many/${i.toString(36)}` };
    }
    const digest = await pushHostileLayer('many', gzipSync(rawTar(entries())), MEDIA_TYPES.dockerLayerGzip);
    const r = await crawlWithGood('many');
    try {
      expect(r.outcome.status).toBe('completed');
      expect(layerRow(r.db, digest)).toMatchObject({ status: 'analyzed', entry_count: 100_000 });
    } finally {
      r.close();
    }
  });

  it('stops a layer with more entries than maxEntries with a limit error', async () => {
    function* entries(): Generator<RawEntry> {
      for (let i = 0; i < 1_001; i++) yield { name: `few/${i}` };
    }
    const digest = await pushHostileLayer(
      'over-entries',
      gzipSync(rawTar(entries())),
      MEDIA_TYPES.dockerLayerGzip,
    );
    const r = await crawlWithGood('over-entries', { maxEntries: 1_000 });
    try {
      expect(layerRow(r.db, digest)).toMatchObject({ status: 'failed', error_code: 'LIMIT_EXCEEDED' });
      expect(failuresOf(r.db, digest)[0]?.message).toMatch(/maxEntries/);
    } finally {
      r.close();
    }
  });

  it('records `..`, absolute and NUL-cut names as normalized absolute paths that stay under the root', async () => {
    const lib = 'liblzma.so.5.6.1';
    const tar = rawTar([
      { name: `../../../../usr/lib/${lib}`, body: Buffer.from('a') },
      { name: `/abs/../../../lib/${lib}`, body: Buffer.from('b') },
      { name: 'x', pax: { path: `opt/${lib}\0/../../../../etc/shadow` }, body: Buffer.from('c') },
      { name: `./srv//./a/../${lib}`, body: Buffer.from('d') },
      { name: '../../.wh.etc' },
      { name: '/var/../../../.wh..wh..opq' },
    ]);
    const digest = await pushHostileLayer('paths', gzipSync(tar), MEDIA_TYPES.dockerLayerGzip);
    const r = await crawlWithGood('paths');
    try {
      expect(layerRow(r.db, digest)?.status).toBe('analyzed');
      const files = r.db
        .prepare('SELECT path FROM layer_files WHERE layer_digest = ? ORDER BY seq')
        .all(digest) as { path: string }[];
      const whiteouts = r.db
        .prepare('SELECT path, opaque FROM layer_whiteouts WHERE layer_digest = ? ORDER BY seq')
        .all(digest) as { path: string; opaque: number }[];
      expect(files.map((f) => f.path)).toEqual([
        `/usr/lib/${lib}`,
        `/lib/${lib}`,
        `/opt/${lib}`,
        `/srv/${lib}`,
      ]);
      expect(whiteouts).toEqual([
        { path: '/etc', opaque: 0 },
        { path: '/', opaque: 1 },
      ]);
      for (const p of [...files, ...whiteouts].map((x) => x.path)) {
        expect(p.startsWith('/')).toBe(true);
        expect(p).not.toMatch(/\0|\/\.\.?(\/|$)|\/\//);
      }
    } finally {
      r.close();
    }
  });

  // The other side of the same fallback: a layer that failed on its own bytes fails the same from any
  // repository, so a second repository reaching it in the same run must not download it again.
  it('does not download again, for another repository, a shared layer that failed on its content', async () => {
    let proxy: FaultProxy | undefined;
    const dataset = openDataset();
    const db = dataset.db;
    try {
      proxy = await startFaultProxy(registry.url);
      const files = ['a', 'b', 'c'].map((n) => ({ type: 'file' as const, path: `opt/${n}`, content: n }));
      const first = await buildImage({ layers: [{ entries: files }] });
      const second = await buildImage({ layers: [first.layers[0]!], created: '2024-04-01T00:00:00Z' });
      await pushImage(registry, `${REPO}/content-fault-a`, '1', first);
      await pushImage(registry, `${REPO}/content-fault-b`, '1', second);
      const layer = first.layers[0]!.digest;
      // The second image's manifest is held until the shared layer has failed.
      proxy.addRule({
        method: 'HEAD',
        path: new RegExp(`^/v2/${REPO}/content-fault-b/manifests/1`),
        action: {
          kind: 'hold',
          until: async () => {
            while (layerRow(db, layer)?.status !== 'failed') await setTimeout(10);
          },
        },
      });
      const outcome = await crawlInto(db, {
        seeds: {
          images: [`${proxy.host}/${REPO}/content-fault-a:1`, `${proxy.host}/${REPO}/content-fault-b:1`],
        },
        limits: { maxEntries: 2 },
      });
      expect(outcome.status).toBe('completed-with-failures');
      expect(layerRow(db, layer)?.error_code).toBe('LIMIT_EXCEEDED');
      expect(failuresOf(db, layer).map((f) => f.error_code)).toEqual(['LIMIT_EXCEEDED']);
      const gets = proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${layer}`));
      expect(gets.map((e) => e.path.split('/')[3])).toEqual(['content-fault-a']);
      // Both images reached the layer: the second one only after it had failed.
      expect(proxy.log.some((e) => e.path.startsWith(`/v2/${REPO}/content-fault-b/manifests/sha256:`))).toBe(
        true,
      );
    } finally {
      dataset.close();
      await proxy?.stop();
    }
  });

  // A layer item is keyed by digest (across runs) and carries the repository of the first image that
  // enqueued it. When that repository will not serve the blob (404/401: deleted, private, hostile), the
  // layer must still be fetched from another repository whose image shares it (src/pipeline/fallback.ts).
  it('still analyzes a shared layer that the first repository to reach it refused', async () => {
    let proxy: FaultProxy | undefined;
    try {
      proxy = await startFaultProxy(registry.url);
      await pushImage(registry, `${REPO}/refuses-blobs`, '1', good);
      const layer = good.layers[0]!.digest;
      proxy.addRule({
        method: 'GET',
        path: new RegExp(`^/v2/${REPO}/refuses-blobs/blobs/${layer}`),
        times: Number.POSITIVE_INFINITY,
        action: { kind: 'respond', status: 404, body: '{"errors":[{"code":"BLOB_UNKNOWN"}]}' },
      });
      // One image per repository (different configs), the refusing one reaching its layer first.
      const twin = await buildImage({ layers: [good.layers[0]!], created: '2024-04-01T00:00:00Z' });
      await pushImage(registry, `${REPO}/refuses-blobs`, '2', twin);
      proxy.addRule({
        method: 'HEAD',
        path: new RegExp(`^/v2/${REPO}/good/manifests/1`),
        action: { kind: 'delay', ms: 300 },
      });
      const r = await crawl({
        seeds: { images: [`${proxy.host}/${REPO}/refuses-blobs:2`, `${proxy.host}/${REPO}/good:1`] },
      });
      try {
        expect(imageFullyAnalyzed(r.db, good.digest)).toBe(true);
      } finally {
        r.close();
      }
    } finally {
      await proxy?.stop();
    }
  });
});
