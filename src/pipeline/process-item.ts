import {
  describeError,
  FatalError,
  HubcrawlError,
  isRetryable,
  NoResponseError,
  stopsTheRun,
} from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { FrontierItem, NewFrontierItem } from '../db/frontier-types.js';
import { writeTransaction } from '../db/sqlite-errors.js';
import type { CrawlContext } from './context.js';
import { handleCatalog, handleNamespace, handleRepository, handleSearch } from './handlers/discovery.js';
import { handleLayer } from './handlers/layer.js';
import { handleManifest } from './handlers/manifest.js';
import { handleReference } from './handlers/reference.js';
import { incompleteListing, type ListingCuts } from './listing-cuts.js';

/** What a handler hands back: dataset rows to write and child items, committed with its completion. */
export interface HandlerResult {
  /** `listingComplete`: no listing the item walked was cut short (listing-cuts.ts). */
  write?: (outcome: { listingComplete: boolean }) => void;
  children?: NewFrontierItem[] | (() => NewFrontierItem[]);
  /**
   * Runs last in the completion's transaction, once the item is done and its children are queued: matches
   * the images the item completed (RunMatcher), so no item is ever done without them matched.
   */
  settle?: () => void;
}

function dispatch(ctx: CrawlContext, item: FrontierItem, signal: AbortSignal): Promise<HandlerResult> {
  switch (item.kind) {
    case 'namespace':
      return handleNamespace(ctx, item as never);
    case 'search':
      return handleSearch(ctx, item as never);
    case 'catalog':
      return handleCatalog(ctx, item as never);
    case 'repository':
      return handleRepository(ctx, item as never);
    case 'reference':
      return handleReference(ctx, item as never);
    case 'manifest':
      return handleManifest(ctx, item as never);
    case 'layer':
      return handleLayer(ctx, item as never, signal);
    default:
      throw new FatalError(
        `frontier holds an item of unknown kind "${item.kind}"; was it written by another tool?`,
      );
  }
}

/** What one item's processing needs from its run. */
export interface ItemProcessing {
  ctx: CrawlContext;
  /** Fed by the run's Hub and registry clients: which of this item's listings were cut short. */
  listingCuts: ListingCuts;
  /** The run's signal: once it is aborted, an item's error belongs to the stop, not to the item. */
  signal: AbortSignal;
  /**
   * Aborts the item's own work (a layer download and its analysis). Aborted with `signal`, except when the
   * run stops for a spent pull budget: work in flight then has paid its pulls and is finished and kept.
   */
  cutSignal: AbortSignal;
  log: Logger;
  /** Stops the run, resumably, for an error that is no item's fault (stopsTheRun). */
  stopRun: (err: unknown) => void;
}

/**
 * The run's processor of one claimed item. It takes the item to a recorded outcome: completed (its rows and
 * children with it), failed for good (counted in `ctx.counters.itemsFailed`), back to pending for another
 * attempt in this run (a retryable error with attempts left: `itemAttemptsRetried`), or back to pending
 * when the run is stopping. It rejects only when that outcome itself cannot be recorded (disk full,
 * database gone), which must stop the run.
 */
export function itemProcessor(p: ItemProcessing): (item: FrontierItem) => Promise<void> {
  const { ctx, listingCuts, signal, log } = p;
  const { db, config } = ctx;

  const countFailure = (item: FrontierItem, code: string, message: string) => {
    ctx.counters.itemsFailed += 1;
    log.warn({ kind: item.kind, key: item.key, code, err: message }, 'item failed');
  };

  return async (item) => {
    try {
      const { result, cuts } = await listingCuts.track(() => dispatch(ctx, item, p.cutSignal));
      // A listing cut short keeps what it listed (the children below) but fails its item, so the run ends
      // completed-with-failures (exit 1) instead of passing a partial listing off as complete.
      const incomplete = cuts.length > 0 ? incompleteListing(cuts) : null;
      // The item's rows, its children, its completion (and a cut listing's failure): one transaction, so a
      // kill leaves either all of them or none (frontier invariant 4; src/pipeline/completion.test.ts).
      // writeTransaction: a full disk met at COMMIT stops the run (FatalError) like one met by a statement.
      // The counts `write` and `settle` add are the item's too: rolled back with its rows, or the resumed
      // run, doing the item again, would count it twice in the counts to cite.
      const undo = ctx.checkpoint();
      try {
        writeTransaction(db, () => {
          result.write?.({ listingComplete: incomplete === null });
          const kids = typeof result.children === 'function' ? result.children() : (result.children ?? []);
          ctx.frontier.complete(item.id, kids);
          if (incomplete)
            ctx.frontier.fail(item.id, incomplete, { retryable: false, maxAttempts: config.maxAttempts });
          result.settle?.();
          // The run's counts in the outcome's own transaction: a kill keeps both or neither. Written just
          // after the COMMIT, a SIGKILL between the two lost the count of a layer the dataset holds as
          // analyzed by this run, and the resumed run then counted it as already known.
          ctx.recordStats();
        })();
      } catch (err) {
        undo();
        throw err;
      }
      if (incomplete) {
        countFailure(item, incomplete.code, incomplete.message);
        ctx.recordStats();
      }
    } catch (err) {
      if (signal.aborted || stopsTheRun(err)) {
        // Not the item's fault: it goes back to pending for the resumed run.
        ctx.frontier.requeue(item.id);
        // The first error to stop the run names why; items failing after it only follow the stop.
        if (stopsTheRun(err) && !signal.aborted) p.stopRun(err);
        return;
      }
      // The second request in a row (or later) that its host left unanswered: the host is going down, not
      // the item failing. Back to pending without an attempt; the streak stops the run when it reaches the
      // client's unreachable count, or an answer ends it. The first of a streak still counts, so a request
      // that alone never gets an answer still fails its item. Without this, an outage that spans a run and
      // its resume fails for good the items whose requests happened to go first.
      if (err instanceof NoResponseError && err.streak > 1) {
        ctx.frontier.requeue(item.id);
        log.info(
          { kind: item.kind, key: item.key, err: describeError(err) },
          'no response from its host; queued again',
        );
        return;
      }
      const code = err instanceof HubcrawlError ? err.code : 'ERROR';
      // A failed layer's own row and its frontier item say the same thing, or neither does.
      const undo = ctx.checkpoint();
      let state: ReturnType<typeof ctx.frontier.fail>;
      try {
        state = writeTransaction(db, () => {
          const layer = item.kind === 'layer' ? (item.payload as { digest: string }).digest : null;
          if (layer) ctx.layers.markFailed(layer, code, describeError(err));
          const outcome = ctx.frontier.fail(item.id, err instanceof Error ? err : new Error(String(err)), {
            retryable: isRetryable(err),
            maxAttempts: config.maxAttempts,
          });
          // A layer failed for the run completes its images too: they are matched without it (docs/limits.md).
          // One going back to pending for a retry leaves them waiting for that.
          if (layer && outcome === 'failed') ctx.matcher.afterLayer(layer);
          return outcome;
        })();
      } catch (writeErr) {
        undo();
        throw writeErr;
      }
      // Back to pending: this run tries it again, and only an item that stays failed fails the run.
      if (state === 'pending') {
        ctx.counters.itemAttemptsRetried += 1;
        log.info({ kind: item.kind, key: item.key, code, err: describeError(err) }, 'item failed; retrying');
      } else countFailure(item, code, describeError(err));
      ctx.recordStats();
    }
  };
}
