import type { Statement } from 'better-sqlite3';
import { ConfigError } from '../../core/errors.js';
import { openDatabase } from '../../db/open.js';
import { mapSqliteError, READ_ONLY_MESSAGE } from '../../db/sqlite-errors.js';
import { type CommonOptions, datasetPath } from '../context.js';
import { EXIT } from '../exit.js';
import { type Row, toCsv, toJsonLines, toTable } from '../output.js';
import { refuseDatasetAsOutput, writeResult } from '../write-result.js';

export interface QueryOptions extends CommonOptions {
  format?: string;
  out?: string;
}

/**
 * `hubcrawl query SQL`: read-only SQL over the dataset. The database is opened read-only with
 * query_only on, so a write statement fails with a clear error rather than changing the data.
 */
export async function queryCommand(sql: string, opts: QueryOptions): Promise<number> {
  const format = opts.format ?? 'table';
  if (!['table', 'csv', 'json', 'jsonl'].includes(format)) {
    throw new ConfigError(`query format "${format}" is not one of table, csv, json, jsonl`);
  }
  const dataset = datasetPath(opts);
  // Before the query runs: a long one should not end in a refusal.
  if (opts.out !== undefined) refuseDatasetAsOutput(opts.out, dataset);
  const db = openDatabase(dataset, { readonly: true });
  try {
    let stmt: Statement;
    try {
      stmt = db.prepare(sql);
    } catch (err) {
      throw new ConfigError(`the query does not compile: ${(err as Error).message}`, { cause: err });
    }
    if (!stmt.reader) throw new ConfigError(READ_ONLY_MESSAGE);
    let rows: Row[];
    try {
      rows = stmt.all() as Row[];
    } catch (err) {
      // `INSERT … RETURNING` reads as well as writes: query_only stops it here.
      throw mapSqliteError(err, db);
    }
    const columns = stmt.columns().map((c) => c.name);
    let text: string;
    if (format === 'csv') text = toCsv(columns, rows);
    else if (format === 'json') text = `${JSON.stringify(rows, null, 2)}\n`;
    else if (format === 'jsonl') text = toJsonLines(rows);
    else text = toTable(columns, rows);
    await writeResult(text, opts.out, { dataset });
    return EXIT.ok;
  } finally {
    db.close();
  }
}
