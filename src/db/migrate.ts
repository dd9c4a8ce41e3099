import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Database } from 'better-sqlite3';
import { ConfigError, FatalError } from '../core/errors.js';
import { mapSqliteError } from './sqlite-errors.js';

/**
 * The migration runner. `migrations/NNNN_slug.sql` files are forward-only: file N takes the schema from
 * user_version N-1 to N. Each pending file runs in its own transaction together with the
 * `PRAGMA user_version` bump, so a kill mid-migration leaves the previous version intact.
 */

/** Where the migrations live: `<package>/migrations`, from both src/db (tsx, vitest) and dist/db (built). */
export const DEFAULT_MIGRATIONS_DIR: string = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const FILE_RE = /^(\d{4})_([a-z0-9][a-z0-9_-]*)\.sql$/;

/** Reads and orders the migration files; versions must run 1, 2, 3… without gaps. */
export function loadMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Migration[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new ConfigError(
      `cannot read the migrations directory ${dir}; is the package installed completely?`,
      {
        cause: err,
      },
    );
  }
  const migrations = names
    .filter((n) => n.endsWith('.sql'))
    .map((name) => {
      const m = FILE_RE.exec(name);
      if (!m) throw new ConfigError(`migration file ${name} in ${dir} is not named NNNN_slug.sql`);
      return { version: Number(m[1]), name, sql: readFileSync(join(dir, name), 'utf8') };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new ConfigError(`migrations in ${dir} skip or repeat a number at ${m.name} (expected ${i + 1})`);
    }
  });
  return migrations;
}

/** The schema version recorded in the database file. */
export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Throws when the database was written by a newer hubcrawl than this one. */
export function assertNotNewer(db: Database, codeVersion: number): void {
  const current = schemaVersion(db);
  if (current > codeVersion) {
    throw new ConfigError(
      `the dataset ${db.name} was created by a newer hubcrawl (schema ${current}, this one knows ${codeVersion}); upgrade hubcrawl to use it`,
    );
  }
}

/** Applies pending migrations in order; returns the versions applied (empty when up to date). */
export function migrate(db: Database, dir: string = DEFAULT_MIGRATIONS_DIR): number[] {
  const migrations = loadMigrations(dir);
  const latest = migrations.length;
  assertNotNewer(db, latest);
  const applied: number[] = [];
  for (const m of migrations) {
    if (m.version <= schemaVersion(db)) continue;
    // IMMEDIATE takes the write lock first, and the version is read again under it: two processes opening
    // the same older dataset at once (two `stats` from cron) must not both apply the file; the one that
    // waited finds it applied.
    const apply = db.transaction(() => {
      if (m.version <= schemaVersion(db)) return false;
      db.exec(m.sql);
      // PRAGMA cannot take a bound parameter; the version is an integer we parsed ourselves.
      db.pragma(`user_version = ${m.version}`);
      return true;
    });
    let ran: boolean;
    try {
      ran = apply.immediate();
    } catch (err) {
      const mapped = mapSqliteError(err, db);
      if (mapped !== err) throw mapped;
      throw new FatalError(`migration ${m.name} failed on ${db.name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (ran) applied.push(m.version);
  }
  return applied;
}
