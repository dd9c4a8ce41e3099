/**
 * Manifest parsing at the trust boundary: size limit, digest of the exact bytes, media type from the
 * Content-Type then the body, and zod validation of Docker schema2, Docker manifest list, OCI
 * manifest and OCI index. Schema1 is recognised and refused as unsupported (schema1.ts). An image
 * manifest that describes an OCI artifact (a signature, an SBOM, a Helm chart) parses as `artifact`.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { type Digest, digestAlgorithm, isDigest } from '../../core/digest.js';
import {
  CorruptInputError,
  DigestMismatchError,
  LimitExceededError,
  UnsupportedError,
} from '../../core/errors.js';
import { type Platform, platformMatches } from '../../core/platform.js';
import {
  ARTIFACT_PAYLOAD_TYPES,
  bareMediaType,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST_V2,
  GENERIC_TYPES,
  IMAGE_TYPES,
  INDEX_TYPES,
  isImageConfigType,
  OCI_INDEX,
  OCI_MANIFEST,
  SCHEMA1_TYPES,
} from './media-types.js';
import { bodyIsSchema1, Schema1ManifestError, schema1MediaType, signedPayload } from './schema1.js';

/** OCI spec: registries should accept manifests up to 4 MiB; more is suspicious. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const digestSchema = z.string().refine(isDigest, { message: 'not a sha256/sha512 digest' });
const platformSchema = z.object({
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  features: z.array(z.string()).optional(),
});
const descriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: platformSchema.optional(),
  artifactType: z.string().optional(),
});
const imageSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});
const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
});

/** A content descriptor (OCI image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
}

/** One entry of an index / manifest list. */
export interface IndexEntry {
  digest: Digest;
  mediaType: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  /** BuildKit provenance/SBOM manifests: `unknown/unknown` or `vnd.docker.reference.type`. */
  isAttestation: boolean;
}

/** Why an image manifest is an OCI artifact rather than a container image. */
export interface ArtifactVerdict {
  /** What it is: its `artifactType`, else its config type, else its layers' types. */
  artifactType: string;
  /** Why it is no image, in words, e.g. `config media type "…" is not an image config`. */
  reason: string;
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; manifests: IndexEntry[] }
  | { kind: 'image'; mediaType: string; config: Descriptor; layers: Descriptor[] }
  /** An image manifest that carries an artifact (signature, SBOM, chart…): not an image, never analyzed. */
  | ({ kind: 'artifact'; mediaType: string; config: Descriptor; layers: Descriptor[] } & ArtifactVerdict);

/**
 * Whether an image manifest describes an OCI artifact rather than a container image, and why
 * (image-spec manifest.md, "Guidelines for Artifact Usage"). Only what Docker refuses to run counts: a
 * config of a type it does not pull as an image config (isImageConfigType), or layers that are all known
 * signature, attestation or SBOM payloads (ARTIFACT_PAYLOAD_TYPES, none of which Docker accepts as a layer
 * type), as in a cosign signature over an image config. An `artifactType` alone does not make an artifact:
 * Docker ignores the field and runs the image, so a publisher could otherwise hide an image from the study
 * by adding it. Undefined for an image: layers of other types, unknown ones included, are analyzed. Media
 * types compare bare and lowercased (RFC 6838: case-insensitive).
 */
export function artifactVerdict(m: {
  artifactType?: string | undefined;
  config: { mediaType: string };
  layers: ReadonlyArray<{ mediaType: string }>;
}): ArtifactVerdict | undefined {
  const declared = m.artifactType !== undefined && m.artifactType.trim() !== '' ? m.artifactType : undefined;
  if (!isImageConfigType(m.config.mediaType)) {
    return {
      artifactType: declared ?? m.config.mediaType,
      reason: `its config media type "${m.config.mediaType}" is not an image config`,
    };
  }
  const layerTypes = [...new Set(m.layers.map((l) => bareMediaType(l.mediaType)))];
  if (layerTypes.length > 0 && layerTypes.every((t) => ARTIFACT_PAYLOAD_TYPES.has(t))) {
    const types = layerTypes.join(', ');
    return {
      artifactType: declared ?? types,
      reason: `its layers are ${types} (signature, attestation or SBOM payloads), not filesystem layers`,
    };
  }
  return undefined;
}

