import type { Database } from 'better-sqlite3';
import type { IocSet } from '../analyzer/iocs/schema.js';
import { ANALYZER_VERSION } from '../analyzer/layer-stream.js';
import { redactConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { TOOL_VERSION } from '../core/version.js';
import { RunStore } from '../db/run-store.js';
import type { CrawlContext } from './context.js';
import { CONTENT_KEYED_KINDS, RUN_KEYED_KINDS, runKeyPrefix } from './keys.js';
import type { LayerScope } from './layer-scope.js';
import { seedItems } from './seeds.js';
import { byAnotherAnalyzer, sameStudy } from './study.js';

/** The failure code of an earlier run's discovery that a new run closed (docs/schema.md, `failures`). */
export const SUPERSEDED = 'SUPERSEDED';

/** The command a crawl_runs row records as having started it (a rematch records its own). */
export type RunCommand = 'crawl' | 'scan';

/** What decides whether a run is new or resumed. */
export interface RunRequest {
  config: Readonly<Config>;
  iocSets: IocSet[];
  log: Logger;
  /** Start a new run even if the last one did not finish. */
  fresh?: boolean;
  /** What a new run is recorded as (`command` in its config_json; a resumed one keeps its own): 'crawl'. */
  command?: RunCommand;
}

/**
 * Starts a new run, or resumes the last crawl or scan run when it did not finish (killed, interrupted, out
 * of budget). A rematch run a kill left `running` is marked aborted: the caller holds the crawl lock.
 */
export function openRun(
  db: Database,
  opts: RunRequest,
): { runId: number; resumed: boolean; command: RunCommand } {
  const runs = new RunStore(db);
  runs.abortRematchesKilled();
  // A rematch that did not finish is not resumed by a crawl (nor is it a study to supersede).
  const last = runs.latestCrawl();
  if (!opts.fresh && last && (last.status === 'running' || last.status === 'aborted')) {
    if (sameStudy(last, opts.config, opts.iocSets)) {
      runs.reopen(last.id);
      // The run keeps the command that started it: a crawl that resumes a scan's run resumes a scan's run.
      const stored = (last.config as { command?: unknown } | null)?.command;
      const command = stored === 'scan' || stored === 'crawl' ? stored : (opts.command ?? 'crawl');
      return { runId: last.id, resumed: true, command };
    }
    const why = byAnotherAnalyzer(last)
      ? `it was started by a hubcrawl with analyzer version ${last.analyzerVersion}, which this one (${ANALYZER_VERSION}) cannot resume`
      : 'seeds, filters or IOC sets changed';
    opts.log.warn(
      { unfinishedRun: last.id },
      `the last run did not finish but ${why}: starting a new run (its pending discovery is closed as SUPERSEDED; pending layers carry over)`,
    );
  }
  const command = opts.command ?? 'crawl';
  const runId = runs.start({
    // The command beside the settings, as a rematch records its own: `stats` tells the runs apart by it.
    config: { command, ...redactConfig(opts.config as Config) },
    toolVersion: TOOL_VERSION,
    analyzerVersion: ANALYZER_VERSION,
    iocSets: opts.iocSets.map((s) => ({ id: s.id, version: s.version })),
  });
  return { runId, resumed: false, command };
}

/**
 * Queues the run's work: what a killed or failed attempt left pending, then the seeds. A run that works
 * through its own images' layers only (a scan, layer-scope.ts) gives its failed ones another go as it
 * reaches them, and leaves the rest of the dataset's failed layers as they are.
 */
export function prepareFrontier(ctx: CrawlContext, resumed: boolean, layerScope: LayerScope): void {
  const { config, runId } = ctx;
  // A killed run left items in progress; failed items get another chance up to maxAttempts: content-keyed
  // ones whichever run failed them, run-keyed ones only in their own run (when it resumes). A new run
  // re-creates the run-keyed work its seeds still reach under its own keys, so reviving an earlier run's did
  // that work twice and counted its failure once per run (docs/schema.md, `frontier`).
  ctx.frontier.resetInProgress();
  const everyLayer = layerScope === 'dataset';
  if (everyLayer) ctx.frontier.retryFailed(config.maxAttempts, { kinds: CONTENT_KEYED_KINDS });
  ctx.frontier.retryFailed(config.maxAttempts, { keyPrefix: runKeyPrefix(runId) });
  if (!resumed) {
    // An unfinished earlier run (a changed study, or --fresh) left discovery and resolution pending under
    // its keys: the new study neither crawls them nor records them as its own; they stay as that run's
    // failures. Layers are keyed by content, not by run: pending ones carry over, and a new run gets
    // another go at those a network fault failed.
    ctx.frontier.supersede(RUN_KEYED_KINDS, runKeyPrefix(runId), {
      code: SUPERSEDED,
      message: `left uncrawled: run ${runId} started a new study (seeds, filters or IOC sets changed, or --fresh)`,
    });
    if (everyLayer) for (const kind of CONTENT_KEYED_KINDS) ctx.frontier.reviveRetryable(kind);
  }
  for (const seed of seedItems(config as Config, runId))
    ctx.frontier.enqueue(seed.kind, seed.key, seed.payload);
}
