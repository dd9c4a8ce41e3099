/**
 * One registry's authenticated transport: adds the Authorization header for a scope, and after a
 * 401 learns the challenge and retries (a refused cached token is refreshed once before giving up).
 */
import { AuthError, PermanentError } from '../../core/errors.js';
import { redactUrl } from '../../core/url.js';
import type { HttpClient, HttpRequest, HttpResponse } from '../http.js';
import { headerValue } from '../rate-limit.js';
import type { RegistryAuth } from './auth.js';

/** What tags.ts, catalog.ts and blobs.ts need from the client. */
export interface RegistryTransport {
  /** `docker.io` or `host[:port]`. */
  readonly registry: string;
  /** Where `/v2/…` lives, e.g. `https://registry-1.docker.io`. */
  readonly baseUrl: URL;
  readonly http: HttpClient;
  /** Sends with credentials for `scope`; 401s are handled here and never returned. */
  send(req: HttpRequest, scope: string): Promise<HttpResponse>;
}

/** Anonymous try, token after the challenge, one forced refresh: three attempts at most. */
const MAX_AUTH_ATTEMPTS = 3;

export class AuthedTransport implements RegistryTransport {
  constructor(
    readonly registry: string,
    readonly baseUrl: URL,
    readonly http: HttpClient,
    private readonly auth: RegistryAuth,
  ) {}

  async send(req: HttpRequest, scope: string): Promise<HttpResponse> {
    // What ends this request ends a wait for the first Basic password's answer too: its own signal and
    // its client's, as HttpClient itself listens to both.
    const signals = [req.signal, this.http.signal];
    let header = await this.auth.headerFor(scope, signals);
    for (let attempt = 1; ; attempt++) {
      const headers = { ...req.headers };
      if (header) headers.authorization = header;
      let res: HttpResponse;
      try {
        res = await this.http.request({ ...req, headers });
      } catch (err) {
        this.auth.basicSettled(header, undefined);
        throw err;
      }
      this.auth.basicSettled(header, res.status);
      if (res.status >= 300 && res.status < 400) await this.refuseHttpsUpgrade(req.url, res);
      if (res.status !== 401) return res;
      await res.dump();
      if (attempt >= MAX_AUTH_ATTEMPTS) {
        throw new AuthError(`${this.registry} refused access to ${scope} even with a fresh token`);
      }
      header = await this.auth.onUnauthorized(res.headers, scope, header, signals);
    }
  }

  /**
   * A plain-http port that redirects every request to https on the same host (an nginx in front of
   * the registry) would fail each request as a bare "answered 301": the message names the Location and
   * what to change.
   */
  private async refuseHttpsUpgrade(url: URL | string, res: HttpResponse): Promise<void> {
    const from = new URL(url);
    const location = headerValue(res.headers, 'location');
    if (from.protocol !== 'http:' || location === undefined) return;
    let to: URL;
    try {
      to = new URL(location, from);
    } catch {
      return;
    }
    if (to.protocol !== 'https:' || to.hostname !== from.hostname || to.pathname !== from.pathname) return;
    await res.dump();
    throw new PermanentError(
      `${redactUrl(from)} answered ${res.status} redirecting to ${redactUrl(to)}: the registry ${this.registry} ` +
        `serves https, not plain http; drop --insecure-registry for it (or set registries."${this.registry}".` +
        `scheme: https), or give its https address as the endpoint`,
      { status: res.status },
    );
  }
}
