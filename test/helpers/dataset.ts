/**
 * A comparable snapshot of a hubcrawl dataset: every table that holds research data, with the columns
 * that must not depend on how the crawl went (run ids, timestamps and row ids left out), rows sorted.
 * Two crawls of the same registry content — one clean, one killed and resumed, one behind a faulty
 * network — must give equal snapshots: nothing lost, nothing duplicated.
 */
import BetterSqlite3 from 'better-sqlite3';
import { REPORT_COLUMNS } from '../../src/cli/commands/report.js';

/** Table (or view) → the stable columns selected, as SQL expressions over the table's rows. */
const STABLE: Record<string, { from: string; columns: string[] }> = {
  repositories: {
    from: 'repositories r JOIN registries g ON g.id = r.registry_id',
    columns: [
      'g.host',
      'r.namespace',
      'r.name',
      'r.pull_count',
      'r.star_count',
      'r.last_updated',
      'r.is_official',
      'r.description',
    ],
  },
  // Not DISTINCT: a tag observed again by a second run (a resume that started a new run) would show.
  tag_observations: {
    from: 'tag_observations t JOIN repositories r ON r.id = t.repository_id JOIN registries g ON g.id = r.registry_id',
    columns: ['g.host', 'r.full_name', 't.tag', 't.digest', 't.pushed_at'],
  },
  manifests: {
    from: 'manifests',
    columns: ['digest', 'media_type', 'kind', 'size', 'length(raw)', 'config_digest'],
  },
  index_children: {
    from: 'index_children',
    columns: [
      'index_digest',
      'position',
      'child_digest',
      'media_type',
      'size',
      'os',
      'architecture',
      'variant',
      'is_attestation',
    ],
  },
  images: {
    from: 'images',
    columns: [
      'digest',
      'platform',
      'os',
      'architecture',
      'variant',
      'config_digest',
      'is_debian_derived',
      'os_id',
      'os_version',
      'match_fingerprint',
    ],
  },
  image_layers: {
    from: 'image_layers',
    columns: ['image_digest', 'position', 'layer_digest', 'media_type', 'size'],
  },
  layers: {
    from: 'layers',
    columns: [
      'digest',
      'media_type',
      'compressed_size',
      'uncompressed_size',
      'entry_count',
      'compression',
      'analyzer_version',
      'selection',
      'status',
      'error_code',
      'error_message',
      'attempts',
    ],
  },
  layer_files: {
    from: 'layer_files',
    columns: ['layer_digest', 'seq', 'path', 'size', 'mode', 'sha256', 'md5', 'link_target'],
  },
  layer_packages: {
    from: 'layer_packages',
    columns: ['layer_digest', 'seq', 'name', 'version', 'architecture', 'source', 'status', 'status_file'],
  },
  layer_md5sums: {
    from: 'layer_md5sums',
    columns: ['layer_digest', 'seq', 'package', 'info_file', 'md5', 'path'],
  },
  layer_os_release: { from: 'layer_os_release', columns: ['layer_digest', 'seq', 'path', 'fields_json'] },
  layer_whiteouts: { from: 'layer_whiteouts', columns: ['layer_digest', 'seq', 'path', 'opaque'] },
  layer_signature_hits: {
    from: 'layer_signature_hits',
    columns: ['layer_digest', 'seq', 'path', 'ioc_set_id', 'rule_id', '"offset"'],
  },
  layer_symlinks: { from: 'layer_symlinks', columns: ['layer_digest', 'seq', 'path', 'target'] },
  layer_dirs: { from: 'layer_dirs', columns: ['layer_digest', 'seq', 'path'] },
  findings: {
    from: 'findings',
    columns: [
      'image_digest',
      'platform',
      'ioc_set_id',
      'ioc_set_version',
      'rule_id',
      'evidence_kind',
      'path',
      'value',
      'layer_digest',
      'layer_position',
      'in_final_fs',
    ],
  },
  report_rows: {
    from: 'report_rows',
    // The publication columns but the observation times, which differ from run to run.
    columns: REPORT_COLUMNS.filter((c) => c !== 'first_seen' && c !== 'last_seen'),
  },
  // Work left over: a finished crawl has every item done, whatever happened on the way.
  frontier_states: { from: 'frontier', columns: ['kind', 'state', 'count(*)'] },
};

export type DatasetTable = keyof typeof STABLE;
export type DatasetSnapshot = Record<string, Array<Record<string, unknown>>>;

/** The tables datasetSnapshot covers. */
export const DATASET_TABLES = Object.keys(STABLE) as DatasetTable[];

function query(db: BetterSqlite3.Database, table: string): Array<Record<string, unknown>> {
  const spec = STABLE[table];
  if (!spec) throw new Error(`datasetSnapshot knows no table ${table}`);
  const cols = spec.columns.map((c, i) => `${c} AS c${i}`).join(', ');
  const isCount = spec.columns.some((c) => c.startsWith('count('));
  const keys = spec.columns.filter((c) => !c.startsWith('count('));
  const group = isCount ? ` GROUP BY ${keys.join(', ')}` : '';
  const order = spec.columns.map((_, i) => `c${i}`).join(', ');
  const rows = db.prepare(`SELECT ${cols} FROM ${spec.from}${group} ORDER BY ${order}`).all() as Array<
    Record<string, unknown>
  >;
  // Name the columns after their expressions without the table alias, for readable diffs.
  return rows.map((row) =>
    Object.fromEntries(spec.columns.map((c, i) => [c.replace(/^\w+\./, '').replace(/"/g, ''), row[`c${i}`]])),
  );
}

/**
 * Reads a dataset file (read-only) into comparable rows per table, stable columns only, sorted.
 * @param tables which tables (default: all of DATASET_TABLES).
 */
export function datasetSnapshot(
  dbPath: string,
  tables: readonly DatasetTable[] = DATASET_TABLES,
): DatasetSnapshot {
  const db = new BetterSqlite3(dbPath, { readonly: true, fileMustExist: true });
  try {
    return Object.fromEntries(tables.map((t) => [t, query(db, t)]));
  } finally {
    db.close();
  }
}

/** `PRAGMA integrity_check` of a dataset file: 'ok' when the file is sound. */
export function integrityCheck(dbPath: string): string {
  const db = new BetterSqlite3(dbPath, { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    return rows.map((r) => r.integrity_check).join('\n');
  } finally {
    db.close();
  }
}

/** Runs one read-only SQL query against a dataset file (for assertions). */
export function queryDataset<T = Record<string, unknown>>(
  dbPath: string,
  sql: string,
  ...params: unknown[]
): T[] {
  const db = new BetterSqlite3(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}
