/**
 * Blob streaming: `GET /v2/<name>/blobs/<digest>`, following redirects by hand so the Authorization
 * header never leaves the registry's origin (Docker Hub answers 307 to a signed CDN URL, §2.7),
 * hashing the bytes as they pass, and resuming with `Range` after a connection drops mid-body.
 * Nothing is buffered beyond one chunk.
 */
import { type Digest, DigestVerifier } from '../../core/digest.js';
import { LimitExceededError, PermanentError, RetryableError } from '../../core/errors.js';
import { redactUrl } from '../../core/url.js';
import type { HttpResponse } from '../http.js';
import { headerValue } from '../rate-limit.js';
import { pullScope } from './auth.js';
import type { RegistryTransport } from './transport.js';

export interface OpenBlobOptions {
  /** Stop with LimitExceededError past this many bytes. */
  maxBytes?: number;
  /** The setting maxBytes comes from, named in the error so the user knows what to raise. Default 'maxBytes'. */
  maxBytesSetting?: string;
  /** Redirect hops allowed per request. Default 5. */
  maxRedirects?: number;
  /** Times a dropped body is resumed with Range. Default 3. */
  maxResumes?: number;
  /**
   * The size the manifest's descriptor gives, if known. A body that ends short of it without any error
   * (a close-delimited body has no length to check) is asked for the rest with Range, as a dropped one
   * is; the digest, not this size, decides whether the bytes are the blob (a descriptor may lie).
   */
  size?: number | null;
  signal?: AbortSignal;
  /**
   * false: the caller checks the digest of the bytes it reads, and this stream does not hash them a
   * second time. The layer handler does so: analyzeLayer verifies a zstd layer's digest on a worker
   * thread, where this stream would hash every byte on the main thread. Default true.
   */
  verify?: boolean;
}

/** `bytes 100-199/200` → 100. */
function rangeStart(contentRange: string | undefined): number | undefined {
  const m = /^\s*bytes\s+(\d+)-/i.exec(contentRange ?? '');
  return m ? Number(m[1]) : undefined;
}

/** The answer to a blob GET, and the hop that gave it (the registry's URL, or where it redirected). */
interface BlobAnswer {
  res: HttpResponse;
  /** The URL that answered: after a redirect, another host (a CDN, an object store). */
  from: URL;
}

/**
 * GETs the blob from `offset`, following redirects; Authorization goes only to the registry's origin.
 * Every URL in a message is redacted: a redirect target is typically pre-signed (S3's `X-Amz-Signature`,
 * Docker Hub's CDN `verify=`), and messages end up in the dataset, the log and exports.
 */
async function fetchBlob(
  t: RegistryTransport,
  first: URL,
  scope: string,
  offset: number,
  opts: OpenBlobOptions,
): Promise<BlobAnswer> {
  const maxRedirects = opts.maxRedirects ?? 5;
  const seen = new Set<string>([first.href]);
  let url = first;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { accept: '*/*' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    // A resume past the blob's end answers 416: an answer the caller reads, not a failed request.
    const req = {
      url,
      headers,
      ...(offset > 0 ? { passStatuses: [416] } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    };
    const res = url.origin === t.baseUrl.origin ? await t.send(req, scope) : await t.http.request(req);
    if (res.status < 300 || res.status >= 400) return { res, from: url };
    await res.dump();
    const location = headerValue(res.headers, 'location');
    // A broken redirect is the server's fault, not the blob's: PermanentError, so another repository
    // holding the same digest still gets its try (src/pipeline/fallback.ts).
    if (!location) throw new PermanentError(`${redactUrl(url)} answered ${res.status} without a Location`);
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      // No cause: the URL parser's error quotes the Location, signature and all.
      throw new PermanentError(`${redactUrl(url)} redirected to an invalid URL (${redactUrl(location)})`);
    }
    if (next.protocol !== 'https:' && next.protocol !== 'http:') {
      throw new PermanentError(`${redactUrl(url)} redirected to a non-HTTP URL (${next.protocol})`);
    }
    if (seen.has(next.href)) {
      throw new PermanentError(
        `redirect loop fetching ${redactUrl(first)}: ${redactUrl(next)} was already visited`,
      );
    }
    if (hop + 1 > maxRedirects) {
      throw new PermanentError(`${redactUrl(first)} redirected more than ${maxRedirects} times; giving up`);
    }
    seen.add(next.href);
    url = next;
  }
}

/** Why the first answer is not the blob: a redirect target's refusal is that host's, not the registry's. */
function notBlob(url: URL, answer: BlobAnswer): PermanentError {
  const { res, from } = answer;
  if (from.origin === url.origin) {
    return new PermanentError(`${redactUrl(url)} answered ${res.status} where blob bytes were expected`, {
      status: res.status,
    });
  }
  // A refusal there is the redirect target's, and no registry credential mends it: that host gets no
  // Authorization from us (it goes only to the registry's origin). A signed URL may have expired.
  const refused =
    res.status === 401 || res.status === 403
      ? `: the redirect target ${from.host} refused the download, not the registry`
      : '';
  return new PermanentError(
    `${redactUrl(url)} redirected to ${redactUrl(from)}, which answered ${res.status} where blob bytes ` +
      `were expected${refused}`,
    { status: res.status },
  );
}

