import { createHash } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { LayerFacts } from '../analyzer/facts.js';
import type { CompiledRules, SelectionGap } from '../analyzer/iocs/compile.js';
import { MATCHER_VERSION, matchImage } from '../analyzer/iocs/image-view.js';
import type { IocSet } from '../analyzer/iocs/schema.js';
import { ANALYZER_VERSION } from '../analyzer/layer-stream.js';
import { isDebianDerived } from '../analyzer/os-release.js';
import type { Logger } from '../core/log.js';
import { runSteps, type Steps } from '../core/steps.js';
import { type ImageStore, ImageStore as Images, type OsFacts } from '../db/image-store.js';
import { LayerStore } from '../db/layer-store.js';
import {
  type ImageMatcher,
  LayerFactsCache,
  Rematcher,
  type RematchProgress,
  type RematchResult,
} from '../db/rematch.js';
import type { IocSetRef } from '../db/rows.js';
import { SelectionStore } from '../db/selection-store.js';

/**
 * Identifies the IOC sets, analyzer and matcher versions that findings were computed with: each set by id,
 * version and a hash of its rules. A set edited without a new version is stored over the old one (IocStore), so
 * its rules must change the fingerprint too, or every image matched before would keep findings that the
 * stored rules no longer produce.
 */
export function matchFingerprint(sets: readonly IocSet[]): string {
  const ids = sets
    .map((s) => `${s.id}@${s.version}#${createHash('sha256').update(JSON.stringify(s.rules)).digest('hex')}`)
    .sort();
  return createHash('sha256')
    .update(JSON.stringify({ analyzer: ANALYZER_VERSION, matcher: MATCHER_VERSION, sets: ids }))
    .digest('hex')
    .slice(0, 16);
}

/**
 * What an image's layers say about its OS: the uppermost os-release wins, as in the final filesystem.
 * A failed layer (null facts) says nothing.
 */
export function osFactsOf(stack: ReadonlyArray<{ facts: LayerFacts | null }>): OsFacts {
  const layers = stack.filter((l): l is { facts: LayerFacts } => l.facts !== null);
  let osId: string | null = null;
  let osVersion: string | null = null;
  let debianVersion: string | null = null;
  for (const { facts } of layers) {
    const files = [...facts.osRelease].sort((a, b) => rank(a.path) - rank(b.path));
    for (const o of files) {
      if (o.path === '/etc/debian_version') debianVersion = o.fields.VERSION ?? debianVersion;
      else {
        osId = o.fields.ID ?? osId;
        osVersion = o.fields.VERSION_ID ?? o.fields.VERSION_CODENAME ?? osVersion;
      }
    }
  }
  const isDebian = isDebianDerived(
    layers.flatMap((l) => l.facts.osRelease),
    layers.flatMap((l) => l.facts.packages),
  );
  return { isDebianDerived: isDebian, osId, osVersion: osVersion ?? debianVersion };
}

/** /usr/lib/os-release is the fallback for /etc/os-release, so it is applied first. */
function rank(path: string): number {
  return path === '/usr/lib/os-release' ? 0 : 1;
}

/** What each kind of gap means for a match from stored facts, and what to do (CompiledRules.gapsOf). */
const GAP_WARNINGS: Record<SelectionGap, string> = {
  files:
    'layers were analyzed when fewer files were hashed: new file-sha256/file-md5 rules match only the files hashed then; crawl their images again with these IOC sets (or --hash-all-files) to re-analyze them',
  signatures:
    'layers were not scanned for some of these byte-signature patterns: a new or edited byte-signature rule finds nothing in them until a crawl with these IOC sets analyzes them again',
  paths:
    "layers were analyzed with every file hashed (--hash-all-files), so file rules match in them; only a symlink at a new rule's paths was not recorded, so in_final_fs may still count a file that an upper layer replaced with a symlink there",
  unknown:
    'layers were analyzed with another candidate selection that the dataset does not describe: new file rules match only files hashed then; crawl their images again (or use --hash-all-files) to re-analyze them',
};

/**
 * Warns when analyzed layers had their candidate files chosen by other rules than `rules`: their images are
 * matched from facts that may lack what a new rule needs, so a clean verdict for them means less. One
 * warning per kind of gap (a layer can have several), saying what a match misses and what to do: more files
 * hashed, more signatures scanned, or only symlinks at new paths unrecorded. A crawl re-analyzes the layers
 * it reaches; the rest, and layers whose re-analysis failed, keep their old facts. Layers whose selection
 * covers the current one (`selections`, from SelectionStore.covering) are not counted. Returns how many
 * such layers the dataset holds.
 */
