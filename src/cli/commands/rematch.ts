import { IocStore } from '../../db/ioc-store.js';
import { acquireCrawlLock } from '../../db/lock.js';
import { openDatabase } from '../../db/open.js';
import { matchImages } from '../../pipeline/match.js';
import { type CommonOptions, commandLogger, configFor, iocSetsFor } from '../context.js';
import { EXIT } from '../exit.js';

export interface RematchOptions extends CommonOptions {
  ioc?: string[];
  builtinIocs?: boolean;
}

/**
 * `hubcrawl rematch`: re-applies the IOC sets (built-in plus --ioc files) to the stored facts of every
 * image and replaces its findings, without one network request. Candidate files and signatures were
 * chosen at analysis time; the command warns when a set asks for files the stored facts may lack.
 */
export async function rematchCommand(opts: RematchOptions): Promise<number> {
  const config = configFor(opts, {
    ...(opts.ioc && opts.ioc.length > 0 ? { iocFiles: opts.ioc } : {}),
    ...(opts.builtinIocs === false ? { noBuiltinIocs: true } : {}),
  });
  const log = commandLogger(opts, config);
  const sets = await iocSetsFor(config);
  const lock = acquireCrawlLock(config.db);
  const db = openDatabase(config.db);
  try {
    new IocStore(db).putSets(sets);
    const result = matchImages(db, sets, null, { all: true });
    if (result.skipped.length > 0) {
      log.warn(
        { images: result.skipped.length },
        'images with layers not (yet) analyzed were left as they were',
      );
    }
    process.stdout.write(
      `re-matched ${result.images} images against ${sets.map((s) => `${s.id}@${s.version}`).join(', ')}: ` +
        `${result.findings} findings (${result.skipped.length} images incomplete)\n`,
    );
    return EXIT.ok;
  } finally {
    db.close();
    lock.release();
  }
}
