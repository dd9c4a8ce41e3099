/**
 * The pager `GET /v2/<name>/tags/list` and `GET /v2/_catalog` share: `n`/`last` and
 * `Link: <…>; rel="next"` paging (distribution-spec "Listing Tags"). Links are followed on the same
 * origin and path only, pages are capped, and a next page seen before (a loop) is never fetched again.
 *
 * Such a cut is not the end of the listing, and the caller decides what it is: with `onCut`, the walk
 * ends there and reports it, so what was listed is kept (the pipeline crawls it and fails the item, as it
 * does for the Hub's listings); without `onCut`, it throws, so no caller takes a partial listing for a
 * whole one without having asked for that.
 */
import { CorruptInputError, LimitExceededError, PermanentError } from '../../core/errors.js';
import { redactUrl } from '../../core/url.js';
import type { RegistryTransport } from './transport.js';

/** Default cap on pages followed for one listing. */
export const DEFAULT_MAX_PAGES = 1000;

/**
 * Default cap on the names one listing yields. Its caller holds them all until the listing ends (its item's
 * children are written in one transaction), and a registry may send 20 000 fresh names a page for ever:
 * 4 GB of memory within minutes. Half a million is above any real registry's repositories, and above the
 * most tags known on one repository (rayproject/ray, 282 645).
 */
export const DEFAULT_MAX_ENTRIES = 500_000;

/**
 * Why a registry listing stopped before its last page: the kinds of the Hub's paging (hub/paging.ts),
 * with `listing` the listing's first URL and `url` the page whose next link was refused.
 */
export type RegistryListingCut =
  | { type: 'foreign-next'; listing: string; url: string; next: string }
  | { type: 'next-loop'; listing: string; url: string; next: string }
  | { type: 'bad-next'; listing: string; url: string; next: string }
  | { type: 'page-cap'; listing: string; url: string; maxPages: number }
  | { type: 'entry-cap'; listing: string; url: string; maxEntries: number };

/**
 * Whether a link's parameters name `next` among its relation types. RFC 8288 §3.3: `rel` is a
 * space-separated list of types, compared case-insensitively; `next` must be one of them whole, not the
 * start of another (`next-archive`, RFC 5005).
 */
function relIsNext(params: string): boolean {
  const m = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;]*))/i.exec(params);
  const types = (m?.[1] ?? m?.[2] ?? '').toLowerCase().split(/\s+/);
  return types.includes('next');
}

/** The `rel="next"` target of a Link header: a URL resolved against the request URL, or the raw target. */
export function linkNext(
  link: string | string[] | undefined,
  base: URL,
): { url: URL } | { invalid: string } | undefined {
  const values = link === undefined ? [] : Array.isArray(link) ? link : [link];
  for (const value of values) {
    for (const m of value.matchAll(/<([^>]*)>\s*((?:;\s*[^;,]+)*)/g)) {
      if (!relIsNext(m[2] ?? '')) continue;
      try {
        return { url: new URL(m[1]!, base) };
      } catch {
        return { invalid: m[1]! };
      }
    }
  }
  return undefined;
}

export interface PageOptions {
  pageSize?: number;
  maxPages?: number;
  maxEntries?: number;
  signal?: AbortSignal;
  /** Hears a cut and ends the walk with what was listed; without it, a cut throws (see above). */
  onCut?: (cut: RegistryListingCut) => void;
}

/** The typed error a cut becomes for a caller that did not ask to hear cuts. */
function listingCutError(cut: RegistryListingCut): Error {
  switch (cut.type) {
    case 'foreign-next':
      return new PermanentError(
        `${cut.url} links the next page to another origin or path (${cut.next}); refusing to follow`,
      );
    case 'next-loop':
      return new CorruptInputError(`${cut.listing}: pagination came back to ${cut.next}; stopping`);
    case 'bad-next':
      return new CorruptInputError(`${cut.url} links the next page to ${cut.next}, which is not a URL`);
    case 'page-cap':
      return new LimitExceededError(
        'maxPages',
        cut.maxPages + 1,
        `${cut.listing}: more than ${cut.maxPages} pages; the listing is incomplete`,
      );
    case 'entry-cap':
      return new LimitExceededError(
        'maxEntries',
        cut.maxEntries + 1,
        `${cut.listing}: more than ${cut.maxEntries} names; the listing is incomplete`,
      );
  }
}

