/**
 * How the HTTP layer names what went wrong: transport errors become RetryableError (or pass through
 * as the bugs they are), a 4xx becomes HttpStatusError, and `mayResend` is the one place that says
 * which failed attempts may be sent again.
 */
import { z } from 'zod';
import { HubcrawlError, PermanentError, RetryableError } from '../core/errors.js';

export type HttpHeaders = Record<string, string | string[] | undefined>;

/** The error envelope of the registry API (distribution-spec, "Error Codes"): `{"errors":[{"code":…}]}`. */
const registryErrorBody = z
  .object({
    errors: z.array(
      z.object({ code: z.string(), message: z.string().optional().catch(undefined) }).passthrough(),
    ),
  })
  .passthrough();

/** The registry's errors in `body`, if it is the registry's envelope. */
function registryErrors(body: string): Array<{ code: string; message?: string | undefined }> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return [];
  }
  const parsed = registryErrorBody.safeParse(json);
  return parsed.success ? parsed.data.errors : [];
}

/**
 * The body as a message says it: the registry's codes with their messages (`NAME_UNKNOWN (repository name
 * not known to registry)`) rather than its JSON, an HTML page by its title (a web server or proxy answered,
 * and its markup would bury the message), else the start of the text.
 */
export function describeBody(body: string): string {
  const errors = registryErrors(body);
  if (errors.length > 0) {
    return errors
      .map((e) => (e.message ? `${e.code} (${e.message})` : e.code))
      .join(', ')
      .slice(0, 300);
  }
  return htmlPage(body) ?? body.trim().slice(0, 300);
}

/** An HTML page's description by its title; undefined for a body that is no HTML page. */
function htmlPage(body: string): string | undefined {
  // A page may open with an XML declaration or comments before its first tag (XHTML, generated pages).
  const opening =
    /^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*)*<(?:!doctype\s+html|html|head|body)[\s>]/i;
  if (!opening.test(body)) return undefined;
  const raw = /<title[^>]*>([^<]*)/i.exec(body)?.[1] ?? '';
  const title = decodeEntities(raw).replace(/\s+/g, ' ').trim();
  return `an HTML page${title ? ` titled "${title.slice(0, 100)}"` : ''}, not a registry API answer`;
}

/** The entities error pages' titles use: `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`, `&#NN;`, `&#xNN;`. */
function decodeEntities(text: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };
  return text.replace(/&(?:#(\d{1,7})|#x([0-9a-f]{1,6})|(\w+));/gi, (whole, dec, hex, name) => {
    if (name !== undefined) return named[(name as string).toLowerCase()] ?? whole;
    const code = dec !== undefined ? Number(dec) : Number.parseInt(hex as string, 16);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

/** A 4xx that makes this item fail; carries the status and the start of the body for the record. */
export class HttpStatusError extends PermanentError {
  constructor(
    readonly url: string,
    status: number,
    readonly bodySnippet: string,
    readonly headers: HttpHeaders,
  ) {
    const body = describeBody(bodySnippet);
    super(`${url} answered ${status}${body ? `: ${body}` : ''}`, { status });
  }

  /** The registry's error codes in the body (`NAME_UNKNOWN`…); none when it is not the registry's envelope. */
  registryCodes(): string[] {
    return registryErrors(this.bodySnippet).map((e) => e.code);
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

/** Certificate verification failures (Node's tls codes): the same certificate fails every retry. */
const CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A TLS failure that retrying cannot mend, said in words instead of OpenSSL's: a handshake the server
 * did not understand (most often a plain-HTTP registry asked over https), or a certificate that is not
 * trusted. Null for anything else.
 */
function tlsFailure(err: unknown, url: string, code: string | undefined): PermanentError | null {
  const host = URL.canParse(url) ? new URL(url).host : url;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return new PermanentError(
      `${url}: the TLS handshake with ${host} failed (${code}); the server may speak plain HTTP: if so, set scheme: http for "${host}" under registries in the config file`,
      { cause: err },
    );
  }
  if (code !== undefined && CERT_CODES.has(code)) {
    return new PermanentError(
      `${url}: the TLS certificate of ${host} is not trusted (${code}); hubcrawl never skips verification: add its CA with NODE_EXTRA_CA_CERTS=ca.pem`,
      { cause: err },
    );
  }
  return null;
}

/** Turns a transport error into RetryableError, or PermanentError for a TLS failure (anything else passes through). */
export function classify(err: unknown, url: string, signal?: AbortSignal): unknown {
  if (err instanceof HubcrawlError || isAbort(err, signal)) return err;
  const code = errorCode(err);
  const tls = tlsFailure(err, url, code);
  if (tls) return tls;
  const reason = transportReason(err);
  if (reason !== undefined) return new RetryableError(`${url}: ${reason}`, { cause: err });
  return err;
}

/**
 * What a transient transport error says without its URL (`connection failed (ECONNREFUSED)`, `getaddrinfo
 * ENOTFOUND registry-1.docker.io`), for messages that name the request themselves; undefined for an error
 * that is no transient transport error.
 */
export function transportReason(err: unknown): string | undefined {
  const code = errorCode(err);
  if (code === undefined) return undefined;
  if (RETRYABLE_CODES.has(code)) return `connection failed (${code})`;
  // Other errno-style (ECONNABORTED, EHOSTUNREACH…) and undici transport codes are transient too; a
  // TypeError or an invalid-argument error is a bug, and retrying it would only hide it.
  if (/^E[A-Z]+$/.test(code) || (code.startsWith('UND_ERR_') && !BUG_CODES.has(code))) {
    return err instanceof Error ? err.message : code;
  }
  return undefined;
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
