/**
 * The Docker Hub web API client (hub.docker.com/v2, /api/search): repositories of a namespace,
 * repository details, tags with their index and per-platform digests, and search. Every request
 * goes through the shared HttpClient, which owns retries and the Hub's X-RateLimit and Retry-After
 * pacing. Responses are parsed with the schemas of schemas.ts at this boundary.
 */

import type { z } from 'zod';
import { AuthError, PermanentError } from '../../core/errors.js';
import { redactUrl, redactUrlsIn } from '../../core/url.js';
import type { HttpClient, HttpResponse } from '../http.js';
import { HUB_CREDENTIAL_ENV, HubAuth, type HubCredentials } from './auth.js';
import { HubOffsetCapError, OFFSET_CAP_MESSAGE } from './errors.js';
import type { FetchedPage, HubApi, HubEvent } from './paging.js';
import { getRepository, type HubRepository, listRepositories } from './repositories.js';
import { hubErrorBodySchema, parseHubJson } from './schemas.js';
import { type HubSearchHit, type HubSearchOptions, search } from './search.js';
import {
  type HubTag,
  type HubTagFallbackOptions,
  type HubTagListOptions,
  listTagPages,
  listTagsWithFallback,
  type SourcedTag,
} from './tags.js';

export { HUB_CREDENTIAL_ENV, type HubCredentials, hubCredentialsFromEnv } from './auth.js';
export { HubOffsetCapError } from './errors.js';
export type { HubEvent } from './paging.js';
export type { HubRepository } from './repositories.js';
export type { HubSearchHit, HubSearchOptions } from './search.js';
export type { HubTag, HubTagFallbackOptions, HubTagImage, HubTagListOptions, SourcedTag } from './tags.js';

export const DEFAULT_HUB_URL = 'https://hub.docker.com';
/** The Hub caps page_size at 100 for tags and namespace repositories (§1.7). */
export const MAX_PAGE_SIZE = 100;
/** Hub JSON pages are small; this only stops a runaway body. */
const MAX_JSON_BYTES = 32 * 1024 * 1024;

export interface HubClientOptions {
  http: HttpClient;
  /** Default https://hub.docker.com; tests pass the fake's URL. */
  baseUrl?: string;
  /**
   * Who to sign in as, or a function that says so (or undefined: anonymous), asked once, at the first
   * Hub request: a Docker config credential may need a credential helper, which a crawl that never
   * reaches the Hub API must not run.
   */
  credentials?: HubCredentials | (() => HubCredentials | undefined);
  /** Pages fetched per listing before stopping with a `page-cap` event. Default 1000. */
  maxPages?: number;
  /** Items per page, 1..100. Default 100. */
  pageSize?: number;
  onEvent?: (e: HubEvent) => void;
  /** Clock for the login token cache (tests). */
  now?: () => number;
}

/** Docker Hub web API client; see the module comment. */
export class HubClient implements HubApi {
  readonly baseUrl: URL;
  readonly pageSize: number;
  readonly maxPages: number;
  private readonly http: HttpClient;
  private readonly credentials: HubClientOptions['credentials'];
  /** The signed-in session, made on first use (undefined: not yet decided; null: anonymous). */
  private session: HubAuth | null | undefined;
  private readonly now: (() => number) | undefined;
  private readonly onEvent: ((e: HubEvent) => void) | undefined;
  preferLegacy = false;
  searchV4Unavailable = false;

  constructor(opts: HubClientOptions) {
    this.http = opts.http;
    this.baseUrl = new URL(opts.baseUrl ?? DEFAULT_HUB_URL);
    this.pageSize = Math.max(1, Math.min(MAX_PAGE_SIZE, Math.floor(opts.pageSize ?? MAX_PAGE_SIZE)));
    this.maxPages = Math.max(1, Math.floor(opts.maxPages ?? 1000));
    this.onEvent = opts.onEvent;
    this.credentials = opts.credentials;
    this.now = opts.now;
  }

  /** Whether requests are signed in (decides the credentials on first call). */
  get authenticated(): boolean {
    return this.auth !== null;
  }

  /** The signed-in session, or null when anonymous. */
  private get auth(): HubAuth | null {
    if (this.session === undefined) {
      const credentials = typeof this.credentials === 'function' ? this.credentials() : this.credentials;
      this.session = credentials
        ? new HubAuth({
            baseUrl: this.baseUrl,
            credentials,
            http: this.http,
            ...(this.now ? { now: this.now } : {}),
            onLogin: (e) => this.emit({ type: 'login', ...e }),
          })
        : null;
    }
    return this.session;
  }

  /** Repositories of `namespace` (`library` for official images), every page; an `offset-cap` event where anonymous paging ends. */
  listRepositories(namespace: string): AsyncIterable<HubRepository> {
    return listRepositories(this, namespace);
  }

  /** Pull and star counts, last update, media and content types of one repository. */
  getRepository(namespace: string, name: string): Promise<HubRepository> {
    return getRepository(this, namespace, name);
  }

