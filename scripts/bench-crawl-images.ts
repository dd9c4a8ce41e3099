/**
 * The crawl benchmark's images: one realistic shared base layer (the Debian fixture plus some MiB of
 * incompressible files, so the base weighs what a slim distro base weighs compressed) and N images on
 * it, each with one or two small layers of its own, spread over repositories a few tags each.
 * Content is pseudo-random but seeded, so every run pushes the same digests.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { debianBaseEntries } from './lib/debian-fixtures.js';
import {
  type BuiltBlob,
  type BuiltImage,
  buildImage,
  buildLayer,
  type LayerEntry,
} from './lib/image-builder.js';
import { type PushTarget, pushImage, registryFetch } from './lib/push.js';

const MiB = 1024 * 1024;

export interface BenchImage {
  repository: string;
  tag: string;
  image: BuiltImage;
}

export interface BenchImageSet {
  base: BuiltBlob;
  images: BenchImage[];
  /** Every distinct blob by digest (layers and configs), to classify and size what the proxy saw. */
  blobs: Map<string, { size: number; kind: 'layer' | 'config' }>;
  /** Every manifest by digest, with its byte length. */
  manifests: Map<string, number>;
  /** Sum of the compressed sizes of the distinct layer blobs. */
  uniqueLayerBytes: number;
}

/** Deterministic incompressible bytes: AES-128-CTR keystream under a key derived from `seed`. */
export function seededBytes(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return cipher.update(Buffer.alloc(length));
}

/** The base layer: Debian fixture entries + `randomMiB` MiB of random files under /usr/lib/bench. */
export async function buildBaseLayer(randomMiB: number): Promise<BuiltBlob> {
  const entries: LayerEntry[] = [...debianBaseEntries(), { type: 'dir', path: 'usr/lib/bench' }];
  // Files of 1 MiB (and one remainder) like the shared libraries a real base carries.
  const total = Math.round(randomMiB * MiB);
  for (let off = 0, i = 0; off < total; off += MiB, i++) {
    const size = Math.min(MiB, total - off);
    entries.push({ type: 'file', path: `usr/lib/bench/lib${i}.so`, content: seededBytes(`base-${i}`, size) });
  }
  return buildLayer(entries, 'gzip', 'docker');
}

/** Image i's own layers: an app layer (~64–192 KiB), and for odd i a small config layer. */
function ownLayers(i: number): Array<{ entries: LayerEntry[] }> {
  const app: LayerEntry[] = [
    { type: 'dir', path: `opt/app${i}` },
    {
      type: 'file',
      path: `opt/app${i}/bin/app`,
      content: seededBytes(`app-${i}`, (64 + (i % 3) * 64) * 1024),
    },
    { type: 'file', path: `opt/app${i}/VERSION`, content: `1.${i}.0\n` },
  ];
  const layers = [{ entries: app }];
  if (i % 2 === 1) {
    layers.push({
      entries: [
        { type: 'file', path: `etc/app${i}.conf`, content: `listen = 0.0.0.0:${8000 + i}\nworkers = 4\n` },
      ],
    });
  }
  return layers;
}

/** Builds the base and `count` images on it; `tagsPerRepository` images share a repository. */
export async function buildBenchImages(
  count: number,
  baseRandomMiB: number,
  tagsPerRepository: number,
): Promise<BenchImageSet> {
  const base = await buildBaseLayer(baseRandomMiB);
  const images: BenchImage[] = [];
  const blobs = new Map<string, { size: number; kind: 'layer' | 'config' }>();
  const manifests = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const image = await buildImage({ layers: [base, ...ownLayers(i)] });
    const repo = Math.floor(i / tagsPerRepository);
    images.push({
      repository: `bench/app${String(repo).padStart(3, '0')}`,
      tag: `1.${i % tagsPerRepository}`,
      image,
    });
    for (const l of image.layers) blobs.set(l.digest, { size: l.size, kind: 'layer' });
    blobs.set(image.config.digest, { size: image.config.size, kind: 'config' });
    manifests.set(image.digest, image.manifest.length);
  }
  let uniqueLayerBytes = 0;
  for (const b of blobs.values()) if (b.kind === 'layer') uniqueLayerBytes += b.size;
  return { base, images, blobs, manifests, uniqueLayerBytes };
}

/**
 * Pushes the set. The base blob is uploaded once and cross-repository mounted into the other
 * repositories (as `docker push` does), so pushing 50 images does not upload the base 50 times.
 */
export async function pushBenchImages(registry: PushTarget, set: BenchImageSet): Promise<void> {
  let firstRepo: string | undefined;
  const mounted = new Set<string>();
  for (const { repository, tag, image } of set.images) {
    if (firstRepo !== undefined && !mounted.has(repository) && repository !== firstRepo) {
      const url = `${registry.url}/v2/${repository}/blobs/uploads/?mount=${set.base.digest}&from=${firstRepo}`;
      const res = await registryFetch(registry, repository, url, { method: 'POST' });
      await res.arrayBuffer();
      // 201 = mounted; 202 = the registry started an upload instead, and pushImage uploads the blob.
      if (res.status !== 201 && res.status !== 202) {
        throw new Error(`mounting the base layer into ${repository} failed: HTTP ${res.status}`);
      }
    }
    mounted.add(repository);
    await pushImage(registry, repository, tag, image);
    firstRepo ??= repository;
  }
}
