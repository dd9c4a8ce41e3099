import type { Config } from '../../config/schema.js';
import { ConfigError } from '../../core/errors.js';
import { countLayersFailedBeforeRun } from '../../db/failed-layers.js';
import { failedInRunFirst } from '../../db/frontier.js';
import { acquireCrawlLock } from '../../db/lock.js';
import { openDatabase } from '../../db/open.js';
import type { LayerScope } from '../../pipeline/layer-scope.js';
import { type CrawlOutcome, runCrawl } from '../../pipeline/run.js';
import type { RunCommand } from '../../pipeline/run-start.js';
import { seedItems } from '../../pipeline/seeds.js';
import {
  type CommonOptions,
  commandLogger,
  configFor,
  iocSetsFor,
  refuseUnfinishedRun,
  stripUndefined,
} from '../context.js';
import { releaseEarlySignals } from '../early-signals.js';
import { EXIT } from '../exit.js';
import { FAILED_ITEMS_NAMED, tellFailedItems, tellRemovedFindings } from '../notices.js';
import { counted } from '../plural.js';
import { createProgressReporter } from '../progress.js';
import { onStopSignal } from '../stop-signals.js';
import { refuseDatasetAsOutput } from '../write-result.js';

/** Flags of `crawl` and `scan` that map onto config settings. */
export interface CrawlFlags extends CommonOptions {
  image?: string[];
  repo?: string[];
  namespace?: string[];
  search?: string[];
  catalog?: string[];
  seeds?: string[];
  tags?: string;
  pushedAfter?: string;
  pushedBefore?: string;
  platform?: string[];
  ioc?: string[];
  builtinIocs?: boolean;
  concurrency?: number;
  layerConcurrency?: number;
  maxPulls?: number;
  maxAttempts?: number;
  maxTags?: number;
  hubApi?: string;
  registryMirror?: string;
  insecureRegistry?: string[];
  dockerConfig?: string;
  debianOnly?: boolean;
  hashAllFiles?: boolean;
  fresh?: boolean;
}

const nonEmpty = (a: string[] | undefined) => (a && a.length > 0 ? a : undefined);

/** Flags → the config file's shape (only what was given, so the file's values stay otherwise). */
export function crawlFlagSettings(f: CrawlFlags): Record<string, unknown> {
  const seeds = stripUndefined({
    images: nonEmpty(f.image),
    repos: nonEmpty(f.repo),
    namespaces: nonEmpty(f.namespace),
    searches: nonEmpty(f.search),
    catalogs: nonEmpty(f.catalog),
    files: nonEmpty(f.seeds),
  });
  const filters = stripUndefined({
    tags: f.tags,
    pushedAfter: f.pushedAfter,
    pushedBefore: f.pushedBefore,
    platforms: nonEmpty(f.platform),
    maxTagsPerRepository: f.maxTags,
  });
  const registries: Record<string, { scheme: 'http' }> = {};
  for (const host of f.insecureRegistry ?? []) registries[host] = { scheme: 'http' };
  return stripUndefined({
    seeds: Object.keys(seeds).length ? seeds : undefined,
    filters: Object.keys(filters).length ? filters : undefined,
    iocFiles: nonEmpty(f.ioc),
    noBuiltinIocs: f.builtinIocs === false ? true : undefined,
    concurrency: f.concurrency,
    layerConcurrency: f.layerConcurrency,
    maxPulls: f.maxPulls,
    maxAttempts: f.maxAttempts,
    hubApiUrl: f.hubApi,
    registryMirror: f.registryMirror,
    registries: Object.keys(registries).length ? registries : undefined,
    dockerConfig: f.dockerConfig,
    debianOnly: f.debianOnly,
    hashAllFiles: f.hashAllFiles,
    logLevel: f.logLevel,
  });
}

/** The exit code of a finished crawl (README "Exit codes"). */
export function crawlExitCode(o: CrawlOutcome): number {
  if (o.status === 'aborted') return EXIT.aborted;
  return o.status === 'completed-with-failures' ? EXIT.itemsFailed : EXIT.ok;
}

