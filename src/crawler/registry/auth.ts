/**
 * Registry authentication (distribution docs/spec/auth/token.md): probe, read the 401 challenge,
 * fetch a Bearer token for the scope (anonymous, with Basic credentials, or with an identity token
 * through the OAuth2 refresh-token grant: token-request.ts), cache it per (realm, service, scope)
 * until `expires_in` runs out, and refresh it on a 401. Basic-only registries get the Basic header
 * directly.
 */
import { AuthError, CredentialRefusedError } from '../../core/errors.js';
import type { HttpClient, HttpHeaders } from '../http.js';
import { basicAuthorization, type Credential } from './credential.js';
import type { CredentialStore } from './credentials.js';
import {
  getToken,
  type IssuedToken,
  mayCarryCredentials,
  refreshGrant,
  type TokenQuery,
  tokenRealm,
} from './token-request.js';

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

type Known = { scheme: 'bearer'; realm: string; service: string | undefined } | { scheme: 'basic' };

export interface RegistryAuthOptions {
  http: HttpClient;
  registry: string;
  credentials?: CredentialStore | undefined;
  /** Where the registry is reached: a Basic password goes there only over https or on loopback. */
  endpoint?: URL;
  now?: () => number;
}

/** The Basic header for a Basic-only registry; an identity token has no such form. */
function basicHeader(registry: string, cred: Credential): string {
  if (cred.kind === 'identity-token') {
    throw new AuthError(
      `${registry} asks for Basic auth, which cannot carry the identity token from docker login (that is for ` +
        `a Bearer token service); give a username and password for ${registry} instead`,
    );
  }
  return basicAuthorization(cred);
}

const MAX_CACHED_TOKENS = 256;

/** The signals that end a request: any of them aborting ends a wait on its behalf. */
export type StopSignals = ReadonlyArray<AbortSignal | undefined>;

