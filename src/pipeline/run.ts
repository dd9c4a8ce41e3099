import { setMaxListeners } from 'node:events';
import type { Database } from 'better-sqlite3';
import { type CompiledRules, compileRules } from '../analyzer/iocs/compile.js';
import type { IocSet } from '../analyzer/iocs/schema.js';
import { ANALYZER_VERSION, prepareAnalyzer } from '../analyzer/layer-stream.js';
import type { Config } from '../config/schema.js';
import { BudgetExhaustedError, describeError, FatalError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { HttpClient } from '../crawler/http.js';
import { IocStore } from '../db/ioc-store.js';
import { type RunStatus, RunStore } from '../db/run-store.js';
import { SelectionStore } from '../db/selection-store.js';
import { forgetArtifactImages } from './artifact-images.js';
import { CrawlContext } from './context.js';
import { RUN_KEYED_KINDS } from './keys.js';
import { type LayerScope, layerClaimer } from './layer-scope.js';
import { matchImages, warnOfEditedSets, warnOfOtherSelection, warnOfRemovedFindings } from './match.js';
import { RunNetwork, registryCredentials } from './network.js';
import { itemProcessor } from './process-item.js';
import { openRun, prepareFrontier, type RunCommand } from './run-start.js';
import { answeredHostsOf, earlierInvocations, wholeRunWith } from './run-totals.js';
import { seedItems } from './seeds.js';
import { backfillSelections } from './selections.js';

export interface CrawlProgress {
  counters: Record<string, number>;
  http: ReturnType<HttpClient['stats']['snapshot']>;
  open: number;
  inFlight: number;
  /** Set while a host is paused by a rate limit. */
  rateLimitedUntil: number | null;
}

export interface CrawlOptions {
  config: Readonly<Config>;
  iocSets: IocSet[];
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Aborting stops claiming work, cancels in-flight downloads and ends the run resumably. */
  signal?: AbortSignal;
  onProgress?: (p: CrawlProgress) => void;
  progressIntervalMs?: number;
  /** Start a new run even if the last one did not finish. */
  fresh?: boolean;
  /** Which layer items the run works through (layer-scope.ts): 'dataset' unless said. */
  layerScope?: LayerScope;
  /** What the run is recorded as (RunRequest.command): 'crawl' unless said. */
  command?: RunCommand;
  /** Injected in tests (fault proxies, fast retries). */
  httpOptions?: ConstructorParameters<typeof HttpClient>[0];
}

export interface CrawlOutcome {
  runId: number;
  resumed: boolean;
  status: Exclude<RunStatus, 'running'>;
  /** Why the run stopped early (budget, rate limit, interrupt). */
  abortReason: string | null;
  failedItems: number;
  stats: Record<string, unknown>;
}

const STATS_INTERVAL_MS = 15_000;
/** Everything but layers, scheduled under `concurrency`: discovery and resolution, the run-keyed kinds. */
const OTHER_KINDS = RUN_KEYED_KINDS;

/**
 * One crawl run: seeds → frontier → handlers → dataset, images matched as items complete them, then a
 * sweep for what is left. Every completed item is one transaction (its rows + its children + its
 * completion + the matches of the images it completed), so a kill at any moment loses nothing and the
 * next run resumes where this one stopped.
 */
export async function runCrawl(db: Database, opts: CrawlOptions): Promise<CrawlOutcome> {
  const { config, log } = opts;
  const env = opts.env ?? process.env;
  // Every seed is checked before a run row exists: a typo must not leave a phantom 'running' run for the
  // next crawl to resume (test/e2e/exit-codes.test.ts). The keys need the run id, so this pass is thrown away.
  seedItems(config as Config, 0);
  // Likewise a Docker config file that cannot be read.
  const credentials = registryCredentials(config, env);
  // So are the rules, and the IOC sets the run row will name are stored first.
  const compiled = compileRules(opts.iocSets, { hashAllFiles: config.hashAllFiles });
  // Before putSets: a set reloaded after an edit in place would overwrite the stored copy the earlier
  // runs' selections are given back from.
  backfillSelections(db);
  forgetArtifactImages(db, log);
  warnOfEditedSets(new IocStore(db).putSets(opts.iocSets), log);
  // Layers analyzed under a selection that covers this one (the same sets' hash-all one, or one with more
  // sets) need no new download: their recorded definitions say so (SelectionStore).
  const selections = new SelectionStore(db);
  selections.remember(compiled);
  const rules: CompiledRules = { ...compiled, coveredBy: selections.covering(compiled) };
  // The command the run was started by: a crawl that resumes a scan's run logs it as the scan's.
  const { runId, resumed, command } = openRun(db, opts);
  log.info({ runId, resumed }, resumed ? `resuming the unfinished ${command} run` : `${command} run started`);

  // What the run's earlier invocations recorded (a resumed run): their counts, and the hosts that answered
  // them, so that one still down stops this invocation too (HostUnreachableError) rather than failing
  // every item on it.
  const runs = new RunStore(db);
  const recorded = resumed ? runs.get(runId)?.stats : undefined;
  const net = new RunNetwork({
    config,
    env,
    credentials,
    log,
    httpOptions: { ...opts.httpOptions, answeredHosts: answeredHostsOf(recorded) },
  });
  const { http, hub } = net;
  const ctx = new CrawlContext(
    db,
    config,
    runId,
    http,
    hub,
    credentials,
    opts.iocSets,
    rules,
    log.child({ runId }),
    net.listingCuts,
    resumed,
  );

  /** Items the run's earlier invocations failed for good: a resumed run's outcome counts them too. */
  let failedBeforeResume = 0;
  const layerScope = opts.layerScope ?? 'dataset';
  try {
    prepareFrontier(ctx, resumed, layerScope);
    // After prepareFrontier: what it put back to pending is retried here and counted if it fails again.
    if (resumed) failedBeforeResume = ctx.frontier.failedInRun(runId);
  } catch (err) {
    // A full disk can fail the frontier's first writes; the run stays resumable, the pool must not stay open.
    await net.close();
    throw err;
  }
  // The digest worker boots and zstd-napi loads while the first requests are in flight, not in the first layer.
  prepareAnalyzer();

  // `controller` stops the run (no more claims); the network's cut also aborts the work in flight. Every
  // queued request listens to one of them (p-queue adds one listener per waiting task).
  const controller = new AbortController();
  setMaxListeners(Math.max(64, config.concurrency * 8), controller.signal);
  /**
   * Stops the run for `reason`. Out of pull budget, in-flight work has already paid its pulls: it is let
   * finish and kept, or the resumed run pays them again (test/integration/crawl/hub-crawl.test.ts,
   * test/reliability/faults/pull-limit-body.test.ts), layer downloads included. Any other stop cuts it
   * off, also one that comes after a budget stop (a SIGINT while the last layers download).
   */
  const stop = (reason: unknown) => {
    if (!controller.signal.aborted) controller.abort(reason);
    if (reason instanceof BudgetExhaustedError) return;
    net.cutOff(reason);
  };
  const onAbort = () => stop(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // An 'abort' that happened before the listener (a SIGINT during start-up) fires no event.
  if (opts.signal?.aborted) onAbort();
  let abortReason: string | null = opts.signal?.aborted ? 'interrupted' : null;
  let fatal: unknown = null;

  const inFlight = new Map<number, Promise<void>>();
  let layersInFlight = 0;
  const layers = layerClaimer(layerScope, db, ctx.frontier, {
    runId,
    analyzerVersion: ANALYZER_VERSION,
    selection: rules.fingerprint,
    maxAttempts: config.maxAttempts,
    resumed,
  });
  const progress = () =>
    opts.onProgress?.({
      counters: ctx.counters.snapshot(),
      http: http.stats.snapshot(),
      open: layers.open(),
      inFlight: inFlight.size,
      rateLimitedUntil: net.pausedUntil(),
    });
  const timer = opts.onProgress ? setInterval(progress, opts.progressIntervalMs ?? 1000) : null;
  // The run's stats are kept current in the dataset, so `stats` shows what a killed run had done. A
  // resumed run's records also carry the whole run's counts (run-totals.ts), from what the earlier
  // invocations recorded (read above, before this one writes its first record over their last).
  const earlier = resumed ? earlierInvocations(recorded, Object.keys(ctx.counters.snapshot())) : undefined;
  const additive = () => ({
    ...ctx.counters.snapshot(),
    http: http.stats.snapshot(),
    answeredHosts: http.answeredHosts(),
  });
  const wholeRun = () => (earlier ? { wholeRun: wholeRunWith(earlier, additive()) } : {});
  const recordStats = () => {
    try {
      runs.recordStats(runId, { ...additive(), ...wholeRun() });
    } catch {
      // Best effort: a write that fails here fails again, with its error, where the run records items.
    }
  };
  // After every item's outcome and paid manifest GET (ctx.recordStats), and on a timer for the requests of
  // long items (a large layer).
  ctx.recordStats = recordStats;
  const statsTimer = setInterval(recordStats, STATS_INTERVAL_MS);

  const processItem = itemProcessor({
    ctx,
    listingCuts: net.listingCuts,
    signal: controller.signal,
    cutSignal: net.cutSignal,
    log,
    stopRun: (err) => {
      if (err instanceof FatalError) fatal = err;
      abortReason = describeError(err);
      log.warn({ err: abortReason }, 'stopping the run; it resumes where it stopped');
      stop(err);
    },
  });

  try {
    while (!controller.signal.aborted) {
      const claimed = [
        ...layers.claim(config.layerConcurrency - layersInFlight),
        ...ctx.frontier.claim(OTHER_KINDS, config.concurrency - (inFlight.size - layersInFlight)),
      ];
      if (claimed.length === 0) {
        if (inFlight.size === 0) break;
        await Promise.race(inFlight.values());
        continue;
      }
      for (const item of claimed) {
        const isLayer = item.kind === 'layer';
        if (isLayer) layersInFlight += 1;
        const p = processItem(item)
          .catch((err: unknown) => {
            // Recording the item's outcome itself failed (disk full, database gone): stop claiming, let
            // the other items settle, then fail the run with this error — never return under live work.
            fatal ??= err;
            abortReason ??= describeError(err);
            stop(err);
          })
          .finally(() => {
            inFlight.delete(item.id);
            if (isLayer) layersInFlight -= 1;
            layers.settled();
          });
        inFlight.set(item.id, p);
      }
    }
    await Promise.allSettled(inFlight.values());
    if (opts.signal?.aborted && !abortReason) abortReason = 'interrupted';
    if (fatal) throw fatal;

    // Images were matched as items completed them (RunMatcher); the sweep matches what is left: images no
    // item of this run completed (other IOC sets than their last match), and those of a run stopped early.
    const match = matchImages(db, opts.iocSets, runId);
    ctx.counters.findings += match.findings;
    ctx.counters.imagesMatched += match.images;
    // Matched from their other layers: a layer of each failed analysis (docs/limits.md).
    ctx.counters.imagesWithFailedLayers += match.withFailedLayers;
    const layersWithOtherSelection = warnOfOtherSelection(db, rules, rules.coveredBy, log);
    // One warning for the whole invocation, the items' matches and the sweep's together.
    const removed = ctx.matcher.removedOfUnloadedSets();
    for (const [label, n] of Object.entries(match.removedOfUnloadedSets))
      removed[label] = (removed[label] ?? 0) + n;
    ctx.counters.findingsRemovedOfUnloadedSets = warnOfRemovedFindings(
      { removedOfUnloadedSets: removed },
      log,
    );
    const stats = {
      ...ctx.counters.snapshot(),
      imagesIncomplete: match.skipped.length,
      layersWithOtherSelection,
      ...(resumed ? { itemsFailedBeforeResume: failedBeforeResume } : {}),
      http: http.stats.snapshot(),
      answeredHosts: http.answeredHosts(),
      frontier: ctx.frontier.counts(),
      ...wholeRun(),
    };
    const failedItems = ctx.counters.itemsFailed + failedBeforeResume;
    const status: CrawlOutcome['status'] = abortReason
      ? 'aborted'
      : failedItems > 0
        ? 'completed-with-failures'
        : 'completed';
    runs.finish(runId, status, stats);
    // "ended": an aborted run ends too, and `status` says how.
    log.info({ runId, status, ...ctx.counters.snapshot() }, `${command} run ended`);
    return { runId, resumed, status, abortReason, failedItems, stats };
  } catch (err) {
    try {
      // A FatalError (disk full, read-only dataset) ends the run resumably, as its message promises:
      // the next run continues this one instead of re-crawling everything as a new run.
      const status = err instanceof FatalError ? 'aborted' : 'failed';
      // With the whole run's counts too: an aborted run is resumed, and the resume adds to these.
      runs.finish(runId, status, { ...additive(), ...wholeRun(), error: describeError(err) });
    } catch {
      // The database itself may be what failed (disk full); the original error says why.
    }
    throw err;
  } finally {
    if (timer) clearInterval(timer);
    clearInterval(statsTimer);
    progress();
    opts.signal?.removeEventListener('abort', onAbort);
    await net.close();
  }
}