/** Runs (or resumes) a crawl with the given settings, with the lock, progress display and signals. */
export async function crawlWith(
  f: CrawlFlags,
  extraSettings: Record<string, unknown> = {},
  opts: {
    refuseUnfinished?: boolean;
    outputFile?: string;
    layerScope?: LayerScope;
    command?: RunCommand;
  } = {},
): Promise<{
  outcome: CrawlOutcome;
  dbPath: string;
  config: Readonly<Config>;
}> {
  const config = configFor(f, { ...crawlFlagSettings(f), ...extraSettings });
  // A command that writes a result after the crawl (scan --out) refuses the dataset's own file first.
  if (opts.outputFile !== undefined) refuseDatasetAsOutput(opts.outputFile, config.db);
  const s = config.seeds;
  if (
    s.images.length +
      s.repos.length +
      s.namespaces.length +
      s.searches.length +
      s.catalogs.length +
      s.files.length ===
    0
  ) {
    throw new ConfigError(
      'nothing to crawl: give seeds with --image, --repo, --namespace, --search, --catalog or --seeds (or in --config)',
    );
  }
  // Every seed checked before the dataset is made: a refused one (a catalog URL with a path, an ftp://
  // URL) leaves no new dataset file behind, as a refused config does. The run queues them again.
  seedItems(config, 0);
  const log = commandLogger(f, config);
  const iocSets = await iocSetsFor(config);
  const lock = acquireCrawlLock(config.db);
  let db: ReturnType<typeof openDatabase>;
  try {
    db = openDatabase(config.db);
    // A scan resumes its own unfinished run (the same study), as its SIGINT message promises.
    if (opts.refuseUnfinished) refuseUnfinishedRun(db, config.db, { config, iocSets });
  } catch (err) {
    // A dataset that cannot be opened (newer schema, damaged) must not leave the lock behind.
    lock.release();
    throw err;
  }
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    log.warn(
      { signal },
      'stopping: finishing in-flight writes; run the same command to resume (a second signal ends it at once)',
    );
    controller.abort(new Error(signal));
  };
  // A second signal ends the process at once (stop-signals.ts), losing no more than a kill does.
  const stopListening = onStopSignal(stop);
  // One that came while the command started up stops the run as soon as it begins (early-signals.ts).
  const early = releaseEarlySignals();
  if (early) {
    stopListening();
    stop(early);
  }
  const reporter = createProgressReporter({ stream: process.stderr, log, quiet: f.quiet === true });
  try {
    const outcome = await runCrawl(db, {
      config,
      iocSets,
      log,
      signal: controller.signal,
      onProgress: (p) => reporter.update(p),
      ...(f.fresh ? { fresh: true } : {}),
      ...(opts.layerScope ? { layerScope: opts.layerScope } : {}),
      ...(opts.command ? { command: opts.command } : {}),
    });
    reporter.done();
    if (outcome.abortReason) {
      // Budget and rate-limit errors already say how to go on; others get the resume hint.
      const hint = /resume/i.test(outcome.abortReason) ? '' : '; run the same command again to resume';
      process.stderr.write(`hubcrawl: run ${outcome.runId} stopped early: ${outcome.abortReason}${hint}\n`);
    }
    return { outcome, dbPath: config.db, config };
  } finally {
    stopListening();
    db.close();
    lock.release();
  }
}

/**
 * What the summary and its notices say of a finished run, read from the dataset in one go: the layers of
 * its images that an earlier run failed for good (db/failed-layers.ts; not in the run's failed items, yet
 * those images are matched without them), and the run's failed items to name (none read when it has none).
 */
function runAftermath(dbPath: string, outcome: CrawlOutcome) {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    return {
      failedEarlier: countLayersFailedBeforeRun(db, outcome.runId),
      failed:
        outcome.failedItems > 0
          ? failedInRunFirst(db, outcome.runId, FAILED_ITEMS_NAMED)
          : { total: 0, first: [] },
    };
  } finally {
    db.close();
  }
}

/** `hubcrawl crawl`: run or resume a crawl; prints a one-line summary on stdout. */
export async function crawlCommand(f: CrawlFlags): Promise<number> {
  const { outcome, dbPath, config } = await crawlWith(f);
  const c = outcome.stats as Record<string, number>;
  const { failedEarlier, failed } = runAftermath(dbPath, outcome);
  const removed = c.findingsRemovedOfUnloadedSets ?? 0;
  process.stdout.write(
    `run ${outcome.runId} ${outcome.status}${outcome.resumed ? ' (resumed)' : ''}: ` +
      `${counted(c.images ?? 0, 'image')}, ${counted(c.layersAnalyzed ?? 0, 'layer')} analyzed (${c.layersReused ?? 0} already known), ` +
      `${counted(c.findings ?? 0, 'finding')}, ${counted(outcome.failedItems, 'failed item')}` +
      (failedEarlier > 0 ? `, ${counted(failedEarlier, 'layer')} failed for good in earlier runs` : '') +
      (removed > 0 ? `, ${counted(removed, 'finding')} removed of IOC sets not loaded` : '') +
      '\n',
  );
  tellRemovedFindings('crawl', removed);
  tellFailedItems(failed, outcome.runId, dbPath);
  // The exit code stays that of this run's own work (a scheduled crawl would otherwise exit 1 every day
  // for a layer that can never be analyzed), so this is said on stderr even with --quiet: a cron job
  // that keeps only stderr and exit codes must not take the dataset for complete.
  if (failedEarlier > 0) {
    process.stderr.write(
      `hubcrawl: ${counted(failedEarlier, 'layer')} of this run's images failed analysis in earlier runs, with no attempts left ` +
        `(--max-attempts ${config.maxAttempts}): those images are matched from their other layers (in_final_fs 'unknown' below a failed layer); ` +
        'the failures table says why; a crawl with a higher --max-attempts tries such layers again\n',
    );
  }
  return crawlExitCode(outcome);
}
