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
