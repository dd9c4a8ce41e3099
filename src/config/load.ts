import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { fieldPath } from '../core/field-path.js';
import { nearestNames } from '../core/nearest-name.js';
import { isPlainObject } from '../core/plain-object.js';
import { type Config, type ConfigInput, configSchema } from './schema.js';

/**
 * Formats zod issues as `where: field.path: message`, joined with `; ` so the error stays one line.
 * An unknown key is named with its full path, as a typo should be, and with the setting it most likely
 * meant (`seeds.imagez: unknown setting (did you mean seeds.images?)`).
 */
export function formatIssues(where: string, issues: z.core.$ZodIssue[]): string {
  return issues
    .flatMap((i) =>
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => `${where}: ${fieldPath([...i.path, k])}: unknown setting${didYouMean(i.path, k)}`)
        : [`${where}: ${fieldPath(i.path) || '(root)'}: ${i.message}`],
    )
    .join('; ');
}

/** ` (did you mean seeds.images?)` for the unknown `key` of the object at `path`, or `''` when none is near. */
function didYouMean(path: ReadonlyArray<PropertyKey>, key: string): string {
  const near = nearestNames(key, settingNamesAt(path)).map((name) => fieldPath([...path, name]));
  return near.length === 0 ? '' : ` (did you mean ${near.join(' or ')}?)`;
}

/** The settings the schema knows in the object at `path` of a config (a section, one registry's settings). */
function settingNamesAt(path: ReadonlyArray<PropertyKey>): string[] {
  let schema: z.ZodType | undefined = configSchema;
  for (const step of path) {
    schema = unwrapped(schema);
    if (schema instanceof z.ZodObject) schema = schema.shape[String(step)];
    else if (schema instanceof z.ZodRecord) schema = schema.valueType as z.ZodType;
    else return [];
  }
  schema = unwrapped(schema);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

/** The schema inside `.default()`, `.optional()` and `.nullable()`. */
function unwrapped(schema: z.ZodType | undefined): z.ZodType | undefined {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
    s = s.unwrap() as z.ZodType;
  }
  return s;
}

/** Reads a YAML or JSON config file into a plain object (not yet validated). */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML or JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`config file ${path} must hold a mapping of settings at its top level`);
  }
  return data as Record<string, unknown>;
}

/** Deep merge where `over` wins; arrays are replaced, not concatenated, except where noted by the caller. */
export function mergeSettings(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const prev = out[key];
    out[key] = isPlainObject(prev) && isPlainObject(value) ? mergeSettings(prev, value) : value;
  }
  return out;
}

/** The HUBCRAWL_* variables that hold settings, and the setting each one sets. */
export const ENV_SETTINGS = [
  { variable: 'HUBCRAWL_DB', key: 'db' },
  { variable: 'HUBCRAWL_HUB_API', key: 'hubApiUrl' },
  { variable: 'HUBCRAWL_REGISTRY_MIRROR', key: 'registryMirror' },
  { variable: 'HUBCRAWL_LOG_LEVEL', key: 'logLevel' },
] as const satisfies ReadonlyArray<{ variable: string; key: keyof typeof configSchema.shape }>;

/** Environment settings (below flags, above the file). Credentials are read elsewhere and never enter Config. */
export function settingsFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { variable, key } of ENV_SETTINGS) {
    const value = env[variable];
    if (value) out[key] = value;
  }
  return out;
}

/**
 * Validates each HUBCRAWL_* setting variable on its own, so a bad value is an error naming the variable
 * (not the flags it is merged with), and every command refuses it alike, whether or not it reads that
 * setting or a flag overrides it, as a config file is checked whole.
 */
export function checkEnvSettings(env: NodeJS.ProcessEnv = process.env): void {
  const problems: string[] = [];
  for (const { variable, key } of ENV_SETTINGS) {
    const value = env[variable];
    if (!value) continue;
    const result = configSchema.shape[key].safeParse(value);
    if (!result.success) {
      problems.push(
        `environment variable ${variable}: ${result.error.issues.map((i) => i.message).join('; ')}`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid settings: ${problems.join('; ')}`);
}

/**
 * Builds the frozen Config: flags > env > file > defaults.
 * @param flagSettings settings from command-line flags, already shaped like the config file.
 */
export function loadConfig(opts: {
  file?: string;
  /** The file's settings already read (and adjusted, e.g. relative paths resolved); default: read `file`. */
  fileSettings?: Record<string, unknown>;
  flagSettings?: Record<string, unknown>;
  /** The flag that sets a setting (its dotted path), to name in an error; default: the path. */
  flagOf?: (path: string) => string | undefined;
  env?: NodeJS.ProcessEnv;
}): Readonly<Config> {
  const fromFile = opts.fileSettings ?? (opts.file ? readConfigFile(opts.file) : {});
  const fileCheck = configSchema.safeParse(fromFile);
  if (opts.file && !fileCheck.success) {
    throw new ConfigError(`invalid config file ${formatIssues(opts.file, fileCheck.error.issues)}`);
  }
  const env = opts.env ?? process.env;
  checkEnvSettings(env);
  const merged = mergeSettings(mergeSettings(fromFile, settingsFromEnv(env)), opts.flagSettings ?? {});
  const result = configSchema.safeParse(merged as ConfigInput);
  if (!result.success) throw flagsRefused(result.error.issues, opts.flagOf);
  return Object.freeze(result.data);
}

/**
 * The settings the flags gave (the file and the environment were checked on their own above), each named
 * as the user wrote it: `--layer-concurrency: …`, not the config field `layerConcurrency`.
 */
function flagsRefused(
  issues: z.core.$ZodIssue[],
  flagOf: ((path: string) => string | undefined) | undefined,
): ConfigError {
  const named = issues.map((i) => {
    const path = fieldPath(i.path);
    // `filters.platforms[1]` is the second --platform.
    const flag = flagOf?.(path.replace(/\[\d+\]$/, ''));
    if (flag === undefined) return formatIssues('flags', [i]);
    return `${flag}: ${i.message.replace(/^[A-Z]/, (c) => c.toLowerCase())}`;
  });
  return new ConfigError(`invalid settings: ${named.join('; ')}; run with --help for usage`);
}

/** The config as recorded with a crawl run: credentials removed. */
export function redactConfig(config: Config): Record<string, unknown> {
  const registries: Record<string, unknown> = {};
  for (const [host, settings] of Object.entries(config.registries)) {
    const { password: _p, username: _u, ...rest } = settings;
    registries[host] = { ...rest, ...(settings.username ? { username: '[redacted]' } : {}) };
  }
  return { ...config, registries };
}
