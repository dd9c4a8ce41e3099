/**
 * Docker schema1 manifests (deprecated; distribution `deprecated-schema-v1.md`), recognised so that
 * they are refused as unsupported, before their GET where their type is known, and for good after it.
 *
 * A signed schema1 manifest (`…v1+prettyjws`) is named by the digest of its payload without the
 * `signatures` member, not of the bytes served (libtrust JWS): the first signature's protected header
 * holds `formatLength`, how many leading bytes of the served manifest belong to the payload, and
 * `formatTail`, the payload's end in base64url. So the served bytes of a genuine one never hash to its
 * digest: distribution 2.8 answers HEAD and GET with the payload's digest and serves the signed bytes
 * (test/integration/crawl/schema1.test.ts), so the digest checks alone would call it a mismatch.
 */
import type { Digest } from '../../core/digest.js';
import { UnsupportedError } from '../../core/errors.js';
import { DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, isSchema1MediaType } from './media-types.js';

/** What hubcrawl reads instead, said in every schema1 refusal. */
const READS_ONLY = 'hubcrawl reads only schema2 and OCI manifests';

/**
 * A schema1 manifest whose own bytes, checked against `digest`, say so: the verdict belongs to the
 * digest, in any registry and any run, and a Content-Type alone never makes one.
 */
export class Schema1ManifestError extends UnsupportedError {
  constructor(
    readonly digest: Digest,
    readonly mediaType: string,
    source: string,
  ) {
    super(`${source} is a Docker schema1 manifest (${mediaType}), which is deprecated; ${READS_ONLY}`);
  }
}

/**
 * The refusal of a schema1 manifest known before its GET; `known` says how ("as the Docker Hub tag
 * listing says", "as the GET of run 3 found"). No pull is spent on it.
 */
export function schema1Refusal(subject: string, mediaType: string, known: string): UnsupportedError {
  return new UnsupportedError(
    `${subject} is a Docker schema1 manifest (${mediaType}), ${known}; ${READS_ONLY}, so it was not fetched and no pull was spent`,
  );
}

/** Whether a manifest body says it is schema1: `schemaVersion: 1`, or a schema1 `mediaType`. */
export function bodyIsSchema1(body: Record<string, unknown>): boolean {
  return (
    body.schemaVersion === 1 || (typeof body.mediaType === 'string' && isSchema1MediaType(body.mediaType))
  );
}

/** The schema1 type to record: the one it was served as, else the one its shape implies. */
export function schema1MediaType(contentType: string, signed: boolean): string {
  if (isSchema1MediaType(contentType)) return contentType;
  return signed ? DOCKER_SCHEMA1_SIGNED : DOCKER_SCHEMA1;
}

/**
 * The payload a libtrust-signed manifest's signatures cover (what its digest names), or undefined when
 * `body` has no usable first signature. Whether it is the right payload is for its digest to say.
 */
export function signedPayload(raw: Buffer, body: Record<string, unknown>): Buffer | undefined {
  const signatures = body.signatures;
  if (!Array.isArray(signatures)) return undefined;
  const first: unknown = signatures[0];
  if (typeof first !== 'object' || first === null) return undefined;
  const protectedHeader = (first as Record<string, unknown>).protected;
  if (typeof protectedHeader !== 'string') return undefined;
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(protectedHeader, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null) return undefined;
  const { formatLength, formatTail } = header as Record<string, unknown>;
  if (typeof formatLength !== 'number' || !Number.isSafeInteger(formatLength)) return undefined;
  if (formatLength < 0 || formatLength > raw.length || typeof formatTail !== 'string') return undefined;
  return Buffer.concat([raw.subarray(0, formatLength), Buffer.from(formatTail, 'base64url')]);
}
