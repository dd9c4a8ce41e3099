/**
 * Page walking for the Hub's `{count, next, previous, results}` listings (docker-hub-api.md §1.7).
 * `next` is followed verbatim — it may switch between the `/v2/namespaces/…` and legacy forms —
 * but only on the origin we were configured with: a `next` elsewhere is reported and never
 * fetched, so a hostile or broken response cannot send our token or our traffic to another host.
 * A `next` seen before (a loop), a `next` that answers 404 (the listing shrank while it was paged)
 * and the page cap also end the walk with an event.
 */
import type { z } from 'zod';
import { type HubOffsetCapError, isNotFound } from './errors.js';

/** What the Hub client reports as it goes; library code emits, the caller logs. */
export type HubEvent =
  | { type: 'foreign-next'; url: string; next: string }
  | { type: 'next-loop'; url: string; next: string }
  /**
   * The page `next` named answered 404: the Hub pages by offset and answers 404 past the last page
   * (§1.2), so the listing shrank while it was paged, and entries may have moved onto pages already read.
   */
  | { type: 'next-gone'; url: string; next: string }
  | { type: 'bad-next'; url: string; next: string }
  | { type: 'page-cap'; url: string; maxPages: number }
  /**
   * A listing stopped at the Hub's offset cap (HubOffsetCapError) with nothing to list the rest: search and
   * a namespace's repositories have no other source, and tags past the cap have no push date to filter by.
   * `total` is the Hub's own count of the listing when its pages gave one.
   */
  | {
      type: 'offset-cap';
      what: 'search' | 'repositories' | 'tags';
      url: string;
      offset: number;
      total: number | null;
      authenticated: boolean;
    }
  /**
   * A search whose `total` reached the Hub's cap on results for one query (SEARCH_RESULT_CAP): every page
   * was listed, but more repositories match than any one query lists.
   */
  | { type: 'result-cap'; url: string; total: number }
  /** Tag listing switched to the registry's tags/list at the offset cap; `message` says how to lift it. */
  | { type: 'tags-fallback'; url: string; offset: number; message: string }
  /** A listed repository name the reference grammar refuses: skipped, never put into a URL. */
  | { type: 'invalid-name'; url: string; name: string }
  | { type: 'fallback'; what: 'repositories' | 'repository' | 'tags' | 'search'; from: string; to: string }
  | { type: 'login'; endpoint: string; username: string };

/** The `offset-cap` event for a listing that ends at `err`, the Hub having said it holds `total` items. */
export function offsetCapEvent(
  what: Extract<HubEvent, { type: 'offset-cap' }>['what'],
  err: HubOffsetCapError,
  total: number | null,
): HubEvent {
  return {
    type: 'offset-cap',
    what,
    url: err.url,
    offset: err.offset,
    total,
    authenticated: err.authenticated,
  };
}

/** What repositories.ts, tags.ts and search.ts need from the client. */
export interface HubApi {
  readonly baseUrl: URL;
  readonly pageSize: number;
  readonly maxPages: number;
  readonly authenticated: boolean;
  /** Set once the `/v2/namespaces/…` routes 404 where the legacy `/v2/repositories/…` ones answer. */
  preferLegacy: boolean;
  /** Set once `/api/search/v4` is found missing, so later searches go straight to the v2 search. */
  searchV4Unavailable: boolean;
  /** GET `url` and parse it with `schema`; typed errors for every failure (see client.ts). */
  getJson<T extends z.ZodType>(url: URL, schema: T): Promise<z.output<T>>;
  /** Reports an event; HubClient redacts its URLs before any listener sees them. */
  emit(e: HubEvent): void;
}

interface Page<T> {
  next: string | null;
  count?: number | null | undefined;
  results: T[];
}

/** One fetched page, with the URL it came from (a resume point for the frontier). */
export interface FetchedPage<T> {
  url: string;
  /** 1-based position in this walk. */
  index: number;
  count: number | null;
  results: T[];
}

/** Loop key: the same URL whatever the order of its query parameters. */
function pageKey(u: URL): string {
  const params = [...u.searchParams.entries()].sort(([a], [b]) => a.localeCompare(b));
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}?${new URLSearchParams(params).toString()}`;
}

/**
 * Walks pages from `first`; stops at the last page, a foreign or repeated `next`, a `next` that answers 404
 * (the listing shrank), or `maxPages`.
 */
export async function* walkPages<T>(
  api: HubApi,
  first: URL,
  schema: z.ZodType<Page<T>>,
): AsyncGenerator<FetchedPage<T>> {
  const seen = new Set<string>([pageKey(first)]);
  let url = first;
  let previous: URL | undefined;
  for (let index = 1; ; index++) {
    let page: Page<T>;
    try {
      page = await api.getJson(url, schema);
    } catch (err) {
      // The first page's 404 is the caller's (walkWithFallback tries the legacy route); a later one ends
      // the walk with what it listed, as a cut: failing it would throw away every page already read.
      if (previous === undefined || !isNotFound(err)) throw err;
      api.emit({ type: 'next-gone', url: previous.href, next: url.href });
      return;
    }
    yield { url: url.href, index, count: page.count ?? null, results: page.results };
    if (!page.next || page.results.length === 0) return;
    let next: URL;
    try {
      next = new URL(page.next, url);
    } catch {
      api.emit({ type: 'bad-next', url: url.href, next: page.next.slice(0, 300) });
      return;
    }
    if (next.origin !== api.baseUrl.origin) {
      api.emit({ type: 'foreign-next', url: url.href, next: next.href.slice(0, 300) });
      return;
    }
    const key = pageKey(next);
    if (seen.has(key)) {
      api.emit({ type: 'next-loop', url: url.href, next: next.href });
      return;
    }
    if (index >= api.maxPages) {
      api.emit({ type: 'page-cap', url: url.href, maxPages: api.maxPages });
      return;
    }
    seen.add(key);
    previous = url;
    url = next;
  }
}

/** `path` on the base URL with `params` (page, page_size first, as the Hub writes its own links). */
export function hubUrl(api: HubApi, path: string, params: Record<string, string | number | undefined>): URL {
  const base = api.baseUrl.href.replace(/\/+$/, '');
  const u = new URL(`${base}${path}`);
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
  return u;
}

/** Path segment for a namespace or repository name (they are `[a-z0-9._-]`, but never trust input). */
export function seg(s: string): string {
  return encodeURIComponent(s);
}

/**
 * Walks the current route, or the legacy one when the current route 404s on its first page
 * (§1.1: the `/v2/repositories/…` forms are deprecated but still answer). A 404 once paging has
 * begun ends the walk as a cut (walkPages, `next-gone`).
 */
export async function* walkWithFallback<T>(
  api: HubApi,
  what: 'repositories' | 'tags',
  routes: { current: URL; legacy: URL },
  schema: z.ZodType<Page<T>>,
): AsyncGenerator<FetchedPage<T>> {
  const order = api.preferLegacy ? [routes.legacy] : [routes.current, routes.legacy];
  for (let i = 0; i < order.length; i++) {
    let started = false;
    try {
      for await (const page of walkPages(api, order[i]!, schema)) {
        if (!started && i > 0) api.preferLegacy = true;
        started = true;
        yield page;
      }
      return;
    } catch (err) {
      const next = order[i + 1];
      if (started || !isNotFound(err) || !next) throw err;
      api.emit({ type: 'fallback', what, from: order[i]!.href, to: next.href });
    }
  }
}
