/**
 * Docker Hub web API login with a personal access token (docker-hub-api.md §1.9):
 * `POST /v2/auth/token {identifier, secret}` → `{access_token}` (a JWT valid 10 minutes), falling
 * back to the deprecated `POST /v2/users/login {username, password}` → `{token}` when the new
 * route is missing. The token is cached until shortly before its JWT `exp` (at most 9 minutes)
 * and never appears in an error message or event.
 *
 * The login goes through the shared HttpClient, so it waits in the Hub host's queue, is paced by its
 * 429s (Retry-After) and counted in the run's request stats. It is `idempotent` (a second login only
 * issues a second token), so a reset, a timeout or a 5xx retries it as it would a GET.
 */
import { AuthError, LimitExceededError, RateLimitedError, RetryableError } from '../../core/errors.js';
import { isLoopbackHost } from '../../core/host.js';
import type { HttpClient, HttpResponse } from '../http.js';
import type { CredentialStore } from '../registry/credentials.js';
import { DOCKER_HUB } from '../registry/reference.js';
import { hubAuthTokenSchema, hubErrorBodySchema, hubLegacyLoginSchema, parseHubJson } from './schemas.js';

/** A Docker Hub username and a personal access token (read-only is enough to crawl). */
export interface HubCredentials {
  username: string;
  token: string;
  /** Where they came from, for messages that say what to fix (default: the HUBCRAWL_DOCKERHUB_* variables). */
  source?: string;
}

/** Environment variables that carry Hub credentials; they never enter the recorded config. */
export const HUB_CREDENTIAL_ENV = {
  username: 'HUBCRAWL_DOCKERHUB_USERNAME',
  token: 'HUBCRAWL_DOCKERHUB_TOKEN',
} as const;

/** Credentials from HUBCRAWL_DOCKERHUB_USERNAME/HUBCRAWL_DOCKERHUB_TOKEN, or undefined when either is unset. */
export function hubCredentialsFromEnv(env: NodeJS.ProcessEnv = process.env): HubCredentials | undefined {
  const username = env[HUB_CREDENTIAL_ENV.username]?.trim();
  const token = env[HUB_CREDENTIAL_ENV.token]?.trim();
  return username && token ? { username, token } : undefined;
}

/** Where a Docker config's credentials may go: the official Hub API, or a test server on this machine. */
const OFFICIAL_HUB_API = 'https://hub.docker.com';

/** Whether the docker.io login may go to this Hub API: the official one, or a loopback test server. */
export function hubTakesDockerLogin(hubApiUrl: string): boolean {
  const url = new URL(hubApiUrl);
  return url.origin === OFFICIAL_HUB_API || isLoopbackHost(url.host);
}

/**
 * The docker.io credential of `store` (a `registries.docker.io` setting, or the Docker config's `auths`
 * or credential helper, as `docker login` left it) for signing in to the Hub web API at `hubApiUrl`.
 * Only for the official API (or loopback): a mirror or another `--hub-api` never gets a password that
 * was given for Docker Hub. An identity token (the OAuth2 refresh token some logins keep instead of a
 * password) is for the registry's token service alone and signs in nowhere here: the Hub API then
 * stays anonymous, and HUBCRAWL_DOCKERHUB_* is the way to sign in to it. May run a credential
 * helper (FatalError when it fails).
 */
export function hubCredentialsFromStore(
  store: CredentialStore,
  hubApiUrl: string,
): HubCredentials | undefined {
  if (!hubTakesDockerLogin(hubApiUrl)) return undefined;
  const credential = store.get(DOCKER_HUB);
  // The web API takes a password or personal access token; a refresh token posted there as one would be
  // refused at best, and handed to a service it was not issued for at worst.
  if (credential === undefined || credential.kind !== 'basic') return undefined;
  return {
    username: credential.username,
    token: credential.password,
    source:
      'the docker.io login of the Docker config (docker login) or registries["docker.io"] in the config file',
  };
}

/** Longest we reuse a token: the Hub says 10 minutes, keep a minute of slack. */
const MAX_TOKEN_AGE_MS = 9 * 60_000;
/** Refresh this long before the JWT's own `exp`. */
const EXPIRY_MARGIN_MS = 60_000;

export interface HubAuthOptions {
  baseUrl: URL;
  credentials: HubCredentials;
  /** The run's client: the login shares its host queue, 429 pacing, retries and stats. */
  http: HttpClient;
  /** Headers and body idle timeout of the login request; default the client's. */
  timeoutMs?: number;
  now?: () => number;
  onLogin?: (e: { endpoint: '/v2/auth/token' | '/v2/users/login'; username: string }) => void;
}

/** A login answer is a few hundred bytes; a hostile endpoint may send gigabytes. */
const MAX_LOGIN_BODY_BYTES = 64 * 1024;
/** Every 4xx comes back as a response, so its message is built here, where the secret is scrubbed. */
const LOGIN_ANSWERS = Array.from({ length: 100 }, (_, i) => 400 + i);

/**
 * Holds one Hub access token and renews it; concurrent callers share one login.
 * Secrets live in `#private` fields so that serializing or logging the object cannot reveal them.
 */
export class HubAuth {
  #token: { value: string; expiresAt: number } | undefined;
  #pending: Promise<string> | undefined;
  /**
   * The Hub's refusal of these credentials, rethrown without asking again: every Hub request of a
   * crawl would otherwise post the wrong token anew, thousands of failed logins that can lock the
   * account. Rate limits and transient failures are not kept.
   */
  #refused: AuthError | undefined;
  readonly #opts: HubAuthOptions;
  private readonly now: () => number;

