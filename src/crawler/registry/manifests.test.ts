import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../../core/digest.js';
import {
  CorruptInputError,
  DigestMismatchError,
  LimitExceededError,
  UnsupportedError,
} from '../../core/errors.js';
import { artifactVerdict, parseManifest, selectPlatforms } from './manifests.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST_V2,
  OCI_CONFIG,
  OCI_EMPTY,
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

describe('an OCI artifact in an image manifest', () => {
  const SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
  const kindOf = (o: unknown) =>
    parseManifest({ raw: buf(o), contentType: OCI_MANIFEST, source: 't' }).parsed;
  /** What cosign pushes as `sha256-<hex>.sig`: an image config over a simplesigning payload. */
  const cosign = {
    ...oci,
    layers: [
      {
        mediaType: SIMPLESIGNING,
        digest: d('f'),
        size: 250,
        annotations: { 'dev.cosignproject.cosign/signature': 'MEUC' },
      },
    ],
  };

  it('is a cosign signature: an image config whose layers are all simplesigning payloads', () => {
    expect(kindOf(cosign)).toMatchObject({
      kind: 'artifact',
      artifactType: SIMPLESIGNING,
      reason: expect.stringContaining(`layers are ${SIMPLESIGNING}`),
      config: { digest: d('c') },
      layers: [{ digest: d('f'), mediaType: SIMPLESIGNING }],
    });
  });

  it('is a manifest that declares an artifactType over a config that is no image config', () => {
    const sbom = {
      ...oci,
      artifactType: 'application/spdx+json',
      config: { mediaType: OCI_EMPTY, digest: d('4'), size: 2 },
      layers: [{ mediaType: 'application/spdx+json', digest: d('5'), size: 9 }],
      subject: { mediaType: OCI_MANIFEST, digest: d('6'), size: 3 },
    };
    expect(kindOf(sbom)).toMatchObject({
      kind: 'artifact',
      artifactType: 'application/spdx+json',
      reason: `its config media type "${OCI_EMPTY}" is not an image config`,
    });
  });

  it('is still an image when it declares an artifactType over an image config and filesystem layers', () => {
    // Docker ignores artifactType and runs such a manifest: skipping it would let a publisher hide an image.
    expect(kindOf({ ...oci, artifactType: 'application/vnd.example+type' }).kind).toBe('image');
  });

  it('is a manifest whose config is not an image config: Helm, the empty config, a cosign-typed one', () => {
    for (const config of [
      'application/vnd.cncf.helm.config.v1+json',
      OCI_EMPTY,
      SIMPLESIGNING,
      'application/vnd.unknown.config.v1+json',
    ]) {
      // A Helm chart's content is a gzipped tar: the config alone decides.
      const m = {
        ...oci,
        config: { mediaType: config, digest: d('7'), size: 2 },
        layers: [
          { mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: d('8'), size: 5 },
        ],
      };
      expect(kindOf(m)).toMatchObject({
        kind: 'artifact',
        artifactType: config,
        reason: `its config media type "${config}" is not an image config`,
      });
    }
    // A Docker schema2 manifest too.
    const docker = {
      ...schema2,
      config: { ...schema2.config, mediaType: 'application/vnd.cncf.helm.config.v1+json' },
    };
    expect(
      parseManifest({ raw: buf(docker), contentType: DOCKER_MANIFEST_V2, source: 't' }).parsed.kind,
    ).toBe('artifact');
  });

  it('is still an image with any config type Docker pulls as an image config', () => {
    // moby: the legacy types of distribution#1621, and any type under these prefixes; an image hidden as
    // an "artifact" would be a backdoor never looked at.
    for (const config of [
      'application/octet-stream',
      'application/json',
      'text/html',
      'application/vnd.oci.image.config.v2+json',
      'application/vnd.docker.container.image.v2+json',
      'Application/VND.OCI.Image.Config.v1+JSON; charset=utf-8',
    ]) {
      const m = { ...oci, config: { mediaType: config, digest: d('7'), size: 2 } };
      expect(kindOf(m).kind, config).toBe('image');
    }
    // Docker refuses its AI models by name: those are artifacts.
    const model = {
      ...oci,
      config: { mediaType: 'application/vnd.docker.ai.model.config.v0.1+json', digest: d('7'), size: 2 },
    };
    expect(kindOf(model).kind).toBe('artifact');
  });

  it('is read back as an artifact from its stored bytes and type, as the crawl does without a GET', () => {
    const raw = buf(cosign);
    const again = parseManifest({
      raw,
      contentType: OCI_MANIFEST,
      requestedDigest: sha256Digest(raw),
      source: 't',
    });
    expect(again.parsed.kind).toBe('artifact');
  });

  it('is not an image whose layers are of an unknown, odd or mixed type: those are analyzed', () => {
    for (const types of [
      ['application/octet-stream'],
      ['application/vnd.example.layer.v1.tar+gzip'],
      ['application/json'],
      [OCI_LAYER_ZSTD, SIMPLESIGNING],
    ]) {
      const layers = types.map((mediaType, i) => ({ mediaType, digest: d(String(i)), size: 1 }));
      expect(artifactVerdict({ config: { mediaType: OCI_CONFIG }, layers })).toBeUndefined();
      expect(kindOf({ ...oci, layers }).kind).toBe('image');
    }
    // An image without layers (FROM scratch with only metadata) is an image, and so are both config types.
    expect(kindOf({ ...oci, layers: [] }).kind).toBe('image');
    expect(
      parseManifest({ raw: buf(schema2), contentType: DOCKER_MANIFEST_V2, source: 't' }).parsed.kind,
    ).toBe('image');
  });

  it('compares media types bare and case-insensitively, and ignores an empty artifactType', () => {
    expect(
      artifactVerdict({ config: { mediaType: 'Application/VND.OCI.Image.Config.v1+JSON' }, layers: [] }),
    ).toBe(undefined);
    expect(
      artifactVerdict({
        config: { mediaType: `${DOCKER_CONFIG}; charset=utf-8` },
        layers: [{ mediaType: 'x' }],
      }),
    ).toBe(undefined);
    expect(
      artifactVerdict({
        config: { mediaType: OCI_CONFIG },
        layers: [{ mediaType: SIMPLESIGNING.toUpperCase() }],
      }),
    ).toMatchObject({ artifactType: SIMPLESIGNING });
    expect(artifactVerdict({ artifactType: ' ', config: { mediaType: OCI_CONFIG }, layers: [] })).toBe(
      undefined,
    );
  });

  it('rejects an artifactType that is not a string, as a malformed manifest', () => {
    expect(() => kindOf({ ...oci, artifactType: 7 })).toThrow(CorruptInputError);
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
