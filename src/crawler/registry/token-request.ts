/**
 * Requests to a registry's token service. With no credential or a username and password, the
 * `GET <realm>?service=…&scope=…` of distribution docs/spec/auth/token.md (Basic auth when there is
 * a password). With an identity token, the OAuth2 refresh-token grant of docs/spec/auth/oauth.md,
 * as the docker CLI sends it: `POST <realm>` with the form fields grant_type=refresh_token,
 * refresh_token, service, scope and client_id.
 *
 * Neither form of credential travels in clear text: RegistryAuth sends one only over https or to a
 * loopback token service (`mayCarryCredentials`).
 */
import { z } from 'zod';
import { AuthError, CredentialRefusedError, PermanentError } from '../../core/errors.js';
import { isLoopbackHost } from '../../core/host.js';
import type { HttpClient, HttpRequest, HttpResponse } from '../http.js';
import { type BasicCredential, basicAuthorization } from './credential.js';

const tokenAnswerSchema = z.object({
  token: z.string().min(1).optional(),
  access_token: z.string().min(1).optional(),
  // Any number: under MIN_TOKEN_SECONDS (0 included) counts as that minimum, see issuedToken.
  expires_in: z.number().optional(),
  refresh_token: z.string().min(1).optional(),
  issued_at: z.string().optional(),
});

/** RFC 6749 §5.2 error answer; `error` is a fixed vocabulary (`invalid_grant`, …). */
const oauthErrorSchema = z.object({ error: z.string().regex(/^[a-z_]{1,40}$/) });

/**
 * Spec default when `expires_in` is omitted, and the least lifetime a token is given: token.md says a
 * token "should never be returned with less than 60 seconds to live", and the distribution client,
 * docker and containers/image raise a smaller `expires_in` (0 included) to it (minimumTokenLifetimeSeconds).
 * A token that really dies sooner is refused with a 401 and fetched again.
 */
const MIN_TOKEN_SECONDS = 60;
/** A token answer is a few kilobytes; a hostile service may send gigabytes. */
const MAX_TOKEN_ANSWER_BYTES = 1024 * 1024;

/**
 * How the grant names us. oauth.md requires a client_id but needs it registered nowhere: it is there
 * so the service's operators can tell clients apart in their audit.
 */
export const OAUTH_CLIENT_ID = 'hubcrawl';

/** What a token service asks for (realm, service) and what we ask of it (scope). */
export interface TokenQuery {
  /** The registry the token is for, as messages name it. */
  registry: string;
  realm: URL;
  service: string | undefined;
  /** One or more scopes, space-separated. */
  scope: string;
}

export interface IssuedToken {
  token: string;
  /** When to stop using it, by our clock. */
  expiresAt: number;
}

/** The challenge's realm as a URL; AuthError when it is none or not http(s). */
export function tokenRealm(registry: string, realm: string): URL {
  let url: URL;
  try {
    url = new URL(realm);
  } catch (err) {
    throw new AuthError(`${registry} sent an invalid token realm "${realm.slice(0, 200)}"`, { cause: err });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new AuthError(`token realm ${url.href} is not an http(s) URL`);
  }
  return url;
}

/** Credentials never travel in clear text, except to a loopback token service (tests, local mirrors). */
export function mayCarryCredentials(realm: URL): boolean {
  return realm.protocol === 'https:' || isLoopbackHost(realm.host);
}

/** The token GET, anonymous or with a username and password. */
export async function getToken(
  http: HttpClient,
  q: TokenQuery,
  credential: BasicCredential | undefined,
  now: () => number,
): Promise<IssuedToken> {
  const url = new URL(q.realm);
  if (q.service) url.searchParams.set('service', q.service);
  for (const s of q.scope.split(' ').filter(Boolean)) url.searchParams.append('scope', s);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (credential) headers.authorization = basicAuthorization(credential);
  const startedAt = now();
  const res = await send(http, q, { url, headers });
  if (res.status === 401 && challengesForBearer(res)) {
    // Its own Bearer challenge: the realm is a registry (the registry itself, often), not a token service.
    // Calling that a refused password would send the user to credentials no one can fix this with.
    throw new AuthError(
      `the token realm ${url.origin}${url.pathname} that ${q.registry} names answered 401 with a Bearer challenge of its own: it is a registry, not a token service, so no credentials can get a token there; check the registry address, or ask its operator to point the realm at its token service`,
    );
  }
  if (res.status === 401 && credential) {
    throw new CredentialRefusedError(
      `token service ${url.origin} refused the username and password for ${q.registry}; check the ` +
        `credentials configured for it (HUBCRAWL_REGISTRY_* or HUBCRAWL_DOCKERHUB_*, registries.<host> in ` +
        `the config file, or the docker login / credential helper of the Docker config)`,
    );
  }
  if (res.status === 401)
    throw new AuthError(`token service ${url.origin} refused an anonymous token for ${q.scope}`);
  if (res.status !== 200)
    throw new AuthError(`token service ${url.origin} answered ${res.status} for ${q.scope}`);
  return issuedToken(tokenAnswer(q, await res.json()), startedAt);
}

