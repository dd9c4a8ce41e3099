import type { Database, Statement } from 'better-sqlite3';
import { ConfigError, FatalError } from '../../core/errors.js';
import { openDatabase } from '../../db/open.js';
import { mapSqliteError, READ_ONLY_MESSAGE } from '../../db/sqlite-errors.js';
import { type CommonOptions, datasetPath } from '../context.js';
import { EXIT } from '../exit.js';
import {
  csvRecords,
  inBatches,
  jsonArrayElements,
  type Row,
  toCsv,
  toJsonLines,
  toTable,
} from '../output.js';
import { openResultSink, refuseDatasetAsOutput, writeResult } from '../write-result.js';

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
      // Refused as a write at prepare time (open.ts guardReadOnly): that sentence says it all.
      if (err instanceof ConfigError) throw err;
      const message = (err as Error).message;
      if (/more than one statement/.test(message)) {
        throw new ConfigError(
          'query runs one SQL statement at a time: give each statement its own `hubcrawl query` (sqlite3 runs a script of several)',
          { cause: err },
        );
      }
      throw new ConfigError(`the query does not compile: ${message}`, { cause: err });
    }
    if (!stmt.reader) throw new ConfigError(READ_ONLY_MESSAGE);
    // No value is ever bound: a parameter would fail only once the rows are read (exit 3, after csv's header).
    try {
      stmt.bind();
    } catch (err) {
      throw new ConfigError(
        'the query has parameters (?, :name, @name or $name), but hubcrawl query binds none: write the values into the SQL',
        { cause: err },
      );
    }
    // Integers past 2^53 (a sum of byte counts, a user's arithmetic) would silently lose digits as doubles.
    stmt.safeIntegers(true);
    const columns = stmt.columns().map((c) => c.name);
    if (format !== 'table') {
      await streamRows(db, stmt, batchWriter(format as StreamedFormat, columns), opts.out, dataset);
      return EXIT.ok;
    }
    let rows: Row[];
    try {
      rows = stmt.all() as Row[];
    } catch (err) {
      // `INSERT … RETURNING` reads as well as writes: query_only stops it here.
      throw queryFailure(err, db);
    }
    // An aligned table needs every row first (its column widths); the other formats stream (streamRows).
    // No cell is cut: a path or a tag list copied from a query's table must be the whole value.
    await writeResult(toTable(columns, rows, Number.POSITIVE_INFINITY), opts.out, { dataset });
    return EXIT.ok;
  } finally {
    db.close();
  }
}

type StreamedFormat = 'csv' | 'json' | 'jsonl';

/** How a format writes a result batch by batch: what comes before the first batch, each batch, and the end. */
interface BatchWriter {
  head: string;
  batch(rows: Row[], first: boolean): string;
  tail(rowCount: number): string;
}

function batchWriter(format: StreamedFormat, columns: string[]): BatchWriter {
  const none = () => '';
  if (format === 'csv')
    return { head: toCsv(columns, []), batch: (rows) => csvRecords(columns, rows), tail: none };
  if (format === 'jsonl') return { head: '', batch: (rows) => toJsonLines(rows), tail: none };
  // The same text as JSON.stringify(rows, null, 2), written as the rows come.
  return {
    head: '',
    batch: (rows, first) => `${first ? '[\n' : ',\n'}${jsonArrayElements(rows)}`,
    tail: (rowCount) => (rowCount === 0 ? '[]\n' : '\n]\n'),
  };
}

/**
 * csv, json and jsonl, written as SQLite yields the rows: a query over a whole fact table (tens of
 * millions of rows with --hash-all-files) must not be held in memory first.
 */
async function streamRows(
  db: Database,
  stmt: Statement,
  writer: BatchWriter,
  out: string | undefined,
  dataset: string,
): Promise<void> {
  const sink = openResultSink(out, { dataset });
  let first = true;
  try {
    if (writer.head !== '') await sink.write(writer.head);
    // sink.write says false once the reader has gone: the query stops early.
    const rowCount = await inBatches(stmt.iterate() as Iterable<Row>, (batch) => {
      const text = writer.batch(batch, first);
      first = false;
      return sink.write(text);
    });
    const tail = writer.tail(rowCount);
    if (tail !== '') await sink.write(tail);
    await sink.end();
  } catch (err) {
    // Whatever failed (the query, a write, the final flush), no cut-off --out file stays behind.
    await sink.discard();
    throw err instanceof ConfigError || err instanceof FatalError ? err : queryFailure(err, db);
  }
}

/** SQLite's codes for what a query itself asked (not memory, temp files or an interrupt of the machine's). */
const QUERY_OWN_CODES = new Set([
  'SQLITE_ERROR',
  'SQLITE_AUTH',
  'SQLITE_TOOBIG',
  'SQLITE_MISMATCH',
  'SQLITE_RANGE',
  'SQLITE_CONSTRAINT',
]);

/**
 * An error while the query runs: the actionable SQLite errors typed as everywhere (mapSqliteError); any
 * other SQLite error is the query's own (a function refused, `load_extension` not authorized, a value it
 * cannot handle), so a usage error naming it, exit 2, not an aborted run's exit 3.
 */
function queryFailure(err: unknown, db: Database): unknown {
  const mapped = mapSqliteError(err, db);
  const code = (mapped as { code?: unknown } | null)?.code;
  if (mapped === err && typeof code === 'string' && QUERY_OWN_CODES.has(code)) {
    return new ConfigError(`the query failed: ${(err as Error).message} (${code})`, { cause: err });
  }
  return mapped;
}
