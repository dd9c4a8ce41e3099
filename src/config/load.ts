import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { fieldPath } from '../core/field-path.js';
import { type Config, type ConfigInput, configSchema } from './schema.js';

/**
 * Formats zod issues as `where: field.path: message`, joined with `; ` so the error stays one line.
 * An unknown key is named with its full path (`seeds.imagez: unknown setting`), as a typo should be.
 */
export function formatIssues(where: string, issues: z.core.$ZodIssue[]): string {
  return issues
    .flatMap((i) =>
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => `${where}: ${fieldPath([...i.path, k])}: unknown setting`)
        : [`${where}: ${fieldPath(i.path) || '(root)'}: ${i.message}`],
    )
    .join('; ');
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

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
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

/** Environment settings (below flags, above the file). Credentials are read elsewhere and never enter Config. */
export function settingsFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (env.HUBCRAWL_DB) out.db = env.HUBCRAWL_DB;
  if (env.HUBCRAWL_HUB_API) out.hubApiUrl = env.HUBCRAWL_HUB_API;
  if (env.HUBCRAWL_REGISTRY_MIRROR) out.registryMirror = env.HUBCRAWL_REGISTRY_MIRROR;
  if (env.HUBCRAWL_LOG_LEVEL) out.logLevel = env.HUBCRAWL_LOG_LEVEL;
  return out;
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
  env?: NodeJS.ProcessEnv;
}): Readonly<Config> {
  const fromFile = opts.fileSettings ?? (opts.file ? readConfigFile(opts.file) : {});
  const fileCheck = configSchema.safeParse(fromFile);
  if (opts.file && !fileCheck.success) {
    throw new ConfigError(`invalid config file ${formatIssues(opts.file, fileCheck.error.issues)}`);
  }
  const merged = mergeSettings(
    mergeSettings(fromFile, settingsFromEnv(opts.env ?? process.env)),
    opts.flagSettings ?? {},
  );
  const result = configSchema.safeParse(merged as ConfigInput);
  if (!result.success) {
    throw new ConfigError(`invalid settings: ${formatIssues('flags', result.error.issues)}`);
  }
  return Object.freeze(result.data);
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
