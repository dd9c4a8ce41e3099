/**
 * The OAuth2 side of the test token service (distribution docs/spec/auth/oauth.md), as a real token
 * server does it: `POST /token` with a form body. `grant_type=password` with `access_type=offline`
 * is how `docker login` obtains an identity token (a refresh token); `grant_type=refresh_token` is how
 * a client later trades that token for access tokens. Also the client half of that login, so tests
 * get an identity token the way Docker does rather than by reaching into the service.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A token request's form is a few hundred bytes. */
const MAX_FORM_BYTES = 64 * 1024;

/** What the service knows when it decides a grant. */
export interface GrantContext {
  service: string;
  username: string;
  password: string;
  /** Refresh tokens issued so far, each to its user. */
  refreshTokens: Map<string, string>;
}

/** A grant the service makes: the user the access token is for, and a refresh token when one was asked for. */
export interface Granted {
  subject: string;
  refreshToken?: string;
}

/** A refusal, in RFC 6749 §5.2 form. */
export interface Refused {
  status: number;
  body: { error: string; error_description: string };
}

const refuse = (status: number, error: string, description: string): Refused => ({
  status,
  body: { error, error_description: description },
});

/** The form of a POST, or undefined when it is not `application/x-www-form-urlencoded` (or too large). */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return undefined;
    chunks.push(chunk);
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return undefined;
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Decides an OAuth2 token request (oauth.md "Getting a token"). */
export function decideGrant(form: URLSearchParams, ctx: GrantContext): Granted | Refused {
  // oauth.md makes grant_type, service and client_id required.
  if (!form.get('client_id')) return refuse(400, 'invalid_request', 'client_id is required');
  if (form.get('service') !== ctx.service) return refuse(400, 'invalid_request', 'unknown service');
  const grant = form.get('grant_type');
  if (grant === 'password') {
    if (form.get('username') !== ctx.username || form.get('password') !== ctx.password) {
      return refuse(401, 'invalid_grant', 'incorrect username or password');
    }
    if (form.get('access_type') !== 'offline') return { subject: ctx.username };
    const refreshToken = randomBytes(24).toString('base64url');
    ctx.refreshTokens.set(refreshToken, ctx.username);
    return { subject: ctx.username, refreshToken };
  }
  if (grant === 'refresh_token') {
    const subject = ctx.refreshTokens.get(form.get('refresh_token') ?? '');
    // 401, as Docker's token server answers an unknown or revoked refresh token.
    if (subject === undefined) return refuse(401, 'invalid_grant', 'unknown or revoked refresh token');
    return { subject };
  }
  return refuse(400, 'unsupported_grant_type', `grant_type ${grant ?? '(none)'} is not supported`);
}

/**
 * What `docker login` does against a token service that issues identity tokens: the password grant
 * with `access_type=offline`, keeping the refresh token it answers with.
 */
export async function loginForIdentityToken(opts: {
  realm: string;
  service: string;
  username: string;
  password: string;
}): Promise<string> {
  const res = await fetch(opts.realm, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password',
      username: opts.username,
      password: opts.password,
      service: opts.service,
      client_id: 'hubcrawl-tests',
      access_type: 'offline',
    }),
  });
  const body = (await res.json()) as { refresh_token?: string };
  if (res.status !== 200 || !body.refresh_token) {
    throw new Error(`${opts.realm} issued no identity token (status ${res.status})`);
  }
  return body.refresh_token;
}
