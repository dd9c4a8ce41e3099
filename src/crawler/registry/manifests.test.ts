import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../../core/digest.js';
import {
  CorruptInputError,
  DigestMismatchError,
  LimitExceededError,
  UnsupportedError,
} from '../../core/errors.js';
import { parseManifest, selectPlatforms } from './manifests.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST_V2,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER_ZSTD,
  OCI_MANIFEST,
} from './media-types.js';

const d = (c: string) => `sha256:${c.repeat(64)}` as const;
const buf = (o: unknown) => Buffer.from(JSON.stringify(o));

const schema2 = {
  schemaVersion: 2,
  mediaType: DOCKER_MANIFEST_V2,
  config: { mediaType: DOCKER_CONFIG, digest: d('a'), size: 7023 },
  layers: [{ mediaType: DOCKER_LAYER_GZIP, digest: d('b'), size: 32654 }],
};
const oci = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  config: { mediaType: OCI_CONFIG, digest: d('c'), size: 10 },
  layers: [{ mediaType: OCI_LAYER_ZSTD, digest: d('e'), size: 11 }],
};
const index = {
  schemaVersion: 2,
  mediaType: OCI_INDEX,
  manifests: [
    { mediaType: OCI_MANIFEST, digest: d('1'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    {
      mediaType: OCI_MANIFEST,
      digest: d('2'),
      size: 2,
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    },
    {
      mediaType: OCI_MANIFEST,
      digest: d('3'),
      size: 3,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: {
        'vnd.docker.reference.type': 'attestation-manifest',
        'vnd.docker.reference.digest': d('1'),
      },
    },
  ],
};

describe('parseManifest', () => {
  it('parses a Docker schema2 manifest and digests the exact bytes', () => {
    const raw = buf(schema2);
    const r = parseManifest({ raw, contentType: DOCKER_MANIFEST_V2, source: 't' });
    expect(r.digest).toBe(sha256Digest(raw));
    expect(r.parsed).toEqual({
      kind: 'image',
      mediaType: DOCKER_MANIFEST_V2,
      config: schema2.config,
      layers: schema2.layers,
    });
  });

  it('parses an OCI manifest with a zstd layer', () => {
    const r = parseManifest({ raw: buf(oci), contentType: `${OCI_MANIFEST}; charset=utf-8`, source: 't' });
    expect(r.mediaType).toBe(OCI_MANIFEST);
    expect(r.parsed.kind === 'image' && r.parsed.layers[0]?.mediaType).toBe(OCI_LAYER_ZSTD);
  });

  it('parses a Docker manifest list', () => {
    const list = { ...index, mediaType: DOCKER_MANIFEST_LIST, manifests: index.manifests.slice(0, 2) };
    const r = parseManifest({ raw: buf(list), contentType: DOCKER_MANIFEST_LIST, source: 't' });
    expect(r.parsed.kind).toBe('index');
  });

  it('marks attestation entries of an OCI index', () => {
    const r = parseManifest({ raw: buf(index), contentType: OCI_INDEX, source: 't' });
    if (r.parsed.kind !== 'index') throw new Error('expected an index');
    expect(r.parsed.manifests.map((m) => m.isAttestation)).toEqual([false, false, true]);
    expect(r.parsed.manifests[1]?.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
  });

  it('takes the media type from the body when the Content-Type is generic', () => {
    const r = parseManifest({ raw: buf(schema2), contentType: 'application/json', source: 't' });
    expect(r.mediaType).toBe(DOCKER_MANIFEST_V2);
  });

  it('infers an OCI index from its shape when no media type is given anywhere', () => {
    const { mediaType: _, ...bare } = index;
    expect(parseManifest({ raw: buf(bare), source: 't' }).mediaType).toBe(OCI_INDEX);
  });

  it('reports schema1 as unsupported', () => {
    const s1 = { schemaVersion: 1, name: 'x', tag: 'latest', fsLayers: [] };
    expect(() =>
      parseManifest({
        raw: buf(s1),
        contentType: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
        source: 't',
      }),
    ).toThrow(UnsupportedError);
  });

  it('reports schema1 served as application/json as unsupported', () => {
    expect(() =>
      parseManifest({
        raw: buf({ schemaVersion: 1, fsLayers: [] }),
        contentType: 'application/json',
        source: 't',
      }),
    ).toThrow(UnsupportedError);
  });

  it('rejects a media type that is not a manifest', () => {
    expect(() => parseManifest({ raw: buf(schema2), contentType: 'text/html', source: 't' })).toThrow(
      UnsupportedError,
    );
  });

  it('rejects a body whose mediaType contradicts the Content-Type', () => {
    expect(() => parseManifest({ raw: buf(schema2), contentType: OCI_INDEX, source: 't' })).toThrow(
      CorruptInputError,
    );
  });

  it('rejects garbage that is not JSON', () => {
    expect(() =>
      parseManifest({ raw: Buffer.from('<html>oops'), contentType: OCI_MANIFEST, source: 't' }),
    ).toThrow(/not valid JSON/);
  });

  it('rejects JSON that is not an object', () => {
    expect(() => parseManifest({ raw: Buffer.from('[1,2]'), source: 't' })).toThrow(CorruptInputError);
  });

  it('rejects a manifest whose layer lacks a digest, naming the field', () => {
    const bad = { ...schema2, layers: [{ mediaType: DOCKER_LAYER_GZIP, size: 1 }] };
    expect(() => parseManifest({ raw: buf(bad), contentType: DOCKER_MANIFEST_V2, source: 't' })).toThrow(
      /layers\.0\.digest/,
    );
  });

  it('rejects a malformed descriptor digest', () => {
    const bad = { ...schema2, config: { ...schema2.config, digest: 'sha256:XYZ' } };
    expect(() => parseManifest({ raw: buf(bad), contentType: DOCKER_MANIFEST_V2, source: 't' })).toThrow(
      CorruptInputError,
    );
  });

  it('rejects a body larger than the limit before parsing', () => {
    expect(() =>
      parseManifest({
        raw: Buffer.alloc(2000, 0x20),
        contentType: OCI_MANIFEST,
        source: 't',
        maxBytes: 1000,
      }),
    ).toThrow(LimitExceededError);
  });

  it('rejects bytes that do not hash to the requested digest', () => {
    expect(() => parseManifest({ raw: buf(schema2), requestedDigest: d('f'), source: 't' })).toThrow(
      DigestMismatchError,
    );
  });

  it('rejects a Docker-Content-Digest that does not match the bytes', () => {
    expect(() => parseManifest({ raw: buf(schema2), headerDigest: d('f'), source: 't' })).toThrow(
      DigestMismatchError,
    );
  });

  it('accepts matching requested and header digests', () => {
    const raw = buf(schema2);
    const dg = sha256Digest(raw);
    expect(parseManifest({ raw, requestedDigest: dg, headerDigest: dg, source: 't' }).digest).toBe(dg);
  });

  it('rejects a malformed Docker-Content-Digest header', () => {
    expect(() => parseManifest({ raw: buf(schema2), headerDigest: 'nope', source: 't' })).toThrow(
      CorruptInputError,
    );
  });
});

describe('selectPlatforms', () => {
  const parsed = parseManifest({ raw: buf(index), contentType: OCI_INDEX, source: 't' }).parsed;
  if (parsed.kind !== 'index') throw new Error('expected an index');

  it('selects every image but not the attestation for "all"', () => {
    expect(selectPlatforms(parsed, 'all').map((m) => m.digest)).toEqual([d('1'), d('2')]);
  });

  it('selects by os/arch, a wanted platform without variant matching any variant', () => {
    expect(selectPlatforms(parsed, [{ os: 'linux', architecture: 'arm64' }]).map((m) => m.digest)).toEqual([
      d('2'),
    ]);
  });

  it('selects nothing for a platform the index lacks', () => {
    expect(selectPlatforms(parsed, [{ os: 'linux', architecture: 's390x' }])).toEqual([]);
  });

  it('never selects an attestation even when asked for unknown/unknown', () => {
    expect(selectPlatforms(parsed, [{ os: 'unknown', architecture: 'unknown' }])).toEqual([]);
  });
});
