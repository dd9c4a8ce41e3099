import { PermanentError } from '../../core/errors.js';
import { HUB_CREDENTIAL_ENV } from './auth.js';

/** The Hub's exact 403 message for anonymous paging past its offset cap (docker-hub-api.md §1.7). */
export const OFFSET_CAP_MESSAGE = 'pagination offset too large';

/** How to lift the anonymous offset cap, for messages that end in "to …". */
export const SIGN_IN_ADVICE =
  `set ${HUB_CREDENTIAL_ENV.username} and ${HUB_CREDENTIAL_ENV.token} ` +
  '(a read-only personal access token), or docker login,';

/**
 * Docker Hub refused to page further (`403 pagination offset too large for anonymous requests`).
 * Tag listings catch it to go on with the registry's `tags/list`; search and namespace listings,
 * which have no other source, end with an `offset-cap` event. A personal access token lifts the
 * cap. The message names no fallback: it is thrown by whichever listing met the cap.
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
            '(pagination offset too large); check that the token is valid'
        : `Docker Hub refuses anonymous paging past item ${offset} at ${url} (pagination offset too large); ` +
            `${SIGN_IN_ADVICE} to page further`,
      { ...options, status: 403 },
    );
  }
}

/** True for a 404: the route does not exist here (an older mirror) or there is no such object. */
export function isNotFound(err: unknown): boolean {
  return err instanceof PermanentError && err.status === 404;
}
