/**
 * How the HTTP layer names what went wrong: transport errors become RetryableError (or pass through
 * as the bugs they are), a 4xx becomes HttpStatusError, and `mayResend` is the one place that says
 * which failed attempts may be sent again.
 */
import { HubcrawlError, PermanentError, RetryableError } from '../core/errors.js';

export type HttpHeaders = Record<string, string | string[] | undefined>;

/** A 4xx that makes this item fail; carries the status and the start of the body for the record. */
export class HttpStatusError extends PermanentError {
  constructor(
    readonly url: string,
    status: number,
    readonly bodySnippet: string,
    readonly headers: HttpHeaders,
  ) {
    super(`${url} answered ${status}${bodySnippet ? `: ${bodySnippet.slice(0, 300)}` : ''}`, { status });
  }
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

const BUG_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_INVALID_RETURN_VALUE']);

/**
 * Failures before a connection exists (refused, no route, name not resolved, connect timeout): the
 * request cannot have reached the server. ETIMEDOUT is not here: it also ends established sockets.
 */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (err instanceof Error && err.name === 'AbortError');
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Turns a transport error into RetryableError (anything else passes through). */
export function classify(err: unknown, url: string, signal?: AbortSignal): unknown {
  if (err instanceof HubcrawlError || isAbort(err, signal)) return err;
  const code = errorCode(err);
  if (code !== undefined && RETRYABLE_CODES.has(code)) {
    return new RetryableError(`${url}: connection failed (${code})`, { cause: err });
  }
  // Other errno-style (ECONNABORTED, EHOSTUNREACH…) and undici transport codes are transient too; a
  // TypeError or an invalid-argument error is a bug, and retrying it would only hide it.
  if (
    code !== undefined &&
    (/^E[A-Z]+$/.test(code) || (code.startsWith('UND_ERR_') && !BUG_CODES.has(code)))
  ) {
    return new RetryableError(`${url}: ${err instanceof Error ? err.message : code}`, { cause: err });
  }
  return err;
}

/** A transiently failed attempt: a 5xx, a transport error before the headers, or a body cut short. */
export type FailedAttempt =
  | { kind: 'status'; status: number }
  | { kind: 'transport'; error: unknown }
  | { kind: 'body' };

/**
 * Whether a transiently failed attempt may be sent again. GET and HEAD are idempotent: every transport
 * error, 5xx and cut body retries. A POST (the Hub login) may have been acted on once it reached the
 * server, so it is sent again only when it cannot have been: the connection never opened
 * (NOT_SENT_CODES), or the server answered 503, "currently unable to handle the request" (RFC 9110
 * §15.6.4). A reset, a timeout, a 500/502/504 or a body cut short after the headers end a POST with
 * RetryableError for the caller to decide, unless the caller marked it `idempotent` (a login, which
 * done twice only issues a second token). 429s are not failures and never come here: they always wait
 * and retry, because the server refused the request (RFC 6585 §4).
 */
export function mayResend(method: string, failure: FailedAttempt, idempotent = false): boolean {
  if (method !== 'POST' || idempotent) return true;
  if (failure.kind === 'status') return failure.status === 503;
  if (failure.kind === 'body') return false;
  const code = errorCode(failure.error);
  return code !== undefined && NOT_SENT_CODES.has(code);
}