export function warnOfOtherSelection(
  db: Database,
  rules: Pick<CompiledRules, 'gapsOf'>,
  selections: readonly string[],
  log: Logger,
): number {
  const definitions = new SelectionStore(db).definitions();
  const byGap = new Map<SelectionGap, number>();
  let total = 0;
  for (const { selection, layers } of new LayerStore(db).countByOtherSelection(selections)) {
    total += layers;
    const definition = selection === null ? undefined : definitions.get(selection);
    const gaps = definition === undefined ? (['unknown'] as const) : rules.gapsOf(definition);
    for (const gap of gaps) byGap.set(gap, (byGap.get(gap) ?? 0) + layers);
  }
  for (const [gap, layers] of byGap) log.warn({ layers, gap }, GAP_WARNINGS[gap]);
  return total;
}

export interface MatchResult extends RematchResult {
  /**
   * Findings removed because their set is not among `sets` (`<id>@<version>` → rows): an image's findings
   * are replaced as a whole, so a match without a set drops what that set had found in the images it
   * re-matched. Callers warn: loading the set again (--ioc, or `iocFiles` in the config) brings them back.
   */
  removedOfUnloadedSets: Record<string, number>;
}

/** The crawl's and rematch's image matcher: records the image's OS facts and returns its evidence. */
export function imageMatcher(images: ImageStore, sets: readonly IocSet[]): ImageMatcher {
  return (layers, image) => {
    images.setOsFacts(image.digest, osFactsOf(layers));
    return matchImage(layers, sets as IocSet[]);
  };
}

/**
 * Gives images left unmatched (a layer pending: debianOnly never analyzes the upper layers of a non-Debian
 * base) the verdict of their analyzed base layer, so `is_debian_derived = 0` lists the images it excluded.
 */
export function decideOsFromBase(
  images: ImageStore,
  undecided: ReadonlyArray<{ digest: string; baseLayer: string }>,
  factsOf: (layer: string) => LayerFacts | undefined,
): void {
  for (const { digest, baseLayer } of undecided) {
    const facts = factsOf(baseLayer);
    if (facts) images.setOsFacts(digest, osFactsOf([{ facts }]));
  }
}

/**
 * Matches images against the IOC sets from stored facts alone (no network) and records their OS facts.
 * By default only images whose findings are stale (new image, re-analyzed layer, other IOC sets). A crawl
 * matches images as their items complete them (RunMatcher); this is its safety net at the end of the run.
 */
export function matchImages(
  db: Database,
  sets: IocSet[],
  runId: number | null,
  opts: { all?: boolean } = {},
): MatchResult {
  return runSteps(matchImageSteps(db, sets, runId, opts));
}

/** matchImages one image a step (Rematcher.steps), for a rematch that stops between images on a signal. */
export function* matchImageSteps(
  db: Database,
  sets: IocSet[],
  runId: number | null,
  opts: { all?: boolean } = {},
): Steps<RematchProgress, MatchResult> {
  const images: ImageStore = new Images(db);
  const fingerprint = matchFingerprint(sets);
  const imageDigests = opts.all ? undefined : images.needingMatch(fingerprint);
  const facts = new LayerFactsCache(db);
  const { removedOfOtherSets, ...result } = yield* new Rematcher(db, facts).steps(
    imageMatcher(images, sets),
    runId,
    {
      matchFingerprint: fingerprint,
      loadedSetIds: sets.map((s) => s.id),
      ...(imageDigests ? { imageDigests } : {}),
    },
  );
  decideOsFromBase(images, images.undecidedWithAnalyzedBase(), (layer) => facts.get(layer));
  return { ...result, removedOfUnloadedSets: removedOfOtherSets ?? {} };
}

/**
 * Warns of IOC sets loaded with other rules than the dataset held under the same id and version
 * (IocStore.putSets): their findings are about to be replaced, and what was cited as `id@version` no
 * longer means one thing.
 */
export function warnOfEditedSets(changed: readonly IocSetRef[], log: Logger): void {
  if (changed.length === 0) return;
  log.warn(
    { sets: changed.map((s) => `${s.id}@${s.version}`) },
    'IOC sets loaded with other rules than the dataset stored under the same id and version: their findings are replaced, and a finding cited under that version no longer means one thing; give an edited set a new version',
  );
}

/** Warns of findings a match removed with their set not loaded; the count of rows removed. */
export function warnOfRemovedFindings(
  result: Pick<MatchResult, 'removedOfUnloadedSets'>,
  log: Logger,
): number {
  const sets = Object.keys(result.removedOfUnloadedSets);
  if (sets.length === 0) return 0;
  log.warn(
    { removed: result.removedOfUnloadedSets },
    `findings of IOC sets not loaded now were removed from the images matched again (${sets.join(', ')}): load those sets (--ioc, or iocFiles in the config file) to keep them`,
  );
  return Object.values(result.removedOfUnloadedSets).reduce((a, b) => a + b, 0);
}