/** Auth state for one registry: its challenge once seen, and the token cache. */
export class RegistryAuth {
  /** Requests made to token services (for stats and tests). */
  tokenRequests = 0;
  private known: Known | undefined;
  private readonly cache = new Map<string, IssuedToken>();
  private readonly inflight = new Map<string, Promise<IssuedToken>>();
  /**
   * The refusal of the credential (a password or an identity token) by the token service, or by a
   * Basic-only registry, rethrown without offering it again: a crawl meets thousands of scopes, a wrong
   * password does not mend between them, and sending it thousands of times may lock the account.
   */
  private credentialRefusal: CredentialRefusedError | undefined;
  /**
   * Settles with the first token request that carries the credential. Until then other scopes wait for
   * it, so a refused credential is sent once rather than once per request the crawl has in flight.
   */
  private firstCredentialed: Promise<unknown> | undefined;
  /**
   * The plain-http, non-loopback token service that got anonymous requests because no credential travels
   * in clear text: named in refusals, since "no access" is baffling when credentials are configured.
   */
  private plainRealm: string | undefined;
  /** True once a Basic-only registry accepted the password: from then on every request sends it at once. */
  private basicAccepted = false;
  /**
   * While the first request with the Basic password is in flight, settles when its answer is known
   * (basicSettled). Other requests wait for it, so a wrong password is sent once per registry, not once
   * per item in flight, as firstCredentialed does for token services.
   */
  private basicProbe: { done: Promise<void>; settle: () => void } | undefined;
  /**
   * The refresh token a rotating token service handed out last, sent instead of the docker login's.
   * `#`-private: a long-lived secret must not show in inspect() or JSON of the client.
   */
  #rotatedIdentityToken: string | undefined;
  /**
   * Refresh-token grants run one at a time: a service that rotates refresh tokens refuses the one it
   * just replaced, and some revoke the whole login when they see it again, so no two grants may carry
   * the same token.
   */
  #grants: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly opts: RegistryAuthOptions) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * The Authorization header to send with a request needing `scope`; undefined before any challenge.
   * `signals`: what ends the request (its own signal, its client's), which ends a wait for the first Basic
   * password's answer too.
   */
  async headerFor(scope: string, signals: StopSignals = []): Promise<string | undefined> {
    const known = this.known;
    if (!known) return undefined;
    if (known.scheme === 'basic') {
      const cred = this.opts.credentials?.get(this.opts.registry);
      return cred ? this.basicGated(cred, signals) : undefined;
    }
    const t = await this.token(known.realm, known.service, scope, undefined);
    return `Bearer ${t.token}`;
  }

  /**
   * Handles a 401: learns the challenge and returns the header to retry with. `sent` is the header the
   * refused request carried; a refused cached token is dropped and fetched again.
   */
  async onUnauthorized(
    headers: HttpHeaders,
    scope: string,
    sent: string | undefined,
    signals: StopSignals = [],
  ): Promise<string> {
    const challenges = parseWwwAuthenticate(headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      const realm = bearer.params.realm;
      if (!realm) throw new AuthError(`${this.opts.registry} sent a Bearer challenge without a realm`);
      const service = bearer.params.service;
      this.known = { scheme: 'bearer', realm, service };
      const wanted = readOnlyScope(bearer.params.scope, scope);
      const refused = sent?.startsWith('Bearer ') ? sent.slice('Bearer '.length) : undefined;
      // A token for exactly this scope that is still too weak will not get stronger by asking again
      // (Docker Hub answers _catalog this way: it has no catalog).
      if (refused !== undefined && bearer.params.error === 'insufficient_scope') {
        throw new AuthError(
          `${this.opts.registry} does not grant ${wanted} (insufficient_scope)${this.withheldHint()}`,
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
          `${this.opts.registry} requires credentials (Basic auth) and none are configured: set HUBCRAWL_REGISTRY_HOST=${this.opts.registry} with HUBCRAWL_REGISTRY_USERNAME and HUBCRAWL_REGISTRY_PASSWORD, run \`docker login ${this.opts.registry}\`, or give registries."${this.opts.registry}" a username and password in the config file`,
        );
      if (sent?.startsWith('Basic ')) {
        // Every later request would send the same refused password: remembered, as a token service's refusal is.
        this.refuseBasic();
        throw this.credentialRefusal;
      }
      return this.basicGated(cred, signals);
    }
    throw new AuthError(`${this.opts.registry} answered 401 without a Bearer or Basic challenge`);
  }

  /** A cached token for the scope, or a fresh one; `refused` is a token the registry just rejected. */
  private async token(
    realm: string,
    service: string | undefined,
    scope: string,
    refused: string | undefined,
  ): Promise<IssuedToken> {
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

  /** The Basic header for `cred`, unless the registry refused it before or would get it in clear text. */
  private basicFor(cred: Credential): string {
    if (this.credentialRefusal) throw this.credentialRefusal;
    const endpoint = this.opts.endpoint;
    if (endpoint !== undefined && !mayCarryCredentials(endpoint)) {
      throw new AuthError(
        `${this.opts.registry} asks for Basic auth at ${endpoint.origin}, plain http: the configured password ` +
          'is not sent in clear text; reach the registry over https, or through a tunnel to loopback',
      );
    }
    return basicHeader(this.opts.registry, cred);
  }

  /**
   * The Basic header, once the registry is known to accept it; before that, only the first caller gets
   * it at once (the probe) and the others wait for the registry's answer to it (basicSettled), or
   * until their own request is aborted: a crawl that stops must not wait out a slow probe's retries.
   */
  private async basicGated(cred: Credential, signals: StopSignals): Promise<string> {
    for (;;) {
      for (const s of signals) s?.throwIfAborted();
      const header = this.basicFor(cred);
      if (this.basicAccepted) return header;
      const probe = this.basicProbe;
      if (probe === undefined) {
        let settle!: () => void;
        const done = new Promise<void>((resolve) => {
          settle = resolve;
        });
        this.basicProbe = { done, settle };
        return header;
      }
      await untilAborted(probe.done, signals);
    }
  }

  /**
   * What the registry answered to a request that carried `sent` (undefined: no answer, the request
   * failed): the transport calls this after every request, so the requests waiting on the first Basic
   * password learn whether it was refused. A probe that tells nothing lets the next waiter try.
   */
  basicSettled(sent: string | undefined, status: number | undefined): void {
    if (!sent?.startsWith('Basic ') || this.basicAccepted) return;
    const probe = this.basicProbe;
    // 403 and 404 come after the password was checked; a 5xx, a 429 or no answer says nothing about it.
    if (status === 401) this.refuseBasic();
    else if (status !== undefined && (status < 400 || status === 403 || status === 404))
      this.basicAccepted = true;
    this.basicProbe = undefined;
    probe?.settle();
  }

  private refuseBasic(): void {
    this.credentialRefusal ??= new CredentialRefusedError(
      `${this.opts.registry} refused the configured username and password (Basic auth); check the ` +
        `credentials configured for it`,
    );
  }

  /** Why a refusal may not be the credentials' fault: they were never sent to a plain-http token service. */
  private withheldHint(): string {
    if (this.plainRealm === undefined) return '';
    return (
      `; credentials, if any are configured for ${this.opts.registry}, were not sent: its token service ` +
      `${this.plainRealm} is plain http, and they go only over https or to loopback`
    );
  }

  /** A new token: the refresh-token grant for an identity token, else the token GET. */
  private async fetchToken(realm: string, service: string | undefined, scope: string): Promise<IssuedToken> {
    const { registry } = this.opts;
    const q: TokenQuery = { registry, realm: tokenRealm(registry, realm), service, scope };
    const carries = mayCarryCredentials(q.realm);
    const cred = carries ? this.opts.credentials?.get(registry) : undefined;
    if (cred === undefined) {
      if (!carries && this.opts.credentials !== undefined) this.plainRealm = q.realm.origin;
      this.tokenRequests += 1;
      try {
        return await getToken(this.opts.http, q, undefined, this.now);
      } catch (err) {
        if (err instanceof AuthError && this.plainRealm !== undefined) {
          throw new AuthError(`${err.message}${this.withheldHint()}`, { cause: err });
        }
        throw err;
      }
    }
    if (this.firstCredentialed === undefined) {
      const first = this.requestWith(q, cred);
      this.firstCredentialed = first.catch(() => undefined);
      return first;
    }
    await this.firstCredentialed;
    return this.requestWith(q, cred);
  }

  /** One token request with the credential (grants queued behind each other), unless it was refused already. */
  private requestWith(q: TokenQuery, cred: Credential): Promise<IssuedToken> {
    if (cred.kind === 'basic') return this.refusalKept(() => getToken(this.opts.http, q, cred, this.now));
    const grant = this.#grants.then(() =>
      this.refusalKept(async () => {
        const identityToken = this.#rotatedIdentityToken ?? cred.identityToken;
        const { rotated, ...issued } = await refreshGrant(this.opts.http, q, identityToken, this.now);
        if (rotated !== undefined) this.#rotatedIdentityToken = rotated;
        return issued;
      }),
    );
    this.#grants = grant.catch(() => undefined);
    return grant;
  }

  /** Runs a credentialed request unless the credential was refused before; remembers a refusal. */
  private async refusalKept(request: () => Promise<IssuedToken>): Promise<IssuedToken> {
    if (this.credentialRefusal) throw this.credentialRefusal;
    this.tokenRequests += 1;
    try {
      return await request();
    } catch (err) {
      if (err instanceof CredentialRefusedError) this.credentialRefusal = err;
      throw err;
    }
  }
}

/** The token scope to pull from a repository. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** The token scope for `_catalog`. */
export const CATALOG_SCOPE = 'registry:catalog:*';

/**
 * The scope to ask a token service for, given the one a challenge names (if any) and `ours`. A crawl only
 * reads: of the challenge's scopes, a repository scope keeps only `pull` and the catalog scope stays only
 * when the catalog is what we asked for; the rest go. Asking for what a challenge asks
 * (`repository:x:push,pull,delete`) would have a token service issue push and delete rights for the
 * user's credential, to whoever wrote the challenge (an endpoint or a proxy in front of the registry).
 * The challenge's names are kept, as a registry may name a repository otherwise than our path does (a
 * mirror's prefix); when none of its scopes is left, ours is asked for.
 */
export function readOnlyScope(challenged: string | undefined, ours: string): string {
  const kept = (challenged ?? '')
    .split(' ')
    .filter(Boolean)
    .flatMap((s) => {
      if (s === CATALOG_SCOPE) return ours === CATALOG_SCOPE ? [s] : [];
      // resourcetype[(class)]:resourcename:action[,action…]; a name may hold ':' (a host's port).
      const first = s.indexOf(':');
      const last = s.lastIndexOf(':');
      if (last <= first || !s.slice(0, first).startsWith('repository')) return [];
      return s
        .slice(last + 1)
        .split(',')
        .includes('pull')
        ? [`${s.slice(0, last)}:pull`]
        : [];
    });
  return kept.length > 0 ? kept.join(' ') : ours;
}

/** `done`, or the abort of any of `signals`, whichever comes first; the listeners go with it. */
async function untilAborted(done: Promise<void>, signals: StopSignals): Promise<void> {
  const live = [...new Set(signals.filter((s) => s !== undefined))];
  if (live.length === 0) return done;
  let onAbort!: (event: Event) => void;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = (event) => reject((event.target as AbortSignal).reason);
    for (const s of live) s.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([done, aborted]);
  } finally {
    for (const s of live) s.removeEventListener('abort', onAbort);
  }
}
