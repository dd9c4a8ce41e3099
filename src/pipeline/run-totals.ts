/**
 * A run resumed after an interrupt, a spent pull budget or a kill is one run in the dataset, but each
 * invocation counts only its own work. The whole run's counts, the ones a study cites, are the sum over
 * its invocations: each invocation's recorded stats carry `wholeRun`, the earlier invocations' sum plus
 * its own, so the last record of a run holds its totals whichever invocation wrote it.
 */
import { isPlainObject } from '../core/plain-object.js';

/** The counters that add up across invocations: the crawl counters and the HTTP counters. */
export type AdditiveStats = Record<string, unknown>;

/** Every number in `b` added to `a`'s at the same place; objects merged level by level. */
export function addStats(a: AdditiveStats, b: AdditiveStats): AdditiveStats {
  const out: AdditiveStats = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const prior = out[key];
    if (typeof value === 'number') out[key] = (typeof prior === 'number' ? prior : 0) + value;
    else if (isPlainObject(value)) out[key] = addStats(isPlainObject(prior) ? prior : {}, value);
  }
  return out;
}

/**
 * The hosts that answered the run's earlier invocations, from their last record (`answeredHosts`, kept
 * and extended by each invocation). Empty for a record without them.
 */
export function answeredHostsOf(recorded: unknown): string[] {
  if (!isPlainObject(recorded) || !Array.isArray(recorded.answeredHosts)) return [];
  return recorded.answeredHosts.filter((h): h is string => typeof h === 'string');
}

/**
 * Counts that do not add up across invocations: an image matched in two invocations counts in both. The
 * run's findings are its rows in the dataset (run_summary), which stats shows.
 */
const NOT_ADDITIVE: ReadonlySet<string> = new Set(['findings']);

function additiveOnly(stats: AdditiveStats): AdditiveStats {
  return Object.fromEntries(Object.entries(stats).filter(([key]) => !NOT_ADDITIVE.has(key)));
}

/** The whole run after this invocation: the earlier invocations' sum plus this one's own counts. */
export function wholeRunWith(earlier: AdditiveStats, own: AdditiveStats): AdditiveStats {
  return addStats(earlier, additiveOnly({ invocations: 1, ...own }));
}

/**
 * What the earlier invocations of a run add up to, read from the run's recorded stats: their `wholeRun`
 * when an earlier resumed invocation wrote one; otherwise the first invocation's own counters (`counters`
 * names them: a final record also holds counts that do not add up, such as the frontier's states). An
 * invocation killed before its first record still counts as one, its work unknown.
 */
export function earlierInvocations(recorded: unknown, counters: readonly string[]): AdditiveStats {
  if (!isPlainObject(recorded)) return { invocations: 1 };
  // Older records summed findings too.
  if (isPlainObject(recorded.wholeRun)) return additiveOnly(recorded.wholeRun);
  const own: AdditiveStats = { invocations: 1 };
  for (const key of [...counters, 'http']) if (key in recorded) own[key] = recorded[key];
  return additiveOnly(own);
}
