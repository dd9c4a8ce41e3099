import { AsyncLocalStorage } from 'node:async_hooks';
import type { HubEvent } from '../crawler/hub/client.js';
import { SIGN_IN_ADVICE } from '../crawler/hub/errors.js';
import type { RegistryEvent } from '../crawler/registry/client.js';
import type { RegistryListingCut } from '../crawler/registry/paging.js';

/**
 * Hub events that end a listing before its last page (crawler/hub/paging.ts): what was listed may not be all.
 * `offset-cap` is the Hub's anonymous offset cap where nothing lists the rest (search, a namespace, dated tags);
 * a tag listing that goes on with the registry's tags/list (`tags-fallback`) is whole and is no cut.
 */
type HubListingCut = Extract<
  HubEvent,
  {
    type: 'foreign-next' | 'next-loop' | 'next-gone' | 'bad-next' | 'page-cap' | 'offset-cap' | 'result-cap';
  }
>;

/**
 * A listing that stopped before its last page: the Hub web API's (crawler/hub/paging.ts) or a registry's
 * tags/list or _catalog (crawler/registry/paging.ts), which also names the listing it cut.
 */
export type ListingCut = HubListingCut | RegistryListingCut;

/** Recorded with the item (frontier `last_error_code`, `failures.error_code`) whose listing was cut short. */
export const LISTING_INCOMPLETE = 'LISTING_INCOMPLETE';

/** Every kind of cut, as a record so that a new kind cannot be left out (it would go unrecorded). */
const CUT_TYPES: Record<ListingCut['type'], true> = {
  'foreign-next': true,
  'next-loop': true,
  'next-gone': true,
  'bad-next': true,
  'page-cap': true,
  'entry-cap': true,
  'offset-cap': true,
  'result-cap': true,
};

function isCut(e: HubEvent | RegistryEvent): e is ListingCut {
  return Object.hasOwn(CUT_TYPES, e.type);
}

/**
 * Ties the Hub and registry clients' paging events to the frontier item whose handler met them. One client
 * serves every item in flight and reports through one callback, so each handler runs in its own async scope
 * and an event lands in the scope it was emitted from — no listener threaded through the crawler's listing API.
 */
export class ListingCuts {
  private readonly scope = new AsyncLocalStorage<ListingCut[]>();

  /** Runs one item's handler and returns its result with the cuts its listings met. */
  async track<T>(handler: () => Promise<T>): Promise<{ result: T; cuts: ListingCut[] }> {
    const cuts: ListingCut[] = [];
    const result = await this.scope.run(cuts, handler);
    return { result, cuts };
  }

  /** The cuts the running handler's listings met so far (none outside a handler). */
  soFar(): readonly ListingCut[] {
    return this.scope.getStore() ?? [];
  }

  /** For the Hub and registry clients' onEvent: remembers a cut for the item whose handler emitted it. */
  note(e: HubEvent | RegistryEvent): void {
    if (isCut(e)) this.scope.getStore()?.push(e);
  }
}

function why(cut: ListingCut): string {
  switch (cut.type) {
    case 'foreign-next':
      return `its next page is on another origin or path (${cut.next}), which is never followed`;
    case 'next-loop':
      return `its next page ${cut.next} was listed before (a paging loop)`;
    case 'next-gone':
      return (
        `its next page ${cut.next} answered 404: the listing shrank while it was paged, and Docker Hub pages ` +
        'by offset, so entries may have moved onto pages already read'
      );
    case 'bad-next':
      return `its next link is not a URL (${cut.next})`;
    case 'page-cap':
      return `it reached the cap of ${cut.maxPages} pages`;
    case 'entry-cap':
      return `it named more than ${cut.maxEntries} entries, the most one listing is read for (a registry that lists without end)`;
    case 'offset-cap':
      return offsetCapWhy(cut);
    case 'result-cap':
      return (
        `its total reached ${cut.total}, the most Docker Hub lists for one query: more repositories match ` +
        'than it listed; split the search into narrower queries (longer prefixes) or crawl the namespaces'
      );
  }
}

/** The Hub's offset cap: how far it listed, why the rest is missing, and how to get it. */
function offsetCapWhy(cut: Extract<ListingCut, { type: 'offset-cap' }>): string {
  const of = cut.total !== null && cut.total > cut.offset ? ` of ${cut.total}` : '';
  const things = { search: 'hits', repositories: 'repositories', tags: 'tags with their push dates' }[
    cut.what
  ];
  const refused = cut.authenticated
    ? `Docker Hub refused to page past item ${cut.offset}${of} although we signed in`
    : `Docker Hub refuses anonymous paging past item ${cut.offset}${of} (its offset cap)`;
  // Only tags have another source past the cap, the registry's tags/list; without push dates it cannot
  // serve --pushed-after/--pushed-before, and letting every undated tag through would spend the pull quota.
  const dates =
    cut.what === 'tags'
      ? "; the registry's tags/list names the other tags but without push dates, so --pushed-after/--pushed-before " +
        'cannot be applied to them and they were left out'
      : '';
  const lift = cut.authenticated
    ? `check that the Docker Hub token is valid to list the other ${things}`
    : `${SIGN_IN_ADVICE} to list the other ${things}`;
  return `${refused}${dates}; ${lift}`;
}

/** Which listing was cut: a registry's is named by its first URL (a repository's tags/list, the _catalog). */
function which(cut: ListingCut): string {
  if ('listing' in cut) return `registry listing ${cut.listing}`;
  if (cut.type === 'result-cap') return 'Docker Hub search';
  if (cut.type !== 'offset-cap') return 'Docker Hub listing';
  return {
    search: 'Docker Hub search',
    repositories: 'Docker Hub repository listing',
    tags: 'Docker Hub tag listing',
  }[cut.what];
}

/** The failure recorded for an item whose listing stopped early: the first cut, and how many there were. */
export function incompleteListing(cuts: readonly ListingCut[]): { code: string; message: string } {
  const [first] = cuts;
  if (!first) throw new Error('incompleteListing needs at least one cut');
  const more = cuts.length > 1 ? ` (and ${cuts.length - 1} more listing cut short)` : '';
  return {
    code: LISTING_INCOMPLETE,
    message: `${which(first)} stopped at ${first.url}: ${why(first)}; what it listed was crawled, the rest may be missing${more}`,
  };
}
