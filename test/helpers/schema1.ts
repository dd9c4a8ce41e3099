/**
 * Docker schema1 manifests signed as libtrust signs them (JWS, ES256, "prettyjws"), which is what the
 * real distribution registry demands of a schema1 PUT, and a registry that accepts them: distribution
 * 2.8 refuses schema1 unless `compatibility.schema1.enabled`, so the suite's shared registries cannot
 * hold one. The digest of a signed manifest is that of its payload without the signatures.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { sha256 } from '../../scripts/lib/image-builder.js';
import { type PushTarget, pushBlob, registryFetch } from '../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../scripts/lib/registry.js';

export const SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

export interface SignedSchema1 {
  /** The bytes as signed: the payload with a `signatures` member spliced in before its last brace. */
  manifest: Buffer;
  /** The payload the signature covers, which the digest names. */
  payload: Buffer;
  digest: `sha256:${string}`;
}

const RFC4648_BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** libtrust's key ID: the first 240 bits of the SPKI's sha256, base32, in twelve groups of four. */
function libtrustKeyId(spki: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of createHash('sha256').update(spki).digest().subarray(0, 30)) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += RFC4648_BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return (out.match(/.{4}/g) ?? []).join(':');
}

/** Splices `signatures` into a pretty-printed payload as libtrust's PrettySignature does. */
function withSignatures(payload: string, signatures: unknown[]): string {
  const end = payload.lastIndexOf('\n}');
  const block = JSON.stringify(signatures, null, 3).replace(/\n/g, '\n   ');
  return `${payload.slice(0, end)},\n   "signatures": ${block}${payload.slice(end)}`;
}

/** A schema1 manifest of `name:tag` over `layerDigests` (top layer first, as schema1 lists them), signed. */
export function signedSchema1(name: string, tag: string, layerDigests: string[]): SignedSchema1 {
  const body = {
    schemaVersion: 1,
    name,
    tag,
    architecture: 'amd64',
    fsLayers: layerDigests.map((blobSum) => ({ blobSum })),
    history: layerDigests.map((_, i) => ({
      v1Compatibility: JSON.stringify({
        id: String(i).repeat(64).slice(0, 64),
        created: '2015-06-01T00:00:00Z',
      }),
    })),
  };
  const pretty = JSON.stringify(body, null, 3);
  const end = pretty.lastIndexOf('\n}');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = libtrustKeyId(publicKey.export({ format: 'der', type: 'spki' }));
  const header = {
    formatLength: end,
    formatTail: Buffer.from(pretty.slice(end)).toString('base64url'),
    time: '2015-06-01T00:00:00Z',
  };
  const protectedHeader = Buffer.from(JSON.stringify(header)).toString('base64url');
  const signingInput = `${protectedHeader}.${Buffer.from(pretty).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const signatures = [
    {
      header: { jwk: { crv: 'P-256', kid, kty: 'EC', x: jwk.x, y: jwk.y }, alg: 'ES256' },
      signature: signature.toString('base64url'),
      protected: protectedHeader,
    },
  ];
  const payload = Buffer.from(pretty);
  return {
    manifest: Buffer.from(withSignatures(pretty, signatures)),
    payload,
    digest: sha256(payload) as `sha256:${string}`,
  };
}

/** Pushes a one-layer schema1 image as `repository:tag`; returns the manifest (digest: the registry's). */
export async function pushSchema1(
  target: PushTarget,
  repository: string,
  tag: string,
): Promise<SignedSchema1> {
  const layer = Buffer.from(`schema1 layer of ${repository}:${tag}\n`);
  const layerDigest = sha256(layer);
  await pushBlob(target, repository, { digest: layerDigest, data: layer, size: layer.length, mediaType: '' });
  const m = signedSchema1(repository, tag, [layerDigest]);
  const res = await registryFetch(target, repository, `${target.url}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': SCHEMA1_SIGNED },
    body: m.manifest,
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT schema1 ${repository}:${tag}: HTTP ${res.status} ${text}`);
  const stored = res.headers.get('docker-content-digest');
  if (stored !== m.digest) throw new Error(`registry named ${repository}:${tag} ${stored}, not ${m.digest}`);
  return m;
}

/**
 * A real registry of its own that accepts schema1: distribution reads its configuration overrides from
 * REGISTRY_* variables, which the child inherits from this (the test's own) process.
 */
export async function startSchema1Registry(): Promise<RunningRegistry> {
  process.env.REGISTRY_COMPATIBILITY_SCHEMA1_ENABLED = 'true';
  try {
    return await startRegistry();
  } finally {
    delete process.env.REGISTRY_COMPATIBILITY_SCHEMA1_ENABLED;
  }
}
