import { compileRules } from '../../analyzer/iocs/compile.js';
import type { IocSet } from '../../analyzer/iocs/schema.js';
import { ANALYZER_VERSION } from '../../analyzer/layer-stream.js';
import { redactConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { describeError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { runStepsUntil } from '../../core/steps.js';
import { TOOL_VERSION } from '../../core/version.js';
import { IocStore } from '../../db/ioc-store.js';
import { acquireCrawlLock } from '../../db/lock.js';
import { type Database, openDatabase } from '../../db/open.js';
import type { RematchProgress, RematchResult } from '../../db/rematch.js';
import { RunStore } from '../../db/run-store.js';
import { SelectionStore } from '../../db/selection-store.js';
import { forgetArtifactImages } from '../../pipeline/artifact-images.js';
import {
  matchImageSteps,
  warnOfEditedSets,
  warnOfOtherSelection,
  warnOfRemovedFindings,
} from '../../pipeline/match.js';
import { backfillSelections } from '../../pipeline/selections.js';
import { type CommonOptions, commandLogger, configFor, iocSetsFor, refuseUnfinishedRun } from '../context.js';
import { releaseEarlySignals } from '../early-signals.js';
import { EXIT } from '../exit.js';
import { tellRemovedFindings } from '../notices.js';
import { counted } from '../plural.js';
import { onStopSignal } from '../stop-signals.js';

export interface RematchOptions extends CommonOptions {
  ioc?: string[];
  builtinIocs?: boolean;
}

/**
 * Notes the first SIGINT or SIGTERM from now on: a rematch stops between images once it has one. A second
 * ends the process at once (stop-signals.ts), as a kill would: the next command marks the run aborted.
 */
function signalLatch(): { received: () => NodeJS.Signals | undefined; release: () => void } {
  let received: NodeJS.Signals | undefined;
  const release = onStopSignal((signal) => {
    received = signal;
  });
  // One that came while the command started up stops it before the first image (early-signals.ts).
  const early = releaseEarlySignals();
  if (early) {
    release();
    received = early;
  }
  return { received: () => received, release };
}

/**
 * `hubcrawl rematch`: re-applies the IOC sets (built-in plus --ioc files) to the stored facts of every
 * image and replaces its findings, without one network request. Candidate files and signatures were
 * chosen at analysis time: it warns when layers were analyzed with another candidate selection, since
 * a new hash rule can only match files that were hashed then (or every file with --hash-all-files).
 * A SIGINT or SIGTERM stops it between two images (EXIT.aborted), each image matched anew or left as it was.
 */
export async function rematchCommand(opts: RematchOptions): Promise<number> {
  const config = configFor(opts, {
    ...(opts.ioc && opts.ioc.length > 0 ? { iocFiles: opts.ioc } : {}),
    ...(opts.builtinIocs === false ? { noBuiltinIocs: true } : {}),
  });
  const log = commandLogger(opts, config);
  const sets = await iocSetsFor(config);
  // A rematch only re-reads what a crawl stored: a missing or empty dataset (a mistyped --db) is refused
  // as report, stats and query refuse it, not created and reported as a clean run of 0 images.
  openDatabase(config.db, { readonly: true }).close();
  const lock = acquireCrawlLock(config.db);
  let db: ReturnType<typeof openDatabase>;
  try {
    db = openDatabase(config.db);
    refuseUnfinishedRun(db, config.db);
  } catch (err) {
    lock.release();
    throw err;
  }
  const signals = signalLatch();
  try {
    return await rematchDataset(db, config, sets, log, signals.received);
  } finally {
    signals.release();
    db.close();
    lock.release();
  }
}

/** The rematch itself, with the lock held: records its run, matches every image, and says what it did. */
async function rematchDataset(
  db: Database,
  config: Readonly<Config>,
  sets: IocSet[],
  log: Logger,
  stoppedBy: () => NodeJS.Signals | undefined,
): Promise<number> {
  // Before putSets, as a crawl does (run.ts): the stored sets give the earlier selections back.
  backfillSelections(db);
  forgetArtifactImages(db, log);
  warnOfEditedSets(new IocStore(db).putSets(sets), log);
  // A rematch is a run of its own, so its findings carry provenance (tool, analyzer and IOC versions).
  const runs = new RunStore(db);
  // One a kill left `running` says so now; this rematch redoes its work whole.
  runs.abortRematchesKilled();
  const runId = runs.start({
    config: { command: 'rematch', ...redactConfig(config as Config) },
    toolVersion: TOOL_VERSION,
    analyzerVersion: ANALYZER_VERSION,
    iocSets: sets.map((s) => ({ id: s.id, version: s.version })),
  });
  const run: RematchRun = { store: runs, id: runId };
  try {
    return await matchAndReport(db, config, sets, log, run, stoppedBy);
  } catch (err) {
    recordFailure(run, err);
    throw err;
  }
}

/** A rematch's run row, and the last image boundary it passed: how far it had come if it stops or throws. */
interface RematchRun {
  store: RunStore;
  id: number;
  progress?: RematchProgress;
}

/** Matches every image for the rematch run and finishes the run with what it did. */
async function matchAndReport(
  db: Database,
  config: Readonly<Config>,
  sets: IocSet[],
  log: Logger,
  run: RematchRun,
  stoppedBy: () => NodeJS.Signals | undefined,
): Promise<number> {
  const selectionStore = new SelectionStore(db);
  const compiled = compileRules(sets, { hashAllFiles: config.hashAllFiles });
  // Recorded although a rematch analyzes no layer: the run's provenance names it like a crawl's.
  selectionStore.remember(compiled);
  const selections = selectionStore.covering(compiled);
  const otherSelection = warnOfOtherSelection(db, compiled, selections, log);
  const outcome = await runStepsUntil(matchImageSteps(db, sets, run.id, { all: true }), (p) => {
    run.progress = p;
    return stoppedBy() !== undefined;
  });
  if (!outcome.finished) return recordStop(run, stoppedBy() as NodeJS.Signals);
  const result = outcome.result;
  // Every image done: what a failure from here on (the run's own row) says it did.
  run.progress = { result, imagesLeft: 0 };
  const removed = warnOfRemovedFindings(result, log);
  run.store.finish(run.id, 'completed', {
    rematch: true,
    ...resultStats(result),
    layersWithOtherSelection: otherSelection,
    findingsRemovedOfUnloadedSets: removed,
  });
  if (result.skipped.length > 0) {
    log.warn(
      { images: result.skipped.length },
      'images with a layer not yet analyzed were left as they were; a crawl analyzes it, then matches them',
    );
  }
  if (result.withFailedLayers > 0) {
    log.warn(
      { images: result.withFailedLayers },
      'images with a layer that failed analysis were matched from their other layers: evidence below that layer may be removed by it (in_final_fs unknown)',
    );
  }
  process.stdout.write(
    `re-matched ${counted(result.images, 'image')} against ${sets.map((s) => `${s.id}@${s.version}`).join(', ')}: ` +
      `${counted(result.findings, 'finding')} (${result.withFailedLayers} with a layer that failed analysis, matched from their other layers; ` +
      `${result.skipped.length} waiting for a pending layer)` +
      (removed > 0 ? `; removed ${counted(removed, 'finding')} of IOC sets not loaded now` : '') +
      '\n',
  );
  tellRemovedFindings('rematch', removed);
  return EXIT.ok;
}

/**
 * Ends a rematch that threw (a damaged dataset row, a full disk): its run is marked failed with the error
 * and what it did, so it is not left `running`, and the notice says what the dataset holds now. The error
 * itself is told by the caller (main.ts). When the dataset cannot record it either, the next rematch
 * marks the run aborted (RunStore.abortRematchesKilled).
 */
function recordFailure(run: RematchRun, err: unknown): void {
  const done = doneSoFar(run);
  try {
    run.store.finish(run.id, 'failed', { ...done, error: describeError(err) });
  } catch {
    // The dataset itself may be what failed (disk full); the original error says why.
  }
  const what =
    done.imagesNotReached === 0
      ? `re-matched every image (${done.imagesMatched}) before it failed`
      : `re-matched ${counted(done.imagesMatched, 'image')} and left the rest with their earlier findings (each image is matched anew or left as it was)`;
  process.stderr.write(
    `hubcrawl: rematch failed; run ${run.id} ${what}; once the error below is mended, run the same \`hubcrawl rematch\` again\n`,
  );
}

/**
 * Ends a rematch a signal stopped between two images: its run is marked aborted with what it did, and
 * the notice says that the dataset is part re-matched and that running rematch again re-matches it all.
 */
function recordStop(run: RematchRun, signal: NodeJS.Signals): number {
  const done = doneSoFar(run);
  run.store.finish(run.id, 'aborted', { ...done, stoppedBy: signal });
  process.stderr.write(
    `hubcrawl: rematch stopped by ${signal}; run ${run.id} re-matched ${counted(done.imagesMatched, 'image')} and left ${done.imagesNotReached} with their earlier findings ` +
      '(each image is matched anew or left as it was); run the same `hubcrawl rematch` again to re-match every image\n',
  );
  return EXIT.aborted;
}

/** The stats of a rematch that ended early: what it had done at the last image boundary it passed, or at its end. */
function doneSoFar(
  run: RematchRun,
): ReturnType<typeof resultStats> & { rematch: true; imagesNotReached?: number } {
  const p = run.progress;
  return {
    rematch: true,
    ...resultStats(p?.result ?? { images: 0, withFailedLayers: 0, skipped: [], findings: 0 }),
    ...(p ? { imagesNotReached: p.imagesLeft } : {}),
  };
}

/**
 * What a rematch's run records of its result, stopped, failed or completed alike: images matched, of those
 * with a failed layer, images left for a pending layer, and findings written.
 */
function resultStats(result: RematchResult): {
  imagesMatched: number;
  imagesWithFailedLayers: number;
  imagesIncomplete: number;
  findings: number;
} {
  return {
    imagesMatched: result.images,
    imagesWithFailedLayers: result.withFailedLayers,
    imagesIncomplete: result.skipped.length,
    findings: result.findings,
  };
}
