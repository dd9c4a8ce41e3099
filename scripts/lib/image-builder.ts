/**
 * Builds container images in memory, deterministically (fixed mtimes, owners and order), so tests
 * and the demo get stable digests: layer tars, compressed blobs, config, manifest, index.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';

export type LayerEntry =
  | { type: 'file'; path: string; content: string | Buffer; mode?: number }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'hardlink'; path: string; target: string }
  /** Writes `<dir>/.wh.<name>` (the OCI/AUFS whiteout for `path`). */
  | { type: 'whiteout'; path: string }
  /** Writes `<dir>/.wh..wh..opq` (opaque directory marker). */
  | { type: 'opaque'; dir: string };

export type LayerCompression = 'gzip' | 'zstd' | 'none';
export type ManifestFormat = 'docker' | 'oci';

export interface BuiltBlob {
  digest: string;
  data: Buffer;
  size: number;
  mediaType: string;
  /** Layers only: sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId?: string;
}

export interface ImagePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface BuiltImage {
  kind: 'image';
  format: ManifestFormat;
  manifest: Buffer;
  digest: string;
  mediaType: string;
  config: BuiltBlob;
  layers: BuiltBlob[];
  platform: ImagePlatform;
}

export interface BuiltIndex {
  kind: 'index';
  format: ManifestFormat;
  manifest: Buffer;
  digest: string;
  mediaType: string;
  children: BuiltImage[];
  /** Children that are not runnable images, e.g. BuildKit attestation manifests. */
  extraChildren: BuiltImage[];
}

export const MEDIA_TYPES = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  inToto: 'application/vnd.in-toto+json',
} as const;

/** Fixed mtime for every tar entry: keeps digests stable across runs and machines. */
export const FIXED_MTIME = new Date('2024-03-01T00:00:00Z');
export const DEFAULT_CREATED = '2024-03-01T00:00:00Z';

/** `sha256:<hex>` of the bytes. */
export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Makes a BuiltBlob (digest, size) from bytes. */
export function blobOf(data: Buffer, mediaType: string, diffId?: string): BuiltBlob {
  return { digest: sha256(data), data, size: data.length, mediaType, ...(diffId ? { diffId } : {}) };
}

function tarPath(p: string): string {
  const clean = p.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
  return `./${clean}`;
}

function splitPath(p: string): { dir: string; base: string } {
  const clean = p.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
  const i = clean.lastIndexOf('/');
  return i < 0 ? { dir: '', base: clean } : { dir: clean.slice(0, i), base: clean.slice(i + 1) };
}

/** Writes a ustar/pax layer tar, paths as `./usr/...` (like debuerreotype/GNU tar rootfs tarballs). */
export async function buildLayerTar(entries: LayerEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: Buffer) => chunks.push(c));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  const base = { mtime: FIXED_MTIME, uid: 0, gid: 0, uname: 'root', gname: 'root' };
  const add = (header: Parameters<typeof p.entry>[0], body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      p.entry({ ...base, ...header }, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  for (const e of entries) {
    switch (e.type) {
      case 'file': {
        const body = typeof e.content === 'string' ? Buffer.from(e.content) : e.content;
        await add({ name: tarPath(e.path), type: 'file', mode: e.mode ?? 0o644, size: body.length }, body);
        break;
      }
      case 'dir':
        await add({ name: `${tarPath(e.path)}/`, type: 'directory', mode: e.mode ?? 0o755 });
        break;
      case 'symlink':
        await add({ name: tarPath(e.path), type: 'symlink', mode: 0o777, linkname: e.target });
        break;
      case 'hardlink':
        await add({ name: tarPath(e.path), type: 'link', mode: 0o644, linkname: tarPath(e.target) });
        break;
      case 'whiteout': {
        const { dir, base: name } = splitPath(e.path);
        await add({
          name: tarPath(dir ? `${dir}/.wh.${name}` : `.wh.${name}`),
          type: 'file',
          mode: 0o644,
          size: 0,
        });
        break;
      }
      case 'opaque': {
        const { dir, base: name } = splitPath(e.dir);
        const full = dir ? `${dir}/${name}` : name;
        await add({ name: tarPath(`${full}/.wh..wh..opq`), type: 'file', mode: 0o644, size: 0 });
        break;
      }
    }
  }
  p.finalize();
  return done;
}

/** Compresses a layer tar: gzip (node:zlib, level 6), zstd (zstd-napi) or none. */
export function compressLayer(tar: Buffer, c: LayerCompression): Buffer {
  if (c === 'gzip') return gzipSync(tar, { level: 6 });
  if (c === 'zstd') return zstdCompress(tar);
  return tar;
}

/** Undoes compressLayer by sniffing the magic bytes. */
export function decompressLayer(data: Buffer): Buffer {
  if (data[0] === 0x1f && data[1] === 0x8b) return gunzipSync(data);
  if (data.readUInt32LE(0) === 0xfd2fb528) return zstdDecompress(data);
  return data;
}

function layerMediaType(format: ManifestFormat, c: LayerCompression): string {
  if (c === 'zstd') return MEDIA_TYPES.ociLayerZstd; // Docker has no zstd type; BuildKit uses the OCI one.
  if (format === 'docker') return c === 'gzip' ? MEDIA_TYPES.dockerLayerGzip : MEDIA_TYPES.dockerLayerTar;
  return c === 'gzip' ? MEDIA_TYPES.ociLayerGzip : MEDIA_TYPES.ociLayerTar;
}

/** Builds one layer blob (tar → compressed) with its diffId. */
export async function buildLayer(
  entries: LayerEntry[],
  compression: LayerCompression = 'gzip',
  format: ManifestFormat = 'docker',
): Promise<BuiltBlob> {
  const tar = await buildLayerTar(entries);
  return blobOf(compressLayer(tar, compression), layerMediaType(format, compression), sha256(tar));
}

const descriptor = (b: BuiltBlob): { mediaType: string; size: number; digest: string } => ({
  mediaType: b.mediaType,
  size: b.size,
  digest: b.digest,
});

/** Builds an image (config + layers + manifest); pass a BuiltBlob as a layer to share it byte-for-byte. */
export async function buildImage(opts: {
  layers: Array<{ entries: LayerEntry[]; compression?: LayerCompression } | BuiltBlob>;
  format?: ManifestFormat;
  platform?: ImagePlatform;
  /**
   * The config's `created`: DEFAULT_CREATED when left out, no field at all when null, and any other value
   * written as given (a string that is no date, a number: what a careless or hostile builder writes).
   */
  created?: unknown;
}): Promise<BuiltImage> {
  const format = opts.format ?? 'docker';
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const created = opts.created === undefined ? DEFAULT_CREATED : opts.created;
  const layers: BuiltBlob[] = [];
  for (const l of opts.layers) {
    if ('entries' in l) layers.push(await buildLayer(l.entries, l.compression ?? 'gzip', format));
    else layers.push(l.diffId ? l : { ...l, diffId: sha256(decompressLayer(l.data)) });
  }
  const configJson = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    ...(created === null ? {} : { created }),
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({
      ...(typeof created === 'string' ? { created } : {}),
      created_by: `hubcrawl-fixture layer ${i}`,
    })),
  };
  const config = blobOf(
    Buffer.from(JSON.stringify(configJson)),
    format === 'docker' ? MEDIA_TYPES.dockerConfig : MEDIA_TYPES.ociConfig,
  );
  return assembleImage(format, config, layers, platform);
}

