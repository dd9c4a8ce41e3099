/**
 * Registry authentication (distribution docs/spec/auth/token.md): probe, read the 401 challenge,
 * fetch a Bearer token for the scope (anonymous, or with Basic credentials), cache it per
 * (realm, service, scope) until `expires_in` runs out, and refresh it on a 401. Basic-only
 * registries get the Basic header directly.
 */
import { z } from 'zod';
import { AuthError, PermanentError } from '../../core/errors.js';
import type { HttpClient, HttpHeaders } from '../http.js';
import type { CredentialStore } from './credentials.js';
import { isLoopbackHost } from './reference.js';

export interface Challenge {
  /** Lowercased scheme: `bearer`, `basic`, … */
  scheme: string;
  /** Parameter names lowercased; values unquoted. */
  params: Record<string, string>;
}

/**
 * Parses `WWW-Authenticate` (RFC 9110 §11.6.1): one or more challenges, each a scheme followed by
 * comma-separated `name=value` pairs whose quoted values may hold commas (`scope="repo:a:pull,push"`).
 */
export function parseWwwAuthenticate(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const texts = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const text of texts) {
    let i = 0;
    let current: Challenge | undefined;
    const n = text.length;
    const skip = (re: RegExp) => {
      while (i < n && re.test(text[i]!)) i++;
    };
    while (i < n) {
      skip(/[\s,]/);
      const tokStart = i;
      skip(/[^\s,=]/);
      const token = text.slice(tokStart, i);
      if (token === '') break;
      skip(/\s/);
      if (text[i] === '=' && current) {
        i++;
        skip(/\s/);
        let value = '';
        if (text[i] === '"') {
          i++;
          while (i < n && text[i] !== '"') {
            if (text[i] === '\\' && i + 1 < n) i++;
            value += text[i];
            i++;
          }
          i++;
        } else {
          const vStart = i;
          skip(/[^\s,]/);
          value = text.slice(vStart, i);
        }
        current.params[token.toLowerCase()] = value;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}

const tokenResponseSchema = z.object({
  token: z.string().min(1).optional(),
  access_token: z.string().min(1).optional(),
  expires_in: z.number().positive().optional(),
  issued_at: z.string().optional(),
});

/** Spec default when `expires_in` is omitted. */
const DEFAULT_TOKEN_SECONDS = 60;

interface CachedToken {
  token: string;
  expiresAt: number;
}

type Known = { scheme: 'bearer'; realm: string; service: string | undefined } | { scheme: 'basic' };

export interface RegistryAuthOptions {
  http: HttpClient;
  registry: string;
  credentials?: CredentialStore | undefined;
  now?: () => number;
}

function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

const MAX_CACHED_TOKENS = 256;

/** Auth state for one registry: its challenge once seen, and the token cache. */
export class RegistryAuth {
  /** Requests made to token services (for stats and tests). */
  tokenRequests = 0;
  private known: Known | undefined;
  private readonly cache = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  private readonly now: () => number;

  constructor(private readonly opts: RegistryAuthOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** The Authorization header to send with a request needing `scope`; undefined before any challenge. */
  async headerFor(scope: string): Promise<string | undefined> {
    const known = this.known;
    if (!known) return undefined;
    if (known.scheme === 'basic') {
      const cred = this.opts.credentials?.get(this.opts.registry);
      return cred ? basicHeader(cred.username, cred.password) : undefined;
    }
    const t = await this.token(known.realm, known.service, scope, undefined);
    return `Bearer ${t.token}`;
  }

  /**
   * Handles a 401: learns the challenge and returns the header to retry with. `sent` is the header the
   * refused request carried; a refused cached token is dropped and fetched again.
   */
  async onUnauthorized(headers: HttpHeaders, scope: string, sent: string | undefined): Promise<string> {
    const challenges = parseWwwAuthenticate(headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      const realm = bearer.params.realm;
      if (!realm) throw new AuthError(`${this.opts.registry} sent a Bearer challenge without a realm`);
      const service = bearer.params.service;
      this.known = { scheme: 'bearer', realm, service };
      const wanted = bearer.params.scope ?? scope;
      const refused = sent?.startsWith('Bearer ') ? sent.slice('Bearer '.length) : undefined;
      // A token for exactly this scope that is still too weak will not get stronger by asking again
      // (Docker Hub answers _catalog this way: it has no catalog).
      if (refused !== undefined && bearer.params.error === 'insufficient_scope') {
        throw new AuthError(
          `${this.opts.registry} does not grant ${bearer.params.scope ?? scope} (insufficient_scope)`,
        );
      }
      const t = await this.token(realm, service, wanted, refused);
      return `Bearer ${t.token}`;
    }
    if (basic) {
      this.known = { scheme: 'basic' };
      const cred = this.opts.credentials?.get(this.opts.registry);
      if (!cred)
        throw new AuthError(
          `${this.opts.registry} requires credentials (Basic auth) and none are configured`,
        );
      if (sent?.startsWith('Basic '))
        throw new AuthError(`${this.opts.registry} refused the configured credentials`);
      return basicHeader(cred.username, cred.password);
    }
    throw new AuthError(`${this.opts.registry} answered 401 without a Bearer or Basic challenge`);
  }

  /** A cached token for the scope, or a fresh one; `refused` is a token the registry just rejected. */
  private async token(
    realm: string,
    service: string | undefined,
    scope: string,
    refused: string | undefined,
  ): Promise<CachedToken> {
    const key = `${realm}\n${service ?? ''}\n${scope}`;
    const cached = this.cache.get(key);
    // Another request may have replaced the refused token already: use that one rather than fetch again.
    if (cached && cached.token !== refused && cached.expiresAt > this.now()) return cached;
    this.cache.delete(key);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(realm, service, scope).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const t = await p;
    this.cache.set(key, t);
    this.pruneExpired();
    return t;
  }

  /**
   * Tokens are per repository scope, so a namespace or catalog crawl meets thousands of scopes: once the
   * cache is larger than any one moment needs, expired tokens are dropped.
   */
  private pruneExpired(): void {
    if (this.cache.size <= MAX_CACHED_TOKENS) return;
    const now = this.now();
    for (const [k, v] of this.cache) if (v.expiresAt <= now) this.cache.delete(k);
  }

  private async fetchToken(realm: string, service: string | undefined, scope: string): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch (err) {
      throw new AuthError(`${this.opts.registry} sent an invalid token realm "${realm.slice(0, 200)}"`, {
        cause: err,
      });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new AuthError(`token realm ${url.href} is not an http(s) URL`);
    }
    if (service) url.searchParams.set('service', service);
    for (const s of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    const cred = this.opts.credentials?.get(this.opts.registry);
    // Credentials never travel in clear text except to a loopback token service (tests, local mirrors).
    if (cred && (url.protocol === 'https:' || isLoopbackHost(url.host))) {
      headers.authorization = basicHeader(cred.username, cred.password);
    }
    const startedAt = this.now();
    this.tokenRequests += 1;
    let body: unknown;
    try {
      const res = await this.opts.http.request({ url, headers, buffer: true, maxBodyBytes: 1024 * 1024 });
      if (res.status === 401)
        throw new AuthError(`token service ${url.origin} refused the credentials for ${scope}`);
      if (res.status !== 200)
        throw new AuthError(`token service ${url.origin} answered ${res.status} for ${scope}`);
      body = await res.json();
    } catch (err) {
      if (err instanceof PermanentError) {
        throw new AuthError(`token service ${url.origin} refused ${scope}: ${err.message}`, { cause: err });
      }
      throw err;
    }
    const parsed = tokenResponseSchema.safeParse(body);
    const token = parsed.success ? (parsed.data.token ?? parsed.data.access_token) : undefined;
    if (!parsed.success || !token)
      throw new AuthError(`token service ${url.origin} returned no token for ${scope}`);
    const seconds = parsed.data.expires_in ?? DEFAULT_TOKEN_SECONDS;
    // Lifetime counted from our own clock (issued_at is the server's and may be skewed); refresh early
    // by a fifth of the lifetime, at most 30 s, so a token never expires in flight.
    const early = Math.min(30_000, (seconds * 1000) / 5);
    return { token, expiresAt: startedAt + seconds * 1000 - early };
  }
}

/** The token scope to pull from a repository. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** The token scope for `_catalog`. */
export const CATALOG_SCOPE = 'registry:catalog:*';
