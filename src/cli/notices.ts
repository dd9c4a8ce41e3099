import { shellQuoted } from '../core/shell.js';
import { failedInRunFirst } from '../db/frontier.js';
import { openDatabase } from '../db/open.js';
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

/** How many failed items tellFailedItems names; the rest are counted. */
const FAILED_ITEMS_NAMED = 5;

/**
 * The failed items of a crawl's run, the first few named with their last error, on stderr even with
 * --quiet: a seed whose host is down or whose URL is wrong is otherwise only "1 failed item" in the summary,
 * its reason in log lines that --quiet hides. Nothing when none failed.
 */
export function tellFailedItems(dbPath: string, runId: number, failedItems: number): void {
  if (failedItems === 0) return;
  const db = openDatabase(dbPath, { readonly: true });
  let named: string[];
  let total: number;
  try {
    const prefix = runKeyPrefix(runId);
    // The items the summary's count is of (run.ts counts them so when the run resumed).
    const failed = failedInRunFirst(db, runId, FAILED_ITEMS_NAMED);
    total = failed.total;
    named = failed.first.map((item) => {
      // A run's own items are keyed `<run>|…`; a layer by `<digest>|<analyzer version>|<selection>`.
      const what = item.key.startsWith(prefix) ? item.key.slice(prefix.length) : item.key.split('|')[0];
      const error = item.lastError ?? '';
      const cut = error.length > 300 ? `${error.slice(0, 299)}…` : error;
      // Keys and errors hold what registries said (names, messages, page titles): escaped, so that no
      // escape sequence reaches the terminal and no line of theirs passes for one of hubcrawl's.
      return `  ${item.kind} ${terminalSafe(`${what}: ${item.lastErrorCode ?? 'ERROR'} ${cut}`)}\n`;
    });
  } finally {
    db.close();
  }
  if (total === 0) return;
  const more = total - named.length;
  process.stderr.write(
    `hubcrawl: ${counted(total, 'failed item')} in run ${runId} (every attempt is in the failures table):\n` +
      named.join('') +
      (more > 0 ? `  … and ${more} more: ${listAllCommand(dbPath, runId)}\n` : ''),
  );
}

/** The query that lists every item tellFailedItems counts, as a command to paste. */
function listAllCommand(dbPath: string, runId: number): string {
  const sql =
    "SELECT kind, key, last_error_code, last_error FROM frontier fr WHERE state = 'failed' " +
    `AND EXISTS (SELECT 1 FROM failures f WHERE f.frontier_id = fr.id AND f.run_id = ${runId})`;
  return `hubcrawl query --db ${shellQuoted(dbPath)} ${shellQuoted(sql)}`;
}