/** Why the walk must not go on from `url` to its next page, if it must not. */
function refuseNext(w: {
  first: URL;
  url: URL;
  link: { url: URL } | { invalid: string } | undefined;
  next: URL | undefined;
  seen: ReadonlySet<string>;
  page: number;
  maxPages: number;
}): RegistryListingCut | undefined {
  // Cuts go to logs and to the dataset's failures: an endpoint's user:pass@ or a token in a link stays out.
  const at = { listing: redactUrl(w.first), url: redactUrl(w.url) };
  if (w.link && 'invalid' in w.link) return { type: 'bad-next', ...at, next: redactUrl(w.link.invalid) };
  if (!w.next) return undefined;
  // Another path is another listing: a tags/list linking to another repository's would file its tags here.
  if (w.next.origin !== w.first.origin || w.next.pathname !== w.first.pathname)
    return { type: 'foreign-next', ...at, next: redactUrl(w.next).slice(0, 300) };
  if (w.seen.has(w.next.href)) return { type: 'next-loop', ...at, next: redactUrl(w.next) };
  if (w.page >= w.maxPages) return { type: 'page-cap', ...at, maxPages: w.maxPages };
  return undefined;
}

/** Walks a paged listing, yielding the names each page carries. */
export async function* paginate(
  t: RegistryTransport,
  first: URL,
  scope: string,
  pick: (body: unknown, url: URL) => string[],
  opts: PageOptions,
): AsyncGenerator<string> {
  const maxPages = opts.maxPages ?? DEFAULT_MAX_PAGES;
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  let listed = 0;
  const seen = new Set<string>([first.href]);
  const cut = (c: RegistryListingCut): void => {
    if (!opts.onCut) throw listingCutError(c);
    opts.onCut(c);
  };
  /** The `last` we added ourselves (no Link was given), to notice a registry that ignores it. */
  let askedLast: string | undefined;
  let url = first;
  for (let page = 1; ; page++) {
    const req = {
      url,
      headers: { accept: 'application/json' },
      buffer: true,
      maxBodyBytes: 64 * 1024 * 1024,
    };
    const res = await t.send(opts.signal ? { ...req, signal: opts.signal } : req, scope);
    if (res.status !== 200) {
      await res.dump();
      throw new PermanentError(`${url.href} answered ${res.status} where a listing was expected`, {
        status: res.status,
      });
    }
    const names = pick(await res.json(), url);
    // `last` is excluded from a page that honours it (distribution-spec); seeing it means it was ignored
    // and this page repeats what we already have: the listing is whole, not cut.
    if (askedLast !== undefined && names.includes(askedLast)) return;
    askedLast = undefined;
    if (listed + names.length > maxEntries) {
      yield* names.slice(0, maxEntries - listed);
      cut({ type: 'entry-cap', listing: redactUrl(first), url: redactUrl(url), maxEntries });
      return;
    }
    listed += names.length;
    yield* names;
    const link = linkNext(res.headers.link, url);
    let next = link && 'url' in link ? link.url : undefined;
    // Without Link, a page of exactly `n` may mean more: ask with `last` (distribution-spec "Listing Tags").
    // A page longer than `n` means the registry ignored `n` and sent everything.
    if (!link && opts.pageSize !== undefined && names.length === opts.pageSize && names.length > 0) {
      next = new URL(url);
      next.searchParams.set('n', String(opts.pageSize));
      askedLast = names[names.length - 1]!;
      next.searchParams.set('last', askedLast);
    }
    const refused = refuseNext({ first, url, link, next, seen, page, maxPages });
    if (refused) {
      cut(refused);
      return;
    }
    if (!next) return;
    seen.add(next.href);
    url = next;
  }
}
