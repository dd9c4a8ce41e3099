/**
 * `GET /v2/<name>/tags/list` with `n`/`last` and `Link: <…>; rel="next"` paging (distribution-spec
 * "Listing Tags"), plus the shared pager that `_catalog` uses too. Links are followed on the same
 * origin only, pages are capped, and a page that repeats a URL stops the walk.
 */
import { z } from 'zod';
import { CorruptInputError, LimitExceededError, PermanentError } from '../../core/errors.js';
import { pullScope } from './auth.js';
import type { RegistryTransport } from './transport.js';

/** Default cap on pages followed for one listing. */
export const DEFAULT_MAX_PAGES = 1000;

/** The `rel="next"` target of a Link header, resolved against the request URL. */
export function parseLinkNext(link: string | string[] | undefined, base: URL): URL | undefined {
  const values = link === undefined ? [] : Array.isArray(link) ? link : [link];
  for (const value of values) {
    for (const m of value.matchAll(/<([^>]*)>\s*((?:;\s*[^;,]+)*)/g)) {
      const params = m[2] ?? '';
      if (!/;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?/i.test(params)) continue;
      try {
        return new URL(m[1]!, base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export interface PageOptions {
  pageSize?: number;
  maxPages?: number;
  signal?: AbortSignal;
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
  const seen = new Set<string>();
  /** The `last` we added ourselves (no Link was given), to notice a registry that ignores it. */
  let askedLast: string | undefined;
  let url: URL | undefined = first;
  for (let page = 1; url; page++) {
    if (page > maxPages) {
      throw new LimitExceededError(
        'maxPages',
        page,
        `${first.href}: more than ${maxPages} pages; the listing is incomplete`,
      );
    }
    if (seen.has(url.href))
      throw new CorruptInputError(`${first.href}: pagination came back to ${url.href}; stopping`);
    seen.add(url.href);
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
    // and this page repeats what we already have.
    if (askedLast !== undefined && names.includes(askedLast)) return;
    askedLast = undefined;
    yield* names;
    let next = parseLinkNext(res.headers.link, url);
    // Without Link, a page of exactly `n` may mean more: ask with `last` (distribution-spec "Listing Tags").
    // A page longer than `n` means the registry ignored `n` and sent everything.
    if (!next && opts.pageSize !== undefined && names.length === opts.pageSize && names.length > 0) {
      next = new URL(url);
      next.searchParams.set('n', String(opts.pageSize));
      askedLast = names[names.length - 1]!;
      next.searchParams.set('last', askedLast);
    }
    if (next && next.origin !== first.origin) {
      throw new PermanentError(
        `${url.href} links the next page to another origin (${next.origin}); refusing to follow`,
      );
    }
    url = next;
  }
}

const tagsSchema = z.object({ name: z.string().optional(), tags: z.array(z.string()).nullable().optional() });

/** Every tag of a repository, in the registry's (lexical) order. */
export function listTags(
  t: RegistryTransport,
  repository: string,
  opts: PageOptions = {},
): AsyncGenerator<string> {
  const url = new URL(`/v2/${repository}/tags/list`, t.baseUrl);
  if (opts.pageSize !== undefined) url.searchParams.set('n', String(opts.pageSize));
  return paginate(
    t,
    url,
    pullScope(repository),
    (body, at) => {
      const r = tagsSchema.safeParse(body);
      if (!r.success)
        throw new CorruptInputError(`${at.href} is not a tags/list answer: ${r.error.issues[0]?.message}`);
      return r.data.tags ?? [];
    },
    opts,
  );
}
