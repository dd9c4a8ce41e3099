import { dirname, isAbsolute, resolve } from 'node:path';
import { builtinIocSets } from '../analyzer/iocs/builtin.js';
import { loadIocSetFile } from '../analyzer/iocs/load.js';
import type { IocSet } from '../analyzer/iocs/schema.js';
import { checkEnvSettings, loadConfig, readConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import type { Database } from '../db/open.js';
import { RunStore } from '../db/run-store.js';
import { byAnotherAnalyzer, sameStudy } from '../pipeline/study.js';
import { resumingCommand } from './resuming-command.js';

/** Options every command accepts. */
export interface CommonOptions {
  config?: string;
  db?: string;
  logLevel?: string;
  quiet?: boolean;
}

/** The logger for a command: --quiet keeps only errors. */
export function commandLogger(opts: CommonOptions, config?: Readonly<Config>): Logger {
  const level = opts.quiet ? 'error' : (opts.logLevel ?? config?.logLevel ?? 'info');
  return createLogger({ level: level as Config['logLevel'] });
}

/**
 * Paths inside a config file (db, seed files, IOC files) are relative to the file's folder, so a study
 * folder can be moved or shared; paths given as flags are relative to the working directory.
 */
function resolveFilePaths(file: string): Record<string, unknown> {
  const raw = readConfigFile(file);
  const base = dirname(resolve(file));
  const abs = (p: unknown) =>
    typeof p === 'string' && !isAbsolute(p) && p !== ':memory:' ? resolve(base, p) : p;
  const out: Record<string, unknown> = { ...raw };
  if (typeof raw.db === 'string') out.db = abs(raw.db);
  if (Array.isArray(raw.iocFiles)) out.iocFiles = raw.iocFiles.map(abs);
  if (typeof raw.dockerConfig === 'string') out.dockerConfig = abs(raw.dockerConfig);
  const seeds = raw.seeds;
  if (seeds && typeof seeds === 'object' && !Array.isArray(seeds)) {
    const s = seeds as Record<string, unknown>;
    out.seeds = { ...s, ...(Array.isArray(s.files) ? { files: s.files.map(abs) } : {}) };
  }
  return out;
}

/**
 * The dataset a reading command opens: --db, else HUBCRAWL_DB (as for crawl), else ./hubcrawl.sqlite. A
 * HUBCRAWL_* setting variable with a bad value is refused here as the crawl refuses it (checkEnvSettings).
 */
export function datasetPath(opts: Pick<CommonOptions, 'db'>, env: NodeJS.ProcessEnv = process.env): string {
  checkEnvSettings(env);
  return opts.db ?? (env.HUBCRAWL_DB || './hubcrawl.sqlite');
}

/** Loads the config: flags over env over the file over defaults; file-relative paths resolved. */
/**
 * The flag that sets each setting a flag can give (dotted config paths), so that a refused value is named
 * as the user wrote it. Seeds and filters are crawl's and scan's; the rest every dataset command's.
 */
const FLAG_OF_SETTING: Readonly<Record<string, string>> = {
  db: '--db',
  logLevel: '--log-level',
  'seeds.images': '--image',
  'seeds.repos': '--repo',
  'seeds.namespaces': '--namespace',
  'seeds.searches': '--search',
  'seeds.catalogs': '--catalog',
  'seeds.files': '--seeds',
  'filters.tags': '--tags',
  'filters.pushedAfter': '--pushed-after',
  'filters.pushedBefore': '--pushed-before',
  'filters.platforms': '--platform',
  'filters.maxTagsPerRepository': '--max-tags',
  iocFiles: '--ioc',
  concurrency: '--concurrency',
  layerConcurrency: '--layer-concurrency',
  maxPulls: '--max-pulls',
  maxAttempts: '--max-attempts',
  hubApiUrl: '--hub-api',
  registryMirror: '--registry-mirror',
  dockerConfig: '--docker-config',
};

export function configFor(opts: CommonOptions, flagSettings: Record<string, unknown>): Readonly<Config> {
  return loadConfig({
    flagOf: (path) => FLAG_OF_SETTING[path],
    flagSettings: stripUndefined({ ...flagSettings, db: opts.db }),
    ...(opts.config ? { file: opts.config, fileSettings: resolveFilePaths(opts.config) } : {}),
  });
}

export function stripUndefined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * One user IOC set file, read and checked as every command that loads it does (crawl, scan, rematch,
 * `iocs list` and `iocs check`): a file that claims a built-in set's id and version with other rules is
 * refused whatever --no-builtin-iocs says, since a dataset that ever held the built-in set stores both
 * under one key.
 */
export async function loadUserIocSet(file: string): Promise<IocSet> {
  const set = await loadIocSetFile(file);
  const twin = builtinIocSets().find((b) => b.id === set.id && b.version === set.version);
  if (twin && JSON.stringify(twin.rules) !== JSON.stringify(set.rules)) {
    throw new ConfigError(
      `IOC set ${file} has the id and version of the built-in set ${set.id}@${set.version} but other rules; give it a version (or id) of its own, so the dataset keeps the two apart`,
    );
  }
  return set;
}

/**
 * The built-in IOC sets (unless turned off) plus every file named; duplicates of id are refused, and so
 * is a file that claims a built-in set's id and version with other rules: the dataset stores a set by id
 * and version, so it would silently replace the built-in one there, and findings and exports would cite
 * rules under a name and version that the built-in set does not have.
 */
export async function iocSetsFor(config: Pick<Config, 'noBuiltinIocs' | 'iocFiles'>): Promise<IocSet[]> {
  const sources: Array<{ set: IocSet; from: string }> = config.noBuiltinIocs
    ? []
    : builtinIocSets().map((set) => ({ set, from: 'the built-in set' }));
  for (const file of config.iocFiles) sources.push({ set: await loadUserIocSet(file), from: file });
  const seen = new Map<string, string>();
  for (const { set, from } of sources) {
    const first = seen.get(set.id);
    if (first !== undefined) {
      const fix =
        first === 'the built-in set'
          ? 'give yours its own id, or leave the built-in sets out with --no-builtin-iocs'
          : 'give each set its own id, or load one of them';
      throw new ConfigError(`two IOC sets share the id "${set.id}": ${first} and ${from}; ${fix}`);
    }
    seen.set(set.id, from);
  }
  const sets = sources.map((s) => s.set);
  if (sets.length === 0)
    throw new ConfigError('no IOC sets to match: drop --no-builtin-iocs or add --ioc FILE');
  return sets;
}

/** How to resume a run: its command, and the config file's part in it where flags cannot say all. */
function resumption({ command, fromConfigFile }: ReturnType<typeof resumingCommand>): string {
  if (fromConfigFile.length === 0) return `\`${command}\` resumes it`;
  return `\`${command}\` with the config file it was started with (--config), which set ${fromConfigFile.join(', ')} that scan has no flags for, resumes it`;
}

/**
 * Another run (a scan, a rematch) would make an unfinished crawl no longer the latest run, so the next
 * `crawl` would not resume it, and a fresh run would claim its pending work (the frontier is shared)
 * under the wrong run id: those commands refuse instead. `resumable`: the study the command would run (a
 * scan's); an unfinished run of that same study is not refused, since the command resumes it. An
 * unfinished rematch is no such run (RunStore.latestCrawl passes over it): nothing resumes it, and the
 * next rematch matches every image again. Closes `db` before throwing.
 */
export function refuseUnfinishedRun(
  db: Database,
  path: string,
  resumable?: { config: Readonly<Config>; iocSets: readonly IocSet[] },
): void {
  const last = new RunStore(db).latestCrawl();
  if (!last || (last.status !== 'running' && last.status !== 'aborted')) return;
  // Nothing resumes a run an older analyzer started: the next crawl or scan starts a new one anyway.
  if (byAnotherAnalyzer(last)) return;
  if (resumable && sameStudy(last, resumable.config, resumable.iocSets)) return;
  db.close();
  throw new ConfigError(
    `the dataset ${path} holds unfinished run ${last.id}, started ${last.startedAt}; finish it first: ` +
      `${resumption(resumingCommand(last.config, path))}, or use another --db`,
  );
}
