/**
 * One registry credential, in the two forms `docker login` leaves: a username and password, or an
 * identity token. Its secret stays out of JSON, util.inspect and template strings, so a credential that
 * reaches a log line or an error's cause prints redacted.
 */
import { inspect } from 'node:util';

/** A username and password (or an access token used as one): Basic auth, or the token service's GET. */
export interface BasicCredential {
  readonly kind: 'basic';
  readonly username: string;
  readonly password: string;
}

/**
 * An identity token: the OAuth2 refresh token a registry's token service handed to `docker login`.
 * Only that token service can use it (refresh-token grant, registry/token-request.ts); it is no password.
 */
export interface IdentityTokenCredential {
  readonly kind: 'identity-token';
  /** The account it was issued to, when the config says (a helper's `<token>` answer does not). */
  readonly username: string | undefined;
  readonly identityToken: string;
}

export type Credential = BasicCredential | IdentityTokenCredential;

/** Hides `secretKey` of the credential from JSON, util.inspect and template strings, and freezes it. */
function seal(
  visible: { kind: Credential['kind']; username: string | undefined },
  secretKey: 'password' | 'identityToken',
  secret: string,
): unknown {
  const cred = { ...visible };
  Object.defineProperty(cred, secretKey, { value: secret, enumerable: false });
  const redacted = () => ({ ...visible, [secretKey]: '[redacted]' });
  Object.defineProperty(cred, 'toJSON', { value: redacted, enumerable: false });
  Object.defineProperty(cred, inspect.custom, { value: () => redacted(), enumerable: false });
  const who = visible.username ?? visible.kind;
  Object.defineProperty(cred, 'toString', { value: () => `${who}:[redacted]`, enumerable: false });
  return Object.freeze(cred);
}

/** A sealed username and password. */
export function basicCredential(username: string, password: string): BasicCredential {
  return seal({ kind: 'basic', username }, 'password', password) as BasicCredential;
}

/** A sealed identity token; `username` names the account when the config does. */
export function identityTokenCredential(
  identityToken: string,
  username: string | undefined,
): IdentityTokenCredential {
  return seal(
    { kind: 'identity-token', username },
    'identityToken',
    identityToken,
  ) as IdentityTokenCredential;
}

/** The `Authorization` value of Basic auth (RFC 7617). */
export function basicAuthorization(cred: BasicCredential): string {
  return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
}
