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

/** The flags of each filter (`filters.<name>`). */
const FILTER_FLAGS: Record<string, FlagsOf> = {
  tags: one('--tags'),
  pushedAfter: one('--pushed-after'),
  pushedBefore: one('--pushed-before'),
  platforms: each('--platform'),
  maxTagsPerRepository: one('--max-tags'),
};

/** What each part of the object at a study key gives, one flag function per field. */
const fields =
  (flags: Record<string, FlagsOf>): FlagsOf =>
  (value) => {
    const o = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
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

/** The filters `scan` has no flags for: a scan's config file can still set them (`filters:`). */
const NOT_SCAN_FILTERS = ['tags', 'pushedAfter', 'pushedBefore', 'maxTagsPerRepository'];

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
  const config = (typeof stored === 'object' && stored !== null ? stored : {}) as Record<string, unknown>;
  const scan = config.command === 'scan';
  const filters = (config.filters ?? {}) as Record<string, unknown>;
  const fromConfigFile = scan
    ? NOT_SCAN_FILTERS.filter((f) => filters[f] != null).map((f) => `filters.${f}`)
    : [];
  const words = Object.entries(STUDY_FLAGS).flatMap(([key, flagsOf]) => {
    if (!scan) return flagsOf(config[key]);
    if (key === 'seeds') return [];
    // The filters a scan can be given by flags: its platforms.
    return key === 'filters' ? FILTER_FLAGS.platforms!(filters.platforms) : flagsOf(config[key]);
  });
  const references = scan ? strings((config.seeds as Record<string, unknown> | undefined)?.images) : [];
  const command = [`hubcrawl ${scan ? 'scan' : 'crawl'}`, '--db', path, ...words, ...references]
    .map((w, i) => (i === 0 ? w : shellQuoted(w)))
    .join(' ');
  return { command, fromConfigFile };
}