  /** Every tag of a repository; throws HubOffsetCapError where anonymous paging ends. */
  async *listTags(namespace: string, name: string, opts: HubTagListOptions = {}): AsyncIterable<HubTag> {
    for await (const page of listTagPages(this, namespace, name, opts)) yield* page.results;
  }

  /** Tag pages with their URLs, for callers that record progress per page. */
  listTagPages(
    namespace: string,
    name: string,
    opts: HubTagListOptions = {},
  ): AsyncIterable<FetchedPage<HubTag>> {
    return listTagPages(this, namespace, name, opts);
  }

  /**
   * Every tag: the Hub API, then at the anonymous offset cap the remaining names from
   * `registryTags` (e.g. `() => registryClient.listTags('ns/name')`), without digests or dates;
   * with `pushDatesRequired`, an `offset-cap` event there instead.
   */
  listTagsWithFallback(
    namespace: string,
    name: string,
    registryTags: () => AsyncIterable<string>,
    opts: HubTagFallbackOptions = {},
  ): AsyncIterable<SourcedTag> {
    return listTagsWithFallback(this, namespace, name, registryTags, opts);
  }

  /** Repositories matching `query`: the v4 search, else the older v2 search. */
  search(query: string, opts: HubSearchOptions = {}): AsyncIterable<HubSearchHit> {
    return search(this, query, opts);
  }

  emit(e: HubEvent): void {
    try {
      this.onEvent?.(redactedEvent(e));
    } catch {
      // A listener's failure must not break a crawl.
    }
  }

  /** GET + parse; 401 renews the token once; the offset-cap 403 becomes HubOffsetCapError. */
  async getJson<T extends z.ZodType>(url: URL, schema: T): Promise<z.output<T>> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (this.auth) headers.authorization = await this.auth.authorization();
      // 403 and 404 come back as responses: both are expected answers here (the offset cap,
      // a legacy-route probe), not failures for the HTTP layer to count.
      const res = await this.http.request({
        url,
        headers,
        buffer: true,
        maxBodyBytes: MAX_JSON_BYTES,
        passStatuses: [403, 404],
      });
      if (res.status === 401) {
        await res.dump();
        if (this.auth && attempt === 1) {
          this.auth.invalidate();
          continue;
        }
        throw new AuthError(
          this.auth
            ? `Docker Hub refused our access token at ${url.href}; check ${this.auth.source}`
            : `Docker Hub asks for authentication at ${url.href}; set ${HUB_CREDENTIAL_ENV.username} and ${HUB_CREDENTIAL_ENV.token}`,
        );
      }
      if (res.status < 200 || res.status >= 300) throw await this.statusError(res, url);
      return parseHubJson(schema, await res.json(), url);
    }
    throw new AuthError(`Docker Hub refused a fresh access token at ${url.href}`);
  }

  /** A typed error for a non-2xx answer, reading the Hub's `{message}`/`{detail}` body. */
  private async statusError(res: HttpResponse, url: URL): Promise<PermanentError> {
    let said = '';
    try {
      const body = hubErrorBodySchema.safeParse(JSON.parse(await res.text()));
      said = body.success ? (body.data.message ?? body.data.detail ?? '') : '';
    } catch {
      // Not JSON: the status alone says enough.
    }
    if (res.status === 403 && said.includes(OFFSET_CAP_MESSAGE)) {
      return new HubOffsetCapError(url.href, offsetOf(url), this.authenticated);
    }
    const detail = said ? `: ${said.slice(0, 200)}` : '';
    // Redirects are not followed by the HTTP layer; the Hub API sends none we need.
    return new PermanentError(`Docker Hub answered ${res.status} for ${url.href}${detail}`, {
      status: res.status,
    });
  }
}

/** Items before the page `url` asks for: (page-1)*page_size, or `from` for the v4 search. */
function offsetOf(url: URL): number {
  const from = Number(url.searchParams.get('from'));
  if (Number.isInteger(from) && from > 0) return from;
  const page = Number(url.searchParams.get('page') ?? '1');
  const size = Number(url.searchParams.get('page_size') ?? '10');
  return Number.isInteger(page) && Number.isInteger(size) ? Math.max(0, (page - 1) * size) : 0;
}

/**
 * An event fit for logs and the dataset's failures (listing cuts end up there): its URLs through
 * redactUrl, URLs quoted in its message too. A Hub API URL may carry `user:pass@`; a link, a token.
 */
function redactedEvent(e: HubEvent): HubEvent {
  const out: Record<string, unknown> = { ...e };
  for (const key of ['url', 'next', 'from', 'to', 'endpoint'] as const) {
    const v = out[key];
    if (typeof v === 'string') out[key] = redactUrl(v);
  }
  if (typeof out.message === 'string') out.message = redactUrlsIn(out.message);
  return out as HubEvent;
}
