/**
 * Per-file work on entry data as it streams past: sha256 + md5 of candidate files, and bounded
 * in-memory capture of the few small files we parse (dpkg database, os-release).
 */
import { createHash, type Hash } from 'node:crypto';
import { LimitExceededError } from '../core/errors.js';

/** sha256 and md5 of one file's bytes, computed in a single streaming pass. */
export class FileHasher {
  private readonly sha256: Hash = createHash('sha256');
  private readonly md5: Hash = createHash('md5');
  bytes = 0;

  update(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    this.sha256.update(chunk);
    this.md5.update(chunk);
  }

  /** Lowercase hex digests; the hasher cannot be used afterwards. */
  digest(): { sha256: string; md5: string } {
    return { sha256: this.sha256.digest('hex'), md5: this.md5.digest('hex') };
  }
}

/** Collects one file's bytes into memory, refusing to grow past `maxBytes`. */
export class CaptureBuffer {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
  ) {}

  /** Copies the chunk: callers hand us views of buffers that are reused or released. */
  update(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      throw new LimitExceededError(
        'maxCaptureBytes',
        this.bytes,
        `${this.path} is larger than maxCaptureBytes (${this.maxBytes}); refusing to parse it and the layer`,
      );
    }
    this.chunks.push(Buffer.from(chunk));
  }

  /** The captured bytes as UTF-8 text (invalid sequences become U+FFFD). */
  text(): string {
    return Buffer.concat(this.chunks, this.bytes).toString('utf8');
  }

  /**
   * The captured bytes, for a file read as bytes: an md5sums list, whose paths are decoded as tar names
   * are (decodeTarName) one line at a time, so that a listed path that is not UTF-8 is the same text as
   * the member it names, and two such paths stay apart.
   */
  data(): Buffer {
    return Buffer.concat(this.chunks, this.bytes);
  }
}
