import type { Config } from '../config/schema.js';

/** A tag as discovery knows it, before filtering. */
export interface TagCandidate {
  name: string;
  digest: string | null;
  /** When the tag last moved (Hub `tag_last_pushed`); null from a plain registry's tags/list. */
  pushedAt: string | null;
}

/**
 * Whether the filters keep tags by push date. Docker Hub's tag listing ends at the anonymous offset cap,
 * and the registry's tags/list that names the rest gives no dates: with a date filter those tags are left
 * out and the listing recorded as cut short (handlers/discovery.ts), never passed through undated here.
 */
export function pushDatesRequired(filters: Config['filters']): boolean {
  return filters.pushedAfter !== undefined || filters.pushedBefore !== undefined;
}

/**
 * Applies the tag filters: name regex, pushed after/before (tags without a push date pass, because a
 * plain registry never says, and the Hub gives none for a few old pushes), then at most N tags per
 * repository, newest first where dates are known.
 */
export function filterTags<T extends TagCandidate>(tags: readonly T[], filters: Config['filters']): T[] {
  const re = filters.tags ? new RegExp(filters.tags) : null;
  const after = filters.pushedAfter ? Date.parse(filters.pushedAfter) : null;
  const before = filters.pushedBefore ? Date.parse(filters.pushedBefore) : null;
  let out = tags.filter((t) => {
    if (re && !re.test(t.name)) return false;
    const pushed = t.pushedAt ? Date.parse(t.pushedAt) : Number.NaN;
    if (Number.isNaN(pushed)) return true;
    if (after !== null && pushed < after) return false;
    if (before !== null && pushed >= before) return false;
    return true;
  });
  if (filters.maxTagsPerRepository !== undefined && out.length > filters.maxTagsPerRepository) {
    out = [...out]
      .sort((a, b) => (b.pushedAt ?? '').localeCompare(a.pushedAt ?? '') || a.name.localeCompare(b.name))
      .slice(0, filters.maxTagsPerRepository);
  }
  return out;
}
