import type { IocSet } from '../analyzer/iocs/schema.js';
import { ANALYZER_VERSION } from '../analyzer/layer-stream.js';
import type { Config } from '../config/schema.js';
import { formatReference, parseReference, parseRepository } from '../crawler/registry/reference.js';
import type { RunRow } from '../db/run-store.js';
import { catalogSeedUrl } from './seeds.js';

/**
 * The settings that decide what a run observes: seeds, filters, what is analyzed and matched. Budgets,
 * concurrency, timeouts and logging are left out, since resuming with a larger pull budget or another
 * log level is the point of resuming.
 */
export const STUDY_KEYS = [
  'seeds',
  'filters',
  'iocFiles',
  'noBuiltinIocs',
  'hashAllFiles',
  'debianOnly',
  'hubApiUrl',
  'registryMirror',
] as const;

/** One of the settings that decide what a run observes (STUDY_KEYS). */
export type StudyKey = (typeof STUDY_KEYS)[number];

/** How each kind of seed is spelled canonically: as the frontier item it becomes (seeds.ts). */
const CANONICAL_SEED: Record<string, (seed: string) => string> = {
  images: (s) => formatReference(parseReference(s)),
  repos: (s) => {
    const r = parseRepository(s);
    return `${r.registry}/${r.repository}`;
  },
  catalogs: (s) => catalogSeedUrl(s).href,
};

/** A seed as its frontier item names it; one that does not parse (refused anyway) as written. */
function canonicalSeed(kind: string, seed: string): string {
  const canonical = CANONICAL_SEED[kind];
  if (!canonical) return seed;
  try {
    return canonical(seed);
  } catch {
    return seed;
  }
}

function studyOf(
  config: Record<string, unknown>,
  iocSets: ReadonlyArray<{ id: string; version: string }>,
  analyzer: string,
) {
  const picked = Object.fromEntries(STUDY_KEYS.map((k) => [k, config[k] ?? null]));
  // The seeds are sets: `--image b --image a` (or `scan b a`) names the same study as `a b`; and each is
  // taken as the seed item it makes, so `debian` and `docker.io/library/debian`, or a catalog URL with and
  // without its trailing slash, name the same study (seeds.ts keys the frontier items the same way).
  if (typeof picked.seeds === 'object' && picked.seeds !== null) {
    picked.seeds = Object.fromEntries(
      Object.entries(picked.seeds as Record<string, unknown>).map(([k, v]) => [
        k,
        Array.isArray(v) ? [...new Set(v.map((s) => canonicalSeed(k, String(s))))].sort() : v,
      ]),
    );
  }
  const sets = iocSets.map((s) => `${s.id}@${s.version}`).sort();
  return JSON.stringify({ ...picked, sets, analyzer });
}

/**
 * Whether an unfinished run can be resumed with this configuration: same seeds, filters, IOC sets and
 * analyzer. Otherwise its recorded provenance (config, IOC sets) would describe another study than the
 * one its findings come from, so a new run starts instead (the unfinished run's pending work is shared).
 */
export function sameStudy(last: RunRow, config: Readonly<Config>, iocSets: readonly IocSet[]): boolean {
  if (typeof last.config !== 'object' || last.config === null) return false;
  return (
    studyOf(last.config as Record<string, unknown>, last.iocSets, last.analyzerVersion) ===
    studyOf(JSON.parse(JSON.stringify(config)) as Record<string, unknown>, iocSets, ANALYZER_VERSION)
  );
}

/**
 * Whether a run an older hubcrawl started (another analyzer version) is left unfinished: no command of
 * this hubcrawl can resume it, as its layers mean other facts here, so nothing waits for it either.
 */
export function byAnotherAnalyzer(last: RunRow): boolean {
  return last.analyzerVersion !== ANALYZER_VERSION;
}
