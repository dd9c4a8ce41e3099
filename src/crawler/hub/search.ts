/**
 * Search as a discovery source, behind one interface because Docker keeps changing it
 * (docker-hub-api.md §1.5): `/api/search/v4` first (what Docker's own MCP server uses), and the
 * older `/v2/search/repositories/` when v4 is missing or answers something we cannot read.
 * Results are capped by the Hub (about 10 000), by `limit`, and for anonymous callers by the
 * offset cap, where search ends with an `offset-cap` event: search has no other source to fall
 * back to, and the hits so far are still good, but the pipeline records the search as cut short.
 */
import { CorruptInputError, PermanentError } from '../../core/errors.js';
import { type RepositoryName, splitRepositoryName } from '../../core/repository-name.js';
import { HubOffsetCapError } from './errors.js';
import { type HubApi, hubUrl, offsetCapEvent, walkPages } from './paging.js';
import { hubV2SearchPageSchema, hubV4SearchPageSchema, parsePullCountText } from './schemas.js';

/**
 * The most results the Hub lists for one search query: its `total` saturates there (§0, §1.5), so a total
 * that reaches it says that more repositories match than the listing holds.
 */
export const SEARCH_RESULT_CAP = 10_000;

/** A repository found by search. */
export interface HubSearchHit {
  namespace: string;
  name: string;
  /** Exact when the endpoint gave a number; the stated lower bound when it gave "1B+" (then approximate). */
  pullCount: number | null;
  pullCountApproximate: boolean;
  starCount: number | null;
  isOfficial: boolean;
  description: string | null;
  /** Which endpoint answered. */
  source: 'v4' | 'v2';
}

export interface HubSearchOptions {
  /** Stop after this many hits. Default: as many as the Hub returns within the page cap. */
  limit?: number;
}

/** Repositories matching `query`, most relevant first. */
export async function* search(
  api: HubApi,
  query: string,
  opts: HubSearchOptions = {},
): AsyncGenerator<HubSearchHit> {
  try {
    yield* searchAny(api, query, opts);
  } catch (err) {
    if (!(err instanceof HubOffsetCapError)) throw err;
    // Search totals saturate at 10 000 (§1.5): none is given as the size of what was left unlisted.
    api.emit(offsetCapEvent('search', err, null));
  }
}

async function* searchAny(
  api: HubApi,
  query: string,
  opts: HubSearchOptions = {},
): AsyncGenerator<HubSearchHit> {
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  if (limit <= 0) return;
  let yielded = 0;
  if (!api.searchV4Unavailable) {
    try {
      for await (const hit of searchV4(api, query, limit)) {
        yielded += 1;
        yield hit;
      }
      return;
    } catch (err) {
      // Only a v4 that fails before answering anything is replaced; later errors are real.
      const unusable =
        err instanceof CorruptInputError || (err instanceof PermanentError && err.status !== 403);
      if (yielded > 0 || !unusable) throw err;
      api.searchV4Unavailable = true;
      api.emit({
        type: 'fallback',
        what: 'search',
        from: hubUrl(api, '/api/search/v4', {}).href,
        to: hubUrl(api, '/v2/search/repositories/', {}).href,
      });
    }
  }
  yield* searchV2(api, query, limit);
}

/**
 * `full` is `namespace/name`; the v2 search gives official images bare (`nginx`), hence the fallback.
 * A name the reference grammar refuses is reported and skipped: it would go into request URLs.
 */
function hitName(api: HubApi, url: string, full: string, fallbackNamespace: string): RepositoryName | null {
  try {
    return splitRepositoryName(full, fallbackNamespace);
  } catch (err) {
    if (!(err instanceof CorruptInputError)) throw err;
    api.emit({ type: 'invalid-name', url, name: full.slice(0, 200) });
    return null;
  }
}

async function* searchV4(api: HubApi, query: string, limit: number): AsyncGenerator<HubSearchHit> {
  let from = 0;
  let yielded = 0;
  for (let pages = 0; pages < api.maxPages; pages++) {
    const size = Math.min(api.pageSize, limit - yielded);
    const url = hubUrl(api, '/api/search/v4', { query, from, size });
    const page = await api.getJson(url, hubV4SearchPageSchema);
    for (const r of page.results) {
      // v4 also lists extensions and plugins; only images have registry content.
      if (r.type && r.type !== 'image') continue;
      const repo = hitName(api, url.href, r.id, r.publisher?.name ?? 'library');
      if (!repo) continue;
      const { namespace, name } = repo;
      const exact = typeof r.pull_count === 'number' || /^\d+$/.test(r.pull_count ?? '');
      yield {
        namespace,
        name,
        pullCount: parsePullCountText(r.pull_count),
        pullCountApproximate: !exact && r.pull_count != null,
        starCount: r.star_count,
        isOfficial: r.badge === 'official' || namespace === 'library',
        description: r.short_description,
        source: 'v4',
      };
      if (++yielded >= limit) return;
    }
    from += page.results.length;
    if (page.results.length === 0 || (page.total != null && from >= page.total)) {
      // Listed to the end, but the end is the Hub's cap: the listing is cut, not complete.
      if (page.total != null && page.total >= SEARCH_RESULT_CAP) {
        api.emit({
          type: 'result-cap',
          url: hubUrl(api, '/api/search/v4', { query }).href,
          total: page.total,
        });
      }
      return;
    }
  }
  api.emit({ type: 'page-cap', url: hubUrl(api, '/api/search/v4', { query }).href, maxPages: api.maxPages });
}

async function* searchV2(api: HubApi, query: string, limit: number): AsyncGenerator<HubSearchHit> {
  const first = hubUrl(api, '/v2/search/repositories/', { query, page: 1, page_size: api.pageSize });
  let yielded = 0;
  for await (const page of walkPages(api, first, hubV2SearchPageSchema)) {
    for (const r of page.results) {
      const repo = hitName(api, page.url, r.repo_name, 'library');
      if (!repo) continue;
      const { namespace, name } = repo;
      yield {
        namespace,
        name,
        pullCount: r.pull_count,
        pullCountApproximate: false,
        starCount: r.star_count,
        isOfficial: r.is_official ?? namespace === 'library',
        description: r.short_description,
        source: 'v2',
      };
      if (++yielded >= limit) return;
    }
  }
}