function assembleImage(
  format: ManifestFormat,
  config: BuiltBlob,
  layers: BuiltBlob[],
  platform: ImagePlatform,
  annotations?: Record<string, string>,
): BuiltImage {
  const mediaType = format === 'docker' ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest;
  const manifestJson = {
    schemaVersion: 2,
    mediaType,
    config: descriptor(config),
    layers: layers.map((l) => ({
      ...descriptor(l),
      ...(l.mediaType === MEDIA_TYPES.inToto
        ? { annotations: { 'in-toto.io/predicate-type': IN_TOTO_PREDICATE } }
        : {}),
    })),
    ...(annotations ? { annotations } : {}),
  };
  const manifest = Buffer.from(JSON.stringify(manifestJson, null, 3));
  return { kind: 'image', format, manifest, digest: sha256(manifest), mediaType, config, layers, platform };
}

const IN_TOTO_PREDICATE = 'https://slsa.dev/provenance/v0.2';

/** BuildKit-style attestation manifest for `image`: OCI manifest, in-toto layer, platform unknown/unknown. */
export function buildAttestation(image: BuiltImage): BuiltImage {
  const statement = {
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: IN_TOTO_PREDICATE,
    subject: [{ name: 'hubcrawl-fixture', digest: { sha256: image.digest.slice('sha256:'.length) } }],
    predicate: { builder: { id: 'hubcrawl-fixture' } },
  };
  const layer = blobOf(Buffer.from(JSON.stringify(statement)), MEDIA_TYPES.inToto);
  layer.diffId = layer.digest;
  const configJson = {
    architecture: 'unknown',
    os: 'unknown',
    config: {},
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
  };
  const config = blobOf(Buffer.from(JSON.stringify(configJson)), MEDIA_TYPES.ociConfig);
  return assembleImage('oci', config, [layer], { os: 'unknown', architecture: 'unknown' });
}

/** Builds a manifest list / OCI index over `images` (optionally with one attestation per image). */
export function buildIndex(opts: {
  images: BuiltImage[];
  format?: ManifestFormat;
  withAttestation?: boolean;
}): BuiltIndex {
  const format = opts.format ?? 'docker';
  const mediaType = format === 'docker' ? MEDIA_TYPES.dockerManifestList : MEDIA_TYPES.ociIndex;
  const extraChildren = opts.withAttestation ? opts.images.map(buildAttestation) : [];
  const platformOf = (p: ImagePlatform) => ({
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
  });
  const manifests = [
    ...opts.images.map((i) => ({
      mediaType: i.mediaType,
      size: i.manifest.length,
      digest: i.digest,
      platform: platformOf(i.platform),
    })),
    ...extraChildren.map((a, n) => ({
      mediaType: a.mediaType,
      size: a.manifest.length,
      digest: a.digest,
      annotations: {
        'vnd.docker.reference.digest': opts.images[n]?.digest ?? '',
        'vnd.docker.reference.type': 'attestation-manifest',
      },
      platform: platformOf(a.platform),
    })),
  ];
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests }, null, 3));
  return {
    kind: 'index',
    format,
    manifest,
    digest: sha256(manifest),
    mediaType,
    children: opts.images,
    extraChildren,
  };
}
