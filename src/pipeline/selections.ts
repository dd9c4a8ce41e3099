/**
 * Gives back the definitions of the selections that layers of a dataset from before schema 5 were
 * analyzed under (migration 0005 added the `selections` table; older layers carry only a fingerprint).
 * Each crawl run names its IOC sets (run_ioc_sets, their JSON kept in ioc_sets): compiled again, with and
 * without hashing every file, they give its selection's fingerprint and definition exactly,
 * and where that fingerprint is one a layer carries, the definition is recorded. With it, a crawl with
 * fewer sets reuses those layers instead of downloading them all again, and their signature hits, stored
 * without their pattern, are matched with the pattern that found them (LayerStore.loadFacts).
 */
import type { Database } from 'better-sqlite3';
import { compileRules } from '../analyzer/iocs/compile.js';
import { parseIocSet } from '../analyzer/iocs/load.js';
import type { IocSet } from '../analyzer/iocs/schema.js';
import { IocStore } from '../db/ioc-store.js';
import { RunStore } from '../db/run-store.js';
import { SelectionStore } from '../db/selection-store.js';

/** Records the definitions it can give back; returns how many. Nothing to do on a dataset made since schema 5. */
export function backfillSelections(db: Database): number {
  const selections = new SelectionStore(db);
  const wanted = new Set(selections.unrecorded());
  if (wanted.size === 0) return 0;
  const iocs = new IocStore(db);
  let added = 0;
  for (const refs of new RunStore(db).iocSetLists()) {
    if (wanted.size === 0) break;
    const sets = setsAsStored(iocs, refs);
    if (sets === null) continue;
    // Both with and without --hash-all-files, rather than trusting the run's recorded config: only a
    // fingerprint a layer carries is recorded, and it is the sha256 of the definition beside it.
    for (const hashAllFiles of [false, true]) {
      const rules = compileRules(sets, { hashAllFiles });
      if (!wanted.has(rules.fingerprint)) continue;
      selections.remember(rules);
      wanted.delete(rules.fingerprint);
      added += 1;
    }
  }
  return added;
}

/**
 * The sets as the dataset keeps them, or null when one is missing or no longer loads (a rule today's
 * validation refuses): that run's selection then stays unknown, as before schema 5.
 */
function setsAsStored(iocs: IocStore, refs: ReadonlyArray<{ id: string; version: string }>): IocSet[] | null {
  const sets: IocSet[] = [];
  for (const ref of refs) {
    const row = iocs.get(ref.id, ref.version);
    if (row === undefined) return null;
    try {
      sets.push(parseIocSet(row.set, `the dataset's IOC set ${ref.id}@${ref.version}`));
    } catch {
      return null;
    }
  }
  return sets;
}
