/**
 * One registry's authenticated transport: adds the Authorization header for a scope, and after a
 * 401 learns the challenge and retries (a refused cached token is refreshed once before giving up).
 */
import { AuthError } from '../../core/errors.js';
import type { HttpClient, HttpRequest, HttpResponse } from '../http.js';
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
    let header = await this.auth.headerFor(scope);
    for (let attempt = 1; ; attempt++) {
      const headers = { ...req.headers };
      if (header) headers.authorization = header;
      const res = await this.http.request({ ...req, headers });
      if (res.status !== 401) return res;
      await res.dump();
      if (attempt >= MAX_AUTH_ATTEMPTS) {
        throw new AuthError(`${this.registry} refused access to ${scope} even with a fresh token`);
      }
      header = await this.auth.onUnauthorized(res.headers, scope, header);
    }
  }
}
