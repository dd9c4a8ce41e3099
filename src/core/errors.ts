/**
 * The error taxonomy. Callers branch on `instanceof` or `code`, never on message text.
 * Every message is one sentence that says what happened and what to do about it.
 */

export type ErrorCode =
  | 'RATE_LIMITED'
  | 'RETRYABLE'
  | 'PERMANENT'
  | 'FATAL'
  | 'CONFIG'
  | 'BUDGET_EXHAUSTED'
  | 'HOST_UNREACHABLE'
  | 'DIGEST_MISMATCH'
  | 'UNSUPPORTED'
  | 'LIMIT_EXCEEDED'
  | 'CORRUPT_INPUT'
  | 'AUTH';

export class HubcrawlError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The server asked us to slow down: pace the host, do not count a failure. */
export class RateLimitedError extends HubcrawlError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
    options?: { cause?: unknown },
  ) {
    super('RATE_LIMITED', message, options);
  }
}

/** A transient failure (5xx, reset, timeout): worth another try after backoff. */
export class RetryableError extends HubcrawlError {
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('RETRYABLE', message, options);
    this.status = options?.status;
  }
  readonly status: number | undefined;
}

/**
 * A request that got no response at all, every retry spent. `streak`: how many requests in a row to its
 * host ended so (HttpClient's unreachable count), this one included: from the second on, the host is
 * more likely down than the request at fault (process-item.ts).
 */
export class NoResponseError extends RetryableError {
  constructor(
    message: string,
    readonly host: string,
    readonly streak: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** This item cannot succeed as it is: skip it and record why. */
export class PermanentError extends HubcrawlError {
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('PERMANENT', message, options);
    this.status = options?.status;
  }
  readonly status: number | undefined;
}

/** Bytes did not hash to the digest that names them: the content is not what it claims to be. */
export class DigestMismatchError extends HubcrawlError {
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly what: string,
  ) {
    super(
      'DIGEST_MISMATCH',
      `${what}: expected digest ${expected} but the bytes hash to ${actual}; refusing it`,
    );
  }
}

/** Content we recognise but do not handle (schema1 manifests, foreign layers…). */
export class UnsupportedError extends HubcrawlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNSUPPORTED', message, options);
  }
}

/** A configured safety limit was hit (bytes, entries, header size, depth). */
export class LimitExceededError extends HubcrawlError {
  constructor(
    readonly limit: string,
    readonly value: number,
    message: string,
  ) {
    super('LIMIT_EXCEEDED', message);
  }
}

/** Input that does not parse: truncated stream, corrupt header, malformed JSON. */
export class CorruptInputError extends HubcrawlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CORRUPT_INPUT', message, options);
  }
}

/** Credentials were refused or a token could not be obtained. */
export class AuthError extends HubcrawlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AUTH', message, options);
  }
}

/**
 * A token service refused the credential itself (401, or OAuth2 `invalid_grant`: wrong, expired or
 * revoked), or cannot take it at all (no refresh-token grant). Unlike other auth failures, asking again
 * with the same credential cannot help, and repeating a wrong password may lock the account.
 */
export class CredentialRefusedError extends AuthError {}

/** The counted-pull budget (or the registry's own remaining quota) is spent: stop cleanly, resume later. */
export class BudgetExhaustedError extends HubcrawlError {
  constructor(message: string) {
    super('BUDGET_EXHAUSTED', message);
  }
}

/**
 * A host that answered earlier stopped answering: several requests in a row ended without a response
 * after all their retries (refused, reset, timed out). No item's fault, so the run stops, resumably, instead of using
 * up every item's attempts on it and recording them as failed for good.
 */
export class HostUnreachableError extends HubcrawlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HOST_UNREACHABLE', message, options);
  }
}

/** The run cannot go on (database unwritable, disk full). */
export class FatalError extends HubcrawlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FATAL', message, options);
  }
}

/** Bad flags or config file: exit code 2. */
export class ConfigError extends HubcrawlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG', message, options);
  }
}

/** Whether a retry of the same request may succeed. */
export function isRetryable(err: unknown): boolean {
  return err instanceof RetryableError || err instanceof RateLimitedError;
}

/**
 * Errors that end a whole run (resumably) rather than fail one item: the pull budget is spent, the
 * registry rate-limits for longer than we wait, a host stops answering, or the dataset cannot be written.
 */
export function stopsTheRun(err: unknown): boolean {
  return (
    err instanceof BudgetExhaustedError ||
    err instanceof RateLimitedError ||
    err instanceof HostUnreachableError ||
    err instanceof FatalError
  );
}

/** One line for a user: the message of the error, never a stack. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