  constructor(opts: HubAuthOptions) {
    this.#opts = opts;
    this.now = opts.now ?? Date.now;
  }

  /** Who we sign in as (for messages; never the token). */
  get username(): string {
    return this.#opts.credentials.username;
  }

  /** Where the credentials came from, for messages that say what to fix. */
  get source(): string {
    return this.#opts.credentials.source ?? `${HUB_CREDENTIAL_ENV.username} and ${HUB_CREDENTIAL_ENV.token}`;
  }

  /** The `Authorization` header value, logging in first when no fresh token is cached. */
  async authorization(): Promise<string> {
    if (this.#token && this.#token.expiresAt > this.now()) return `Bearer ${this.#token.value}`;
    if (this.#refused !== undefined) throw this.#refused;
    this.#pending ??= this.login()
      .catch((err: unknown) => {
        if (err instanceof AuthError) this.#refused = err;
        throw err;
      })
      .finally(() => {
        this.#pending = undefined;
      });
    return `Bearer ${await this.#pending}`;
  }

  /** Forgets the cached token (after a 401), so the next call logs in again. */
  invalidate(): void {
    this.#token = undefined;
  }

  private async login(): Promise<string> {
    const { username, token: secret } = this.#opts.credentials;
    let value: string | undefined;
    let endpoint: '/v2/auth/token' | '/v2/users/login' = '/v2/auth/token';
    const current = await this.post(endpoint, { identifier: username, secret });
    if (current.status === 404 || current.status === 405) {
      // Older deployments (and mirrors) only know the deprecated route.
      endpoint = '/v2/users/login';
      const legacy = await this.post(endpoint, { username, password: secret });
      value = parseHubJson(hubLegacyLoginSchema, legacy.json, this.url(endpoint)).token;
    } else {
      value = parseHubJson(hubAuthTokenSchema, current.json, this.url(endpoint)).access_token;
    }
    const now = this.now();
    const exp = jwtExpiryMs(value);
    const expiresAt = Math.min(now + MAX_TOKEN_AGE_MS, exp === undefined ? Infinity : exp - EXPIRY_MARGIN_MS);
    this.#token = { value, expiresAt: Math.max(expiresAt, now + 1000) };
    this.#opts.onLogin?.({ endpoint, username });
    return value;
  }

  private url(path: string): URL {
    return new URL(path, this.#opts.baseUrl);
  }

  /** POSTs JSON; returns 2xx and 404/405 bodies, throws typed errors for the rest. */
  private async post(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
    const url = this.url(path);
    const { username, token: secret } = this.#opts.credentials;
    if (url.protocol !== 'https:' && !isLoopbackHost(url.host)) {
      // A personal access token is a password: never over plain HTTP to another machine.
      throw new AuthError(
        `refusing to send Docker Hub credentials to ${url.origin} over plain HTTP; use an https:// --hub-api URL`,
      );
    }
    let status: number;
    let text: string;
    try {
      const res = await this.#opts.http.request({
        method: 'POST',
        // A second login after a reset only issues a second token: retried like a GET.
        idempotent: true,
        url,
        json: body,
        headers: { accept: 'application/json' },
        maxBodyBytes: MAX_LOGIN_BODY_BYTES,
        passStatuses: LOGIN_ANSWERS,
        ...(this.#opts.timeoutMs !== undefined ? { timeoutMs: this.#opts.timeoutMs } : {}),
      });
      status = res.status;
      text = await boundedText(res);
    } catch (err) {
      throw loginFailure(err, secret);
    }
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // Non-JSON bodies only matter for the message below.
    }
    if ((status >= 200 && status < 300) || status === 404 || status === 405) return { status, json };
    const parsed = hubErrorBodySchema.safeParse(json);
    const detail = scrub(
      (parsed.success ? (parsed.data.detail ?? parsed.data.message) : undefined) ?? '',
      secret,
    );
    const said = detail ? ` (the Hub says: ${detail.slice(0, 200)})` : '';
    throw new AuthError(
      `Docker Hub refused the login of "${username}" at ${url} with ${status}${said}; check ` +
        `${this.source} (a personal access token, not a password with 2FA)`,
    );
  }
}

/**
 * The answer's text. Over the bound, a success is refused (LimitExceededError) and a refusal keeps its
 * status without the Hub's detail.
 */
async function boundedText(res: HttpResponse): Promise<string> {
  try {
    return await res.text();
  } catch (err) {
    if (err instanceof LimitExceededError && (res.status < 200 || res.status >= 300)) return '';
    throw err;
  }
}

/** The HTTP layer's 429 and transient errors, named as a login's; no message carries the secret. */
function loginFailure(err: unknown, secret: string): unknown {
  if (err instanceof RateLimitedError) {
    return new RateLimitedError(
      `Docker Hub login was rate limited: ${scrub(err.message, secret)}`,
      err.retryAfterMs,
      {
        cause: err,
      },
    );
  }
  if (err instanceof RetryableError) {
    const options = err.status !== undefined ? { cause: err, status: err.status } : { cause: err };
    return new RetryableError(`Docker Hub login failed: ${scrub(err.message, secret)}`, options);
  }
  return err;
}

/** `exp` of a JWT in ms, or undefined when the token is not a JWT we can read. */
export function jwtExpiryMs(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Removes a secret from text bound for a message, in case a server echoes it. */
function scrub(text: string, secret: string): string {
  return secret ? text.split(secret).join('[redacted]') : text;
}
