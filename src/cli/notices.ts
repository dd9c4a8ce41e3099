import { shellQuoted } from '../core/shell.js';
import { type failedInRunFirst, failedInRunQuery } from '../db/frontier.js';
import { runKeyPrefix } from '../pipeline/keys.js';
import { terminalSafe } from './output.js';
import { agreeing, counted } from './plural.js';

/**
 * Findings of a study's IOC sets that a crawl or rematch removed from the images it matched again, because
 * it did not load their set (a `--ioc` forgotten in a cron line). Said on stderr even with --quiet, as the
 * scheduled command that forgot its set is the one to tell (the log's warning names the sets); nothing
 * when it removed none.
 */
export function tellRemovedFindings(command: 'crawl' | 'rematch', removed: number): void {
  if (removed === 0) return;
  process.stderr.write(
    `hubcrawl: ${counted(removed, 'finding')} of IOC sets not loaded in this ${command} ${agreeing(removed, 'was', 'were')} ` +
      'removed from the images it matched again; load every set of the study each time (--ioc, or iocFiles in the config file), ' +
      'then run `hubcrawl rematch` with them to restore the findings\n',
  );
}

/** How many failed items a crawl names (tellFailedItems); the rest are counted. */
export const FAILED_ITEMS_NAMED = 5;

/**
 * The failed items of a crawl's run (failedInRunFirst: their count, and the first FAILED_ITEMS_NAMED), named
 * with their last error, on stderr even with --quiet: a seed whose host is down or whose URL is wrong is
 * otherwise only "1 failed item" in the summary, its reason in log lines that --quiet hides. Nothing when
 * none failed.
 */
export function tellFailedItems(
  failed: ReturnType<typeof failedInRunFirst>,
  runId: number,
  dbPath: string,
): void {
  if (failed.total === 0) return;
  const prefix = runKeyPrefix(runId);
  const named = failed.first.map((item) => {
    // A run's own items are keyed `<run>|…`; a layer by `<digest>|<analyzer version>|<selection>`.
    const what = item.key.startsWith(prefix) ? item.key.slice(prefix.length) : item.key.split('|')[0];
    const error = item.lastError ?? '';
    const cut = error.length > 300 ? `${error.slice(0, 299)}…` : error;
    // Keys and errors hold what registries said (names, messages, page titles): escaped, so that no
    // escape sequence reaches the terminal and no line of theirs passes for one of hubcrawl's.
    return `  ${item.kind} ${terminalSafe(`${what}: ${item.lastErrorCode ?? 'ERROR'} ${cut}`)}\n`;
  });
  const more = failed.total - named.length;
  const listAll = `hubcrawl query --db ${shellQuoted(dbPath)} ${shellQuoted(failedInRunQuery(runId))}`;
  process.stderr.write(
    `hubcrawl: ${counted(failed.total, 'failed item')} in run ${runId} (every attempt is in the failures table):\n` +
      named.join('') +
      (more > 0 ? `  … and ${more} more: ${listAll}\n` : ''),
  );
}
