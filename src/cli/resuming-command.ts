/**
 * The command that resumes an unfinished run, written out from the config the run stored, for a message
 * that refuses to start another run over it (context.ts, refuseUnfinishedRun). A run resumes only with the
 * same study settings (pipeline/study.ts, STUDY_KEYS): each is written as the flags that give it, so that
 * the command pasted as it is resumes the run rather than starting another study that supersedes it.
 */
import { DEFAULT_HUB_API_URL } from '../config/schema.js';
import { shellQuoted } from '../core/shell.js';
import type { StudyKey } from '../pipeline/study.js';

/** The command-line words that give one study setting its stored value (none for the default). */
type FlagsOf = (value: unknown) => string[];

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : []);
/** `--flag value` for each value. */
const each =
  (flag: string): FlagsOf =>
  (value) =>
    strings(value).flatMap((v) => [flag, v]);
/** `--flag value` when set. */
const one =
  (flag: string, unless?: unknown): FlagsOf =>
  (value) =>
    value === undefined || value === null || value === unless ? [] : [flag, String(value)];
/** `--flag` when true. */
const on =
  (flag: string): FlagsOf =>
  (value) =>
    value === true ? [flag] : [];

/** The flag that gives each kind of seed (`seeds.<kind>`). */
const SEED_FLAGS: Record<string, FlagsOf> = {
  images: each('--image'),
  repos: each('--repo'),
  namespaces: each('--namespace'),
  searches: each('--search'),
  catalogs: each('--catalog'),
  files: each('--seeds'),
};

/** `--platform` for each platform selected, the one filter `scan` has a flag for too. */
const platformFlags = each('--platform');

/** The flags of each filter (`filters.<name>`). */
const FILTER_FLAGS: Record<string, FlagsOf> = {
  tags: one('--tags'),
  pushedAfter: one('--pushed-after'),
  pushedBefore: one('--pushed-before'),
  platforms: platformFlags,
  maxTagsPerRepository: one('--max-tags'),
};

/** The filters `scan` has flags for; a scan's config file can set the others (`filters:`), no scan flag. */
const SCAN_FILTER_FLAGS: Record<string, FlagsOf> = { platforms: platformFlags };

/** A stored object's fields (an empty one for anything else: the stored config is the dataset's JSON). */
const asRecord = (value: unknown) =>
  (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;

/** What each part of the object at a study key gives, one flag function per field. */
const fields =
  (flags: Record<string, FlagsOf>): FlagsOf =>
  (value) => {
    const o = asRecord(value);
    return Object.entries(flags).flatMap(([field, flagsOf]) => flagsOf(o[field]));
  };

/** Every study setting as flags: a key added to STUDY_KEYS must be given its flags here (the type says so). */
const STUDY_FLAGS: Record<StudyKey, FlagsOf> = {
  seeds: fields(SEED_FLAGS),
  filters: fields(FILTER_FLAGS),
  iocFiles: each('--ioc'),
  noBuiltinIocs: on('--no-builtin-iocs'),
  hashAllFiles: on('--hash-all-files'),
  debianOnly: on('--debian-only'),
  hubApiUrl: one('--hub-api', DEFAULT_HUB_API_URL),
  registryMirror: one('--registry-mirror'),
};

/**
 * `hubcrawl crawl --db <path> <flags>` for a crawl's run, `hubcrawl scan --db <path> <flags> <references>`
 * for a scan's (its references are its arguments, not --image), each word shell-quoted; and for a scan, the
 * settings its config file gave that no scan flag gives (`filters.tags` …), which only that file can give
 * again.
 */
export function resumingCommand(
  stored: unknown,
  path: string,
): { command: string; fromConfigFile: string[] } {
  const config = asRecord(stored);
  const scan = config.command === 'scan';
  const filters = asRecord(config.filters);
  const fromConfigFile = scan
    ? Object.keys(FILTER_FLAGS)
        .filter((f) => !(f in SCAN_FILTER_FLAGS) && filters[f] != null)
        .map((f) => `filters.${f}`)
    : [];
  // A scan's seeds are its references, its arguments; its filters only those it has flags for.
  const scanFlags: Partial<Record<StudyKey, FlagsOf>> = {
    seeds: () => [],
    filters: fields(SCAN_FILTER_FLAGS),
  };
  const words = Object.entries(STUDY_FLAGS).flatMap(([key, flagsOf]) =>
    ((scan ? scanFlags[key as StudyKey] : undefined) ?? flagsOf)(config[key]),
  );
  const references = scan ? strings(asRecord(config.seeds).images) : [];
  const command = [`hubcrawl ${scan ? 'scan' : 'crawl'}`, '--db', path, ...words, ...references]
    .map((w, i) => (i === 0 ? w : shellQuoted(w)))
    .join(' ');
  return { command, fromConfigFile };
}