/** Whether a 401 asks for a Bearer token (RFC 6750), as a registry's does and a token service's never should. */
function challengesForBearer(res: HttpResponse): boolean {
  const header = res.headers['www-authenticate'];
  return [header ?? []].flat().some((h) => /^\s*bearer(\s|$)/i.test(h));
}

/**
 * The OAuth2 refresh-token grant with an identity token. A refusal (401, or 400 `invalid_grant`)
 * means the token expired or was revoked: only a new `docker login` mends that. `rotated` is the new
 * refresh token a service that rotates them hands out with the access token; later grants must send it.
 */
export async function refreshGrant(
  http: HttpClient,
  q: TokenQuery,
  identityToken: string,
  now: () => number,
): Promise<IssuedToken & { rotated?: string }> {
  const form = new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: identityToken,
    client_id: OAUTH_CLIENT_ID,
  });
  if (q.service) form.set('service', q.service);
  // oauth.md: one scope parameter holding the space-separated list.
  if (q.scope) form.set('scope', q.scope);
  const headers = { accept: 'application/json' };
  const startedAt = now();
  // 400 carries the OAuth2 error code; 404 and 405 mean a service without the grant. Both are named below.
  const res = await send(http, q, {
    method: 'POST',
    url: q.realm,
    form,
    headers,
    passStatuses: [400, 404, 405],
  });
  const origin = q.realm.origin;
  if (res.status === 200) {
    const answer = tokenAnswer(q, await res.json());
    const issued = issuedToken(answer, startedAt);
    const rotated = answer.refresh_token;
    return rotated !== undefined && rotated !== identityToken ? { ...issued, rotated } : issued;
  }
  const error =
    res.status === 400 ? oauthErrorSchema.safeParse(await res.json().catch(() => null)) : undefined;
  const code = error?.success ? error.data.error : undefined;
  if (res.status === 401 || code === 'invalid_grant') {
    // The refresh token is never quoted: not here, and the HTTP layer quotes no POST's answer.
    throw new CredentialRefusedError(
      `token service ${origin} refused the identity token for ${q.registry} (expired or revoked); ` +
        `run \`docker login ${q.registry}\` again, or give a username and password for it`,
    );
  }
  if (res.status === 404 || res.status === 405) {
    throw new CredentialRefusedError(
      `token service ${origin} does not take the OAuth2 refresh-token grant (POST answered ${res.status}), ` +
        `so the identity token from docker login cannot be used; give a username and password for ${q.registry}`,
    );
  }
  throw new AuthError(
    `token service ${origin} answered ${res.status}${code ? ` (${code})` : ''} to the identity token for ${q.scope}`,
  );
}

/** Sends a token request; a 4xx the caller did not expect becomes an AuthError naming the scope. */
async function send(http: HttpClient, q: TokenQuery, req: HttpRequest): Promise<HttpResponse> {
  try {
    return await http.request({ ...req, buffer: true, maxBodyBytes: MAX_TOKEN_ANSWER_BYTES });
  } catch (err) {
    if (err instanceof PermanentError) {
      throw new AuthError(`token service ${q.realm.origin} refused ${q.scope}: ${err.message}`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** A 200 answer checked: its fields, with the token under either name the spec allows. */
function tokenAnswer(q: TokenQuery, body: unknown): z.output<typeof tokenAnswerSchema> & { token: string } {
  // An OAuth2 answer may hand out a new refresh token too: refreshGrant passes it on to RegistryAuth,
  // which sends it from then on (in memory only; the Docker config is never written).
  const parsed = tokenAnswerSchema.safeParse(body);
  const token = parsed.success ? (parsed.data.token ?? parsed.data.access_token) : undefined;
  if (!parsed.success || !token)
    throw new AuthError(`token service ${q.realm.origin} returned no token for ${q.scope}`);
  // It goes into an Authorization header: a line break or a byte outside visible ASCII could not be sent
  // (and must never be, as a line break would start another header).
  if (!/^[\x21-\x7e]+$/.test(token))
    throw new AuthError(
      `token service ${q.realm.origin} returned a token for ${q.scope} that is not a header value (it holds a space, a line break or a byte outside visible ASCII); the token service, or a proxy in front of it, is broken`,
    );
  return { ...parsed.data, token };
}

/** The token of a checked answer and how long to use it. */
function issuedToken(
  answer: { token: string; expires_in?: number | undefined },
  startedAt: number,
): IssuedToken {
  const given = answer.expires_in ?? MIN_TOKEN_SECONDS;
  const seconds = Number.isFinite(given) && given >= MIN_TOKEN_SECONDS ? given : MIN_TOKEN_SECONDS;
  // Lifetime counted from our own clock (issued_at is the server's and may be skewed); refresh early
  // by a fifth of the lifetime, at most 30 s, so a token never expires in flight.
  const early = Math.min(30_000, (seconds * 1000) / 5);
  return { token: answer.token, expiresAt: startedAt + seconds * 1000 - early };
}
