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
 * Compares tag names with runs of digits compared as numbers (`v9` < `v10`, `1.9` < `1.10`), anything else
 * by UTF-16 code unit, so the order is the same on every machine (no locale). Equal numbers written
 * differently (`01`, `1`) and otherwise equal names fall back to plain code-unit order, so it is total.
 */
export function compareTagNames(a: string, b: string): number {
  const chunks = (s: string) => s.match(/\d+|\D+/g) ?? [];
  const ca = chunks(a);
  const cb = chunks(b);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const x = ca[i]!;
    const y = cb[i]!;
    if (x === y) continue;
    const xDigits = /^\d/.test(x);
    const yDigits = /^\d/.test(y);
    if (xDigits && yDigits) {
      const xn = x.replace(/^0+(?=\d)/, '');
      const yn = y.replace(/^0+(?=\d)/, '');
      if (xn.length !== yn.length) return xn.length - yn.length;
      if (xn !== yn) return xn < yn ? -1 : 1;
      continue;
    }
    return x < y ? -1 : 1;
  }
  if (ca.length !== cb.length) return ca.length - cb.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The order `--max-tags` keeps tags in: tags with a push date first, newest push first; then tags without
 * one (a plain registry never gives dates), highest name first by compareTagNames (`v10` before `v9`,
 * `1.10` before `1.9`, `latest` before `1.0`). Same-date tags also go highest name first.
 */
export function newestFirst(a: TagCandidate, b: TagCandidate): number {
  const pa = a.pushedAt ? Date.parse(a.pushedAt) : Number.NaN;
  const pb = b.pushedAt ? Date.parse(b.pushedAt) : Number.NaN;
  const ka = !Number.isNaN(pa);
  const kb = !Number.isNaN(pb);
  if (ka !== kb) return ka ? -1 : 1;
  if (ka && kb && pa !== pb) return pb - pa;
  return compareTagNames(b.name, a.name);
}

/**
 * Applies the tag filters: name regex, pushed after/before (tags without a push date pass, because a
 * plain registry never says, and the Hub gives none for a few old pushes), then at most N tags per
 * repository in the order of newestFirst.
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
    out = [...out].sort(newestFirst).slice(0, filters.maxTagsPerRepository);
  }
  return out;
}
