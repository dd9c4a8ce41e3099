import { PermanentError } from '../../core/errors.js';
import { HUB_CREDENTIAL_ENV } from './auth.js';

/** The Hub's exact 403 message for anonymous paging past its offset cap (docker-hub-api.md §1.7). */
export const OFFSET_CAP_MESSAGE = 'pagination offset too large';

/**
 * Docker Hub refused to page further (`403 pagination offset too large for anonymous requests`).
 * The caller catches it to fall back to the registry's `tags/list` for the rest of the tags;
 * a personal access token lifts the cap.
 */
export class HubOffsetCapError extends PermanentError {
  constructor(
    readonly url: string,
    /** Items already delivered before the refusal (the fallback only needs the rest). */
    readonly offset: number,
    readonly authenticated: boolean,
    options?: { cause?: unknown },
  ) {
    super(
      authenticated
        ? `Docker Hub refused to page past item ${offset} at ${url} although we signed in ` +
            '(pagination offset too large); check that the token is valid, or fall back to the registry tags/list'
        : `Docker Hub refuses anonymous paging past item ${offset} at ${url} (pagination offset too large); ` +
            `set ${HUB_CREDENTIAL_ENV.username} and ${HUB_CREDENTIAL_ENV.token} (a read-only personal access token), or docker login, ` +
            "to page further; the registry's tags/list still lists the remaining tag names",
      { ...options, status: 403 },
    );
  }
}

/** True for a 404: the route does not exist here (an older mirror) or there is no such object. */
export function isNotFound(err: unknown): boolean {
  return err instanceof PermanentError && err.status === 404;
}