export interface ManifestInput {
  /** The exact bytes received. */
  raw: Buffer;
  contentType?: string | undefined;
  /** The digest we asked for (when the reference was a digest). */
  requestedDigest?: Digest | undefined;
  /** The `Docker-Content-Digest` header, when present. */
  headerDigest?: string | undefined;
  /** Where it came from, for error messages. */
  source: string;
  maxBytes?: number;
}

function hashWith(raw: Buffer, like: Digest | undefined): Digest {
  const alg = like ? digestAlgorithm(like) : 'sha256';
  return `${alg}:${createHash(alg).update(raw).digest('hex')}`;
}

function toDescriptor(d: z.infer<typeof descriptorSchema>): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest as Digest, size: d.size };
  if (d.urls) out.urls = d.urls;
  if (d.annotations) out.annotations = d.annotations;
  return out;
}

function toEntry(d: z.infer<typeof descriptorSchema>): IndexEntry {
  const entry: IndexEntry = {
    digest: d.digest as Digest,
    mediaType: d.mediaType,
    size: d.size,
    isAttestation:
      d.annotations?.['vnd.docker.reference.type'] !== undefined ||
      (d.platform?.os === 'unknown' && d.platform.architecture === 'unknown'),
  };
  if (d.platform) {
    entry.platform = { os: d.platform.os, architecture: d.platform.architecture };
    if (d.platform.variant) entry.platform.variant = d.platform.variant;
  }
  if (d.annotations) entry.annotations = d.annotations;
  return entry;
}

