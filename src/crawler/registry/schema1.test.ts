import { describe, expect, it } from 'vitest';
import { signedSchema1 } from '../../../test/helpers/schema1.js';
import { sha256Digest } from '../../core/digest.js';
import { DigestMismatchError, UnsupportedError } from '../../core/errors.js';
import { parseManifest, Schema1ManifestError } from './manifests.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST_V2,
  DOCKER_SCHEMA1,
  DOCKER_SCHEMA1_SIGNED,
  isSchema1MediaType,
  OCI_INDEX,
  OCI_MANIFEST,
} from './media-types.js';
import { signedPayload } from './schema1.js';

const layer = `sha256:${'b'.repeat(64)}`;
const signed = signedSchema1('legacy/app', 'old', [layer]);

/** What parseManifest throws for these bytes, or undefined. */
function thrown(input: Parameters<typeof parseManifest>[0]): unknown {
  try {
    parseManifest(input);
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('isSchema1MediaType', () => {
  it('recognises both schema1 types, with parameters and in any case', () => {
    expect(isSchema1MediaType(DOCKER_SCHEMA1)).toBe(true);
    expect(isSchema1MediaType(`${DOCKER_SCHEMA1_SIGNED.toUpperCase()}; charset=utf-8`)).toBe(true);
  });

  it('says nothing of an index, a schema2 or OCI manifest, a generic type or no type', () => {
    for (const t of [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST_V2, 'application/json']) {
      expect(isSchema1MediaType(t)).toBe(false);
    }
    expect(isSchema1MediaType('')).toBe(false);
    expect(isSchema1MediaType(null)).toBe(false);
    expect(isSchema1MediaType(undefined)).toBe(false);
  });
});

describe('signedPayload', () => {
  it('gives back the bytes a libtrust signature covers, which the digest names', () => {
    const body = JSON.parse(signed.manifest.toString()) as Record<string, unknown>;
    expect(signedPayload(signed.manifest, body)?.equals(signed.payload)).toBe(true);
  });

  it('gives nothing for a manifest without signatures or with a protected header that is not JSON', () => {
    expect(signedPayload(signed.payload, JSON.parse(signed.payload.toString()))).toBeUndefined();
    expect(signedPayload(Buffer.from('{}'), { signatures: [{ protected: '!!' }] })).toBeUndefined();
  });

  it('gives nothing when formatLength points past the bytes', () => {
    const header = Buffer.from(JSON.stringify({ formatLength: 10_000, formatTail: 'fQ' })).toString(
      'base64url',
    );
    expect(signedPayload(Buffer.from('{}'), { signatures: [{ protected: header }] })).toBeUndefined();
  });
});

describe('parseManifest on schema1', () => {
  it('refuses a signed schema1 manifest as schema1 for its digest, which names the payload, not as a mismatch', () => {
    const err = thrown({
      raw: signed.manifest,
      contentType: DOCKER_SCHEMA1_SIGNED,
      requestedDigest: signed.digest,
      headerDigest: signed.digest,
      source: 't',
    });
    expect(err).toBeInstanceOf(Schema1ManifestError);
    expect(err).toMatchObject({
      code: 'UNSUPPORTED',
      digest: signed.digest,
      mediaType: DOCKER_SCHEMA1_SIGNED,
    });
    expect((err as Error).message).toMatch(/t is a Docker schema1 manifest .*reads only schema2 and OCI/);
  });

  it('refuses a schema1 body served as application/json as schema1 for its own digest', () => {
    const raw = signed.payload;
    const digest = sha256Digest(raw);
    const err = thrown({ raw, contentType: 'application/json', requestedDigest: digest, source: 't' });
    expect(err).toBeInstanceOf(Schema1ManifestError);
    expect(err).toMatchObject({ digest, mediaType: DOCKER_SCHEMA1 });
  });

  it('still calls schema1 bytes that no expected digest names a digest mismatch', () => {
    const tampered = Buffer.from(signed.manifest.toString().replace('"old"', '"new"'));
    const err = thrown({
      raw: tampered,
      contentType: DOCKER_SCHEMA1_SIGNED,
      requestedDigest: signed.digest,
      source: 't',
    });
    expect(err).toBeInstanceOf(DigestMismatchError);
  });

  it('gives no verdict on the digest when only the Content-Type says schema1', () => {
    const raw = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST_V2,
        config: { mediaType: DOCKER_CONFIG, digest: layer, size: 1 },
        layers: [{ mediaType: DOCKER_LAYER_GZIP, digest: layer, size: 1 }],
      }),
    );
    const err = thrown({
      raw,
      contentType: DOCKER_SCHEMA1_SIGNED,
      requestedDigest: sha256Digest(raw),
      source: 't',
    });
    expect(err).toBeInstanceOf(UnsupportedError);
    expect(err).not.toBeInstanceOf(Schema1ManifestError);
  });

  it('gives no verdict on a usable manifest whose bytes a forged signature header wraps', () => {
    // A hostile server wraps a real schema2 manifest's bytes as the "payload" of a schema1 body, hoping
    // that digest gets recorded as schema1: the payload the digest names is schema2, so it does not.
    const usable = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: DOCKER_CONFIG, digest: layer, size: 1 },
        layers: [],
      }),
    );
    const header = { formatLength: 0, formatTail: usable.toString('base64url') };
    const raw = Buffer.from(
      JSON.stringify({
        schemaVersion: 1,
        signatures: [{ protected: Buffer.from(JSON.stringify(header)).toString('base64url') }],
      }),
    );
    const err = thrown({
      raw,
      contentType: DOCKER_SCHEMA1_SIGNED,
      requestedDigest: sha256Digest(usable),
      source: 't',
    });
    expect(err).toBeInstanceOf(DigestMismatchError);
  });
});
