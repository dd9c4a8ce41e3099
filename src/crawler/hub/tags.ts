/**
 * Tags of a repository with the digest each points at, its per-platform manifest digests and push
 * dates (docker-hub-api.md §1.4) — the main crawl primitive: it learns digests without one counted
 * registry pull. Anonymous paging ends at the Hub's offset cap with HubOffsetCapError, which
 * listTagsWithFallback catches to continue with the registry's `tags/list` (or, where the caller
 * filters by push date, to end the listing as cut short).
 */
import type { Digest } from '../../core/digest.js';
import { HubOffsetCapError } from './errors.js';
import { type FetchedPage, type HubApi, hubUrl, offsetCapEvent, seg, walkWithFallback } from './paging.js';
import { type HubTagJson, hubTagPageSchema } from './schemas.js';

/** One platform image of a tag (attestation entries `unknown/unknown` are left out). */
export interface HubTagImage {
  os: string;
  architecture: string;
  variant: string | null;
  /** The platform manifest digest. */
  digest: Digest | null;
  /** When this platform's content was pushed; older than the tag's push when it was re-tagged. */
  lastPushed: string | null;
  size: number | null;
}

/** A tag with what it points at, as the Hub API lists it. */
export interface HubTag {
  name: string;
  /** The index or manifest digest the tag points at. */
  digest: Digest | null;
  mediaType: string | null;
  contentType: string | null;
  /** `tag_last_pushed`: when the tag last moved. */
  lastPushed: string | null;
  lastUpdated: string | null;
  images: HubTagImage[];
}

export interface HubTagListOptions {
  /** The undocumented `name` parameter: tags whose name contains this substring. */
  nameFilter?: string;
  /** e.g. `last_updated`, `-last_updated`, `name` (undocumented, passed through). */
  ordering?: string;
  /** Start at this page (1-based) to resume a walk recorded per page. */
  fromPage?: number;
}

/** The Hub's JSON → our shape. */
export function toHubTag(t: HubTagJson): HubTag {
  return {
    name: t.name,
    digest: t.digest,
    mediaType: t.media_type,
    contentType: t.content_type,
    lastPushed: t.tag_last_pushed,
    lastUpdated: t.last_updated,
    images: t.images
      // BuildKit attestation manifests are listed as unknown/unknown; they are not images (§1.4).
      .filter((i) => !(i.os === 'unknown' && i.architecture === 'unknown'))
      .map((i) => ({
        os: i.os ?? 'unknown',
        architecture: i.architecture ?? 'unknown',
        variant: i.variant || null,
        digest: i.digest,
        lastPushed: i.last_pushed,
        size: i.size,
      })),
  };
}

/** Tag pages of `namespace/name`, page_size 100, `next` followed verbatim on our origin only. */
export async function* listTagPages(
  api: HubApi,
  namespace: string,
  name: string,
  opts: HubTagListOptions = {},
): AsyncGenerator<FetchedPage<HubTag>> {
  const params = {
    page: Math.max(1, Math.floor(opts.fromPage ?? 1)),
    page_size: api.pageSize,
    name: opts.nameFilter,
    ordering: opts.ordering,
  };
  const routes = {
    current: hubUrl(api, `/v2/namespaces/${seg(namespace)}/repositories/${seg(name)}/tags`, params),
    legacy: hubUrl(api, `/v2/repositories/${seg(namespace)}/${seg(name)}/tags/`, params),
  };
  for await (const page of walkWithFallback(api, 'tags', routes, hubTagPageSchema)) {
    yield { ...page, results: page.results.map(toHubTag) };
  }
}

/** A tag and where it was learnt: the Hub API (with digests) or the registry's tags/list (name only). */
export interface SourcedTag {
  tag: HubTag;
  source: 'hub' | 'registry';
}

export interface HubTagFallbackOptions extends HubTagListOptions {
  /**
   * The caller keeps tags by push date (`--pushed-after`/`--pushed-before`). The registry's tags/list
   * gives names only, so past the offset cap there is nothing to filter by: the listing ends there
   * with an `offset-cap` event instead of handing over undated names that every date filter would pass.
   */
  pushDatesRequired?: boolean;
}

/**
 * Every tag of a repository: the Hub API first, then — when it refuses to page further
 * anonymously — the names from `registryTags` (the registry's tags/list, which has no cap) that
 * the Hub did not deliver. Those come without digests or dates: HEAD them for the digest.
 * With `pushDatesRequired` the registry is not asked (see HubTagFallbackOptions).
 */
export async function* listTagsWithFallback(
  api: HubApi,
  namespace: string,
  name: string,
  registryTags: () => AsyncIterable<string>,
  opts: HubTagFallbackOptions = {},
): AsyncGenerator<SourcedTag> {
  const seen = new Set<string>();
  let total: number | null = null;
  try {
    for await (const page of listTagPages(api, namespace, name, opts)) {
      total = page.count;
      for (const tag of page.results) {
        seen.add(tag.name);
        yield { tag, source: 'hub' };
      }
    }
    return;
  } catch (err) {
    if (!(err instanceof HubOffsetCapError)) throw err;
    // Why not page newest first (`ordering=-last_updated`) and stop at the cutoff instead: that ordering
    // is documented for namespace listings only, tag listings were seen with `ordering=last_updated` alone
    // (docker-hub-api.md §1.2, §1.4); it sorts by `last_updated`, not the `tag_last_pushed` the filters
    // use; and the cap would still end a walk where more tags than it lets through are newer than the
    // cutoff. Leaving the rest out, as a listing cut short that says to sign in, is right whatever the
    // Hub does with the parameter.
    if (opts.pushDatesRequired) {
      api.emit(offsetCapEvent('tags', err, total));
      return;
    }
    api.emit({
      type: 'tags-fallback',
      url: err.url,
      offset: err.offset,
      message: `${err.message}; the rest of the tag names come from the registry's tags/list, without digests or push dates`,
    });
  }
  for await (const tagName of registryTags()) {
    if (seen.has(tagName)) continue;
    if (opts.nameFilter !== undefined && !tagName.includes(opts.nameFilter)) continue;
    seen.add(tagName);
    yield {
      tag: {
        name: tagName,
        digest: null,
        mediaType: null,
        contentType: null,
        lastPushed: null,
        lastUpdated: null,
        images: [],
      },
      source: 'registry',
    };
  }
}