function issues(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** The JSON object `raw` holds, or the reason it holds none (not JSON, or JSON but not an object). */
function jsonObject(
  raw: Buffer,
): { body: Record<string, unknown> } | { error: 'not-json' | 'not-object'; cause?: unknown } {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (cause) {
    return { error: 'not-json', cause };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { error: 'not-object' };
  return { body: json as Record<string, unknown> };
}

/**
 * Refuses, with Schema1ManifestError, a manifest whose bytes named by `expected` (the served bytes, or a
 * signed one's payload: schema1.ts) are schema1 themselves. It runs before the digest checks, which would
 * call a genuine signed one a mismatch. Anything else returns, for the checks below to judge: a schema1
 * Content-Type over other content, or bytes that no expected digest names.
 */
function refuseSchema1(
  raw: Buffer,
  body: Record<string, unknown>,
  contentType: string,
  expected: Digest[],
  source: string,
): void {
  if (!SCHEMA1_TYPES.has(contentType) && !bodyIsSchema1(body)) return;
  const payload = signedPayload(raw, body);
  for (const named of payload ? [raw, payload] : [raw]) {
    if (!expected.every((d) => hashWith(named, d) === d)) continue;
    // The verdict is on the bytes the digest names: a signed one's payload must be schema1 itself.
    const own = named === raw ? { body } : jsonObject(named);
    if (!('body' in own) || !bodyIsSchema1(own.body)) return;
    const digest = expected[0] ?? hashWith(named, undefined);
    throw new Schema1ManifestError(digest, schema1MediaType(contentType, payload !== undefined), source);
  }
}

/** Decides the media type: a specific Content-Type wins; a generic one defers to the body, then the shape. */
function decideMediaType(source: string, contentType: string, body: Record<string, unknown>): string {
  const bodyType = typeof body.mediaType === 'string' ? body.mediaType : undefined;
  if (
    body.schemaVersion === 1 ||
    SCHEMA1_TYPES.has(contentType) ||
    (bodyType && SCHEMA1_TYPES.has(bodyType))
  ) {
    throw new UnsupportedError(
      `${source} is a Docker schema1 manifest, which is deprecated and not supported`,
    );
  }
  if (!GENERIC_TYPES.has(contentType)) {
    if (INDEX_TYPES.has(contentType) || IMAGE_TYPES.has(contentType)) return contentType;
    throw new UnsupportedError(
      `${source} has media type "${contentType}", which is not an image manifest or index`,
    );
  }
  if (bodyType) {
    if (INDEX_TYPES.has(bodyType) || IMAGE_TYPES.has(bodyType)) return bodyType;
    throw new UnsupportedError(
      `${source} has media type "${bodyType}", which is not an image manifest or index`,
    );
  }
  // OCI allows an absent mediaType; the shape says which it is.
  if (Array.isArray(body.manifests)) return OCI_INDEX;
  if (body.config !== undefined) return OCI_MANIFEST;
  throw new CorruptInputError(`${source} has no media type and is neither a manifest nor an index`);
}

/** Verifies and parses a manifest; returns its digest (of the exact bytes) and the parsed form. */
export function parseManifest(input: ManifestInput): {
  digest: Digest;
  mediaType: string;
  parsed: ParsedManifest;
} {
  const { raw, source } = input;
  const max = input.maxBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
  if (raw.length > max) {
    throw new LimitExceededError(
      'maxManifestBytes',
      raw.length,
      `${source} is ${raw.length} bytes, more than maxManifestBytes (${max} bytes)`,
    );
  }
  const header = input.headerDigest?.trim();
  const contentType = bareMediaType(input.contentType);
  const parsedJson = jsonObject(raw);
  if ('body' in parsedJson && (!header || isDigest(header))) {
    const expected = [input.requestedDigest, header].filter((d): d is Digest => d !== undefined && d !== '');
    refuseSchema1(raw, parsedJson.body, contentType, expected, source);
  }
  const digest = hashWith(raw, input.requestedDigest);
  if (input.requestedDigest && digest !== input.requestedDigest) {
    throw new DigestMismatchError(input.requestedDigest, digest, source);
  }
  if (header) {
    if (!isDigest(header))
      throw new CorruptInputError(
        `${source} sent a malformed Docker-Content-Digest "${header.slice(0, 100)}"`,
      );
    const own = header.startsWith(digest.slice(0, digest.indexOf(':') + 1)) ? digest : hashWith(raw, header);
    if (own !== header) throw new DigestMismatchError(header, own, `${source} (Docker-Content-Digest)`);
  }
  // A Content-Type that names something else settles it before the body is looked at.
  if (SCHEMA1_TYPES.has(contentType)) {
    throw new UnsupportedError(
      `${source} is a Docker schema1 manifest, which is deprecated and not supported`,
    );
  }
  if (!GENERIC_TYPES.has(contentType) && !INDEX_TYPES.has(contentType) && !IMAGE_TYPES.has(contentType)) {
    throw new UnsupportedError(
      `${source} has media type "${contentType}", which is not an image manifest or index`,
    );
  }
  if (!('body' in parsedJson)) {
    if (parsedJson.error === 'not-json')
      throw new CorruptInputError(`${source} is not valid JSON`, { cause: parsedJson.cause });
    throw new CorruptInputError(`${source} is JSON but not an object`);
  }
  const body = parsedJson.body;
  const mediaType = decideMediaType(source, contentType, body);
  if (typeof body.mediaType === 'string' && body.mediaType !== mediaType) {
    throw new CorruptInputError(`${source} is served as ${mediaType} but its body says ${body.mediaType}`);
  }
  if (INDEX_TYPES.has(mediaType)) {
    const r = indexSchema.safeParse(body);
    if (!r.success) throw new CorruptInputError(`${source} is not a valid ${mediaType}: ${issues(r.error)}`);
    return {
      digest,
      mediaType,
      parsed: { kind: 'index', mediaType, manifests: r.data.manifests.map(toEntry) },
    };
  }
  const r = imageSchema.safeParse(body);
  if (!r.success) throw new CorruptInputError(`${source} is not a valid ${mediaType}: ${issues(r.error)}`);
  const config = toDescriptor(r.data.config);
  const layers = r.data.layers.map(toDescriptor);
  const artifact = artifactVerdict(r.data);
  if (artifact)
    return { digest, mediaType, parsed: { kind: 'artifact', mediaType, config, layers, ...artifact } };
  return { digest, mediaType, parsed: { kind: 'image', mediaType, config, layers } };
}

/** The image entries of an index wanted by `wanted`; attestations are always skipped. */
export function selectPlatforms(
  index: Extract<ParsedManifest, { kind: 'index' }>,
  wanted: Platform[] | 'all',
): IndexEntry[] {
  return index.manifests.filter((m) => {
    if (m.isAttestation) return false;
    if (wanted === 'all') return true;
    const p = m.platform;
    return p !== undefined && wanted.some((w) => platformMatches(w, p));
  });
}

export { DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST, Schema1ManifestError };
