/**
 * How the HTTP layer names what went wrong: transport errors become RetryableError (or pass through
 * as the bugs they are), and a 4xx becomes HttpStatusError.
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