/**
 * Opens a verified stream of a blob; the iterator throws DigestMismatchError at the end on a mismatch
 * (unless `opts.verify` is false: then the caller verifies).
 */
export async function openBlob(
  t: RegistryTransport,
  repository: string,
  digest: Digest,
  opts: OpenBlobOptions = {},
): Promise<AsyncIterable<Uint8Array>> {
  const url = new URL(`/v2/${repository}/blobs/${digest}`, t.baseUrl);
  const scope = pullScope(repository);
  const what = `blob ${t.registry}/${repository}@${digest}`;
  const answer = await fetchBlob(t, url, scope, 0, opts);
  const first = answer.res;
  if (first.status !== 200) {
    await first.dump();
    throw notBlob(url, answer);
  }
  const declared = Number(headerValue(first.headers, 'content-length'));
  if (opts.maxBytes !== undefined && Number.isFinite(declared) && declared > opts.maxBytes) {
    await first.dump();
    const setting = opts.maxBytesSetting ?? 'maxBytes';
    throw new LimitExceededError(
      setting,
      declared,
      `${what} is ${declared} bytes, more than ${setting} (${opts.maxBytes} bytes)`,
    );
  }
  let used = false;
  return {
    [Symbol.asyncIterator]: () => {
      if (used) throw new Error(`${what} stream was already read`);
      used = true;
      return stream(t, url, scope, first, digest, what, opts)[Symbol.asyncIterator]();
    },
  };
}

async function* stream(
  t: RegistryTransport,
  url: URL,
  scope: string,
  first: HttpResponse,
  digest: Digest,
  what: string,
  opts: OpenBlobOptions,
): AsyncGenerator<Uint8Array> {
  const verifier = opts.verify === false ? null : new DigestVerifier(digest, what);
  const maxResumes = opts.maxResumes ?? 3;
  let res = first;
  let received = 0;
  let resumes = 0;
  // The rest of the blob from byte `received`, or a 416's word on its length (`Content-Range: bytes */N`,
  // null when it gives none) when the registry has nothing past `received`.
  const resume = async (): Promise<HttpResponse | { length: number | null }> => {
    resumes += 1;
    const rest = (await fetchBlob(t, url, scope, received, opts)).res;
    if (rest.status === 416) {
      const length = /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(headerValue(rest.headers, 'content-range') ?? '');
      await rest.dump();
      return { length: length ? Number(length[1]) : null };
    }
    if (rest.status !== 200 && rest.status !== 206) {
      await rest.dump();
      throw new RetryableError(`${what}: resume answered ${rest.status}`, { status: rest.status });
    }
    return rest;
  };
  for (;;) {
    // After a resume a 206 starts where its Content-Range says; a 200 ignored the Range and restarts at 0.
    const start = res.status === 206 ? rangeStart(headerValue(res.headers, 'content-range')) : 0;
    if (start === undefined || start > received) {
      await res.dump();
      // The server answered the resume wrongly; the bytes may be fine, and a fresh download may succeed.
      throw new RetryableError(`${what}: resumed response does not continue at byte ${received}`);
    }
    let skip = received - start;
    try {
      for await (const chunk of res.body) {
        let c = chunk;
        if (skip > 0) {
          if (c.length <= skip) {
            skip -= c.length;
            continue;
          }
          c = c.subarray(skip);
          skip = 0;
        }
        received += c.length;
        if (opts.maxBytes !== undefined && received > opts.maxBytes) {
          const setting = opts.maxBytesSetting ?? 'maxBytes';
          throw new LimitExceededError(
            setting,
            received,
            `${what} sent more than ${setting} (${opts.maxBytes} bytes)`,
          );
        }
        verifier?.update(c);
        yield c;
      }
      if (opts.size == null || received >= opts.size || resumes >= maxResumes) break;
      // Ended short of the descriptor's size with no error: a connection closed early. Ask for the rest;
      // a registry that has none (416: the descriptor's size is wrong) ends the blob here, the digest
      // deciding whether it is whole.
      const rest = await resume();
      if ('length' in rest) break;
      res = rest;
    } catch (err) {
      if (!(err instanceof RetryableError) || resumes >= maxResumes) throw err;
      // Dropped mid-body, or after its last byte (a chunked body cut before its end). A 416 ends the blob
      // only where the bytes are all there: its Content-Range gives the length received, or (none given)
      // the descriptor's size is reached. Otherwise the registry erred, and a new download may mend it:
      // ended here, the digest would call a truncated download a mismatch, a fault of the content.
      const rest = await resume();
      if (!('length' in rest)) {
        res = rest;
        continue;
      }
      const whole =
        rest.length !== null ? rest.length === received : opts.size != null && received >= opts.size;
      if (whole) break;
      const length = rest.length ?? opts.size;
      throw new RetryableError(
        `${what}: resume at byte ${received}${length != null ? ` of ${length}` : ''} answered 416`,
        { status: 416 },
      );
    }
  }
  verifier?.verify();
}
