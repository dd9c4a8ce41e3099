/**
 * The built-in IOC sets: every `<repo>/iocs/*.json`, shipped in the npm package ("files": ["iocs"]).
 * This module sits at src/analyzer/iocs/ (tsx, vitest) or dist/analyzer/iocs/ (after `npm run build`),
 * so the folder is three levels up in both layouts; a build with the dev tsconfig (dist/src/…) is four.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../core/errors.js';
import { parseIocSet } from './load.js';
import type { IocSet } from './schema.js';

const CANDIDATES = ['../../../iocs/', '../../../../iocs/'];

/** Absolute path of the built-in IOC folder; throws a ConfigError when the install is incomplete. */
export function builtinIocDir(): string {
  for (const rel of CANDIDATES) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}xz-cve-2024-3094.json`)) return dir;
  }
  throw new ConfigError(
    `the built-in IOC folder (iocs/) was not found next to ${fileURLToPath(import.meta.url)}; reinstall hubcrawl`,
  );
}

let cached: IocSet[] | null = null;

/** Every built-in set, validated, sorted by id; read once per process. */
export function builtinIocSets(): IocSet[] {
  if (cached !== null) return cached;
  const dir = builtinIocDir();
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const sets = files.map((f) => {
    const path = `${dir}${f}`;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new ConfigError(`${path}: the built-in IOC set is not valid JSON; reinstall hubcrawl`, {
        cause: err,
      });
    }
    return parseIocSet(json, path);
  });
  cached = sets.sort((a, b) => a.id.localeCompare(b.id));
  return cached;
}
