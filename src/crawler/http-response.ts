/**
 * A response as the HTTP layer hands it out: the body as a one-shot stream that counts its bytes,
 * enforces maxBodyBytes (declared or sent) and a slowest pace, and turns a transport failure mid-body
 * into RetryableError.
 */
import { CorruptInputError, LimitExceededError, RetryableError } from '../core/errors.js';
import { redactUrl } from '../core/url.js';
import { classify, type HttpHeaders } from './http-errors.js';
import { headerValue } from './rate-limit.js';
import type { RequestStats } from './stats.js';

export interface HttpResponse {
  status: number;
  headers: HttpHeaders;
  url: URL;
  /** The body as a stream; may be iterated once. Stalls longer than timeoutMs throw RetryableError. */
  body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  json(): Promise<unknown>;
  bytes(): Promise<Buffer>;
  /** Discards the body so the connection can be reused. */
  dump(): Promise<void>;
}

/** The limit text()/json()/bytes() apply when the request set no maxBodyBytes. */
const DEFAULT_BUFFER_LIMIT = 16 * 1024 * 1024;
/** Most of a body read for an error message or a 429, and most drained to reuse a connection. */
const SNIPPET_BYTES = 64 * 1024;

/** The parts of undici's body stream used here. */
export type BodySource = AsyncIterable<Uint8Array> & {
  destroy(err?: Error): void;
  on?: (event: 'error', listener: (err: Error) => void) => void;
  dump?: (opts: { limit: number }) => Promise<void>;
};

/** Drops a body we will not read; undici reports the destroy as an error event nobody else listens to. */
function discard(source: BodySource): void {
  source.on?.('error', () => {});
  source.destroy();
}

/** A body already read in full. */
function emptySource(): BodySource {
  return {
    async *[Symbol.asyncIterator]() {},
    destroy() {},
  };
}

/**
 * The slowest a body may come. undici's bodyTimeout ends a body that stalls, but a server sending a byte
 * every second never stalls: a 500-byte manifest would take minutes, a tag list hours. Once the reader
 * has waited `graceMs` for the body, it must have come at `minBytesPerSecond` on average. Only the time
 * spent waiting for the server counts, not the time the consumer (the analyzer) holds a chunk.
 */
export interface BodyPace {
  graceMs: number;
  minBytesPerSecond: number;
}

/** HttpResponse over an undici body (or a buffered one); see the module comment. */
export class BoundedResponse implements HttpResponse {
  private consumed = false;
  constructor(
    readonly status: number,
    readonly headers: HttpHeaders,
    readonly url: URL,
    private readonly source: BodySource,
    private readonly maxBodyBytes: number | undefined,
    private readonly stats: RequestStats,
    private readonly signal: AbortSignal | undefined,
    private readonly pace?: BodyPace,
    private buffered?: Buffer,
  ) {}

  /** A response whose body was read in full (so a reset mid-body could still be retried). */
  withBufferedBody(buf: Buffer): BoundedResponse {
    return new BoundedResponse(
      this.status,
      this.headers,
      this.url,
      emptySource(),
      undefined,
      this.stats,
      this.signal,
      undefined,
      buf,
    );
  }

  get body(): AsyncIterable<Uint8Array> {
    return { [Symbol.asyncIterator]: () => this.iterate(this.maxBodyBytes)[Symbol.asyncIterator]() };
  }

  private async *iterate(limit: number | undefined): AsyncGenerator<Uint8Array> {
    if (this.consumed) throw new Error(`body of ${redactUrl(this.url)} was already read`);
    this.consumed = true;
    if (this.buffered) {
      yield this.buffered;
      return;
    }
    const declared = Number(headerValue(this.headers, 'content-length'));
    if (limit !== undefined && Number.isFinite(declared) && declared > limit) {
      discard(this.source);
      throw new LimitExceededError(
        'maxBodyBytes',
        declared,
        `${redactUrl(this.url)} declares ${declared} bytes, over the ${limit}-byte limit`,
      );
    }
    let seen = 0;
    let done = false;
    let waitedMs = 0;
    const chunks = this.source[Symbol.asyncIterator]();
    try {
      for (;;) {
        const asked = performance.now();
        const next = await chunks.next();
        waitedMs += performance.now() - asked;
        if (next.done) break;
        const chunk = next.value;
        seen += chunk.length;
        this.tooSlow(seen, waitedMs);
        this.stats.recordBytes(chunk.length);
        if (limit !== undefined && seen > limit) {
          throw new LimitExceededError(
            'maxBodyBytes',
            seen,
            `${redactUrl(this.url)} sent more than the ${limit}-byte limit`,
          );
        }
        yield chunk;
      }
      done = true;
    } catch (err) {
      throw classify(err, redactUrl(this.url), this.signal);
    } finally {
      if (!done) discard(this.source);
    }
  }

  /** Throws when the body, `seen` bytes in `waitedMs` of waiting, comes slower than the pace allows. */
  private tooSlow(seen: number, waitedMs: number): void {
    const pace = this.pace;
    if (pace === undefined || waitedMs <= pace.graceMs) return;
    const rate = (seen * 1000) / waitedMs;
    if (rate >= pace.minBytesPerSecond) return;
    throw new RetryableError(
      `${redactUrl(this.url)} sent its body at ${rate.toFixed(1)} bytes/s (${seen} bytes in ${Math.round(waitedMs / 1000)} s), under the ${pace.minBytesPerSecond} bytes/s a body may come at (http.minBodyBytesPerSecond): a server that trickles its answer`,
    );
  }

  async bytes(): Promise<Buffer> {
    if (this.buffered && !this.consumed) {
      this.consumed = true;
      return this.buffered;
    }
    const chunks: Uint8Array[] = [];
    for await (const c of this.iterate(this.maxBodyBytes ?? DEFAULT_BUFFER_LIMIT)) chunks.push(c);
    return Buffer.concat(chunks);
  }

  async text(): Promise<string> {
    return (await this.bytes()).toString('utf8');
  }

  async json(): Promise<unknown> {
    const text = await this.text();
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new CorruptInputError(`${redactUrl(this.url)} returned malformed JSON`, { cause: err });
    }
  }

  async dump(): Promise<void> {
    if (this.consumed) return;
    this.consumed = true;
    // Reading a small leftover body keeps the connection reusable; a big one is cut off instead.
    if (typeof this.source.dump === 'function') {
      try {
        await this.source.dump({ limit: SNIPPET_BYTES });
        return;
      } catch {
        // fall through to destroy
      }
    }
    discard(this.source);
  }

  /** Reads at most SNIPPET_BYTES for an error message or a 429 body. */
  async snippet(): Promise<string> {
    try {
      const chunks: Uint8Array[] = [];
      let n = 0;
      for await (const c of this.iterate(undefined)) {
        chunks.push(c);
        n += c.length;
        if (n >= SNIPPET_BYTES) break;
      }
      return Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString('utf8');
    } catch {
      return '';
    }
  }
}
