import { createHash, type Hash } from 'node:crypto';
import { CorruptInputError, DigestMismatchError } from './errors.js';

/** A content digest such as `sha256:<64 hex>`. */
export type Digest = `${string}:${string}`;

const DIGEST_RE = /^(sha256):([a-f0-9]{64})$|^(sha512):([a-f0-9]{128})$/;

/** True when `s` is a digest this tool can verify (sha256 or sha512, lowercase hex). */
export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

/** Validates a digest string from untrusted input. */
export function parseDigest(s: string, what = 'digest'): Digest {
  if (!isDigest(s)) {
    throw new CorruptInputError(`${what} "${s.slice(0, 100)}" is not a valid sha256/sha512 digest`);
  }
  return s;
}

/** The hash algorithm named by a digest. */
export function digestAlgorithm(d: Digest): 'sha256' | 'sha512' {
  return d.startsWith('sha512:') ? 'sha512' : 'sha256';
}

/** sha256 digest of a buffer, in `sha256:<hex>` form. */
export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Hashes bytes incrementally and checks them against an expected digest at the end. */
export class DigestVerifier {
  private readonly hash: Hash;
  bytes = 0;
  constructor(
    readonly expected: Digest,
    readonly what: string,
  ) {
    this.hash = createHash(digestAlgorithm(expected));
  }
  update(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
  }
  /** Throws DigestMismatchError when the bytes seen do not match. */
  verify(): void {
    const actual: Digest = `${digestAlgorithm(this.expected)}:${this.hash.digest('hex')}`;
    if (actual !== this.expected) throw new DigestMismatchError(this.expected, actual, this.what);
  }
}
