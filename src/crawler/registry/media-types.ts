/** Manifest and layer media types (docker-hub-api.md §2.5, §2.6). */

export const DOCKER_MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json';
export const DOCKER_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** The OCI empty descriptor (`{}`): the config of an artifact that has none (image-spec manifest.md). */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';

/**
 * Config types Docker pulls as an image's, besides the two canonical ones: the values old registries and
 * tools wrote (distribution#1621), which moby still accepts (its distribution/config.go).
 */
const LEGACY_IMAGE_CONFIG_TYPES: ReadonlySet<string> = new Set([
  'application/octet-stream',
  'application/json',
  'text/html',
]);

/**
 * True for a config type Docker would pull and run an image with: the OCI and Docker image config types,
 * the legacy ones, and anything under `application/vnd.oci.image.` or `application/vnd.docker.` (moby
 * checks config and layer types by these prefixes), except Docker's AI models, which it refuses. A manifest
 * whose config is of another type (a Helm chart, the empty config of an `oras` artifact, a WASM module) is
 * an OCI artifact: no runtime runs it. The rule errs toward "image": an image skipped as an artifact would
 * be a backdoor never looked at, an artifact analyzed as an image only a layer that fails as corrupt.
 */
export function isImageConfigType(mediaType: string): boolean {
  const t = bareMediaType(mediaType);
  if (t === OCI_CONFIG || t === DOCKER_CONFIG || LEGACY_IMAGE_CONFIG_TYPES.has(t)) return true;
  if (t.startsWith('application/vnd.docker.ai.')) return false;
  return t.startsWith('application/vnd.oci.image.') || t.startsWith('application/vnd.docker.');
}

/**
 * Layer types that are known payloads of signatures, attestations and SBOMs, never a filesystem: a
 * manifest whose layers are all of these types is an artifact even over an image config, as cosign pushes
 * its `sha256-<hex>.sig` signatures. Only these exact types: a layer of any other type, unknown ones
 * included, keeps its image an image, and is analyzed (decompression is chosen by magic bytes).
 */
export const ARTIFACT_PAYLOAD_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.dev.cosign.simplesigning.v1+json', // cosign signature (`.sig`)
  'application/vnd.dsse.envelope.v1+json', // cosign attestation (`.att`)
  'application/vnd.in-toto+json', // BuildKit attestation, reached by digest
  OCI_EMPTY,
  'text/spdx', // cosign attach sbom (`.sbom`)
  'text/spdx+json',
  'application/spdx+json',
  'application/vnd.cyclonedx',
  'application/vnd.cyclonedx+json',
  'application/vnd.cyclonedx+xml',
  'application/vnd.syft+json',
]);

export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const DOCKER_FOREIGN_LAYER_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

/**
 * What we ask for. Without the list/index types a Docker registry rewrites the answer into schema1 or
 * picks linux/amd64 for us (manifest-v2-2.md, "Backward compatibility"). Schema1 is not asked for.
 */
export const MANIFEST_ACCEPT = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST_V2].join(', ');

/** Index-like media types (many manifests, one per platform). */
export const INDEX_TYPES: ReadonlySet<string> = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);
/** Single-image manifest media types. */
export const IMAGE_TYPES: ReadonlySet<string> = new Set([OCI_MANIFEST, DOCKER_MANIFEST_V2]);
/** Deprecated schema1, recognised so we can say it is unsupported. */
export const SCHEMA1_TYPES: ReadonlySet<string> = new Set([DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED]);

/**
 * Whether a media type (a Content-Type, a Hub tag listing's `media_type`, an index entry's `mediaType`)
 * names a schema1 manifest. Only these two exact types: an unknown, generic or missing type says nothing.
 */
export function isSchema1MediaType(mediaType: string | null | undefined): boolean {
  return SCHEMA1_TYPES.has(bareMediaType(mediaType ?? undefined));
}

/** Content types that say nothing about the manifest kind, so the body's mediaType decides. */
export const GENERIC_TYPES: ReadonlySet<string> = new Set([
  '',
  'application/json',
  'application/octet-stream',
  'text/plain',
]);

/** The bare media type from a Content-Type header (parameters dropped, lowercased). */
export function bareMediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** True for layer types that are foreign/non-distributable (may be fetched from `urls`). */
export function isForeignLayer(mediaType: string): boolean {
  return mediaType.includes('.foreign.') || mediaType.includes('.nondistributable.');
}
