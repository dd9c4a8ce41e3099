import type { Writable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import { counted } from './plural.js';

export type Row = Record<string, unknown>;

/**
 * Cells that a spreadsheet would run as a formula start with = + - @, a tab or a carriage return
 * (OWASP "CSV injection"). Prefixing a single quote keeps the text and stops the formula.
 */
export function neutralizeFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Buffer.isBuffer(v)) return `x'${v.toString('hex')}'`;
  return JSON.stringify(v);
}

/**
 * One CSV cell. Only text is formula-neutralized: a number SQLite returned (a finite double or a bigint)
 * is written as is, so `-1` stays a number for a spreadsheet. The text "-1" is still neutralized: the
 * dataset stored it as text, and its cells are the image authors' strings. An infinite double (`-Inf`)
 * is written as text a spreadsheet would not read as a number, so it is treated as text.
 */
function csvCell(v: unknown): string {
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isFinite(v))) return String(v);
  return neutralizeFormula(cellText(v));
}

/** CSV records (no header) for `rows`, in the same dialect as toCsv; for writing large tables in batches. */
export function csvRecords(columns: string[], rows: Row[]): string {
  const records = rows.map((r) => columns.map((c) => csvCell(r[c])));
  return stringify(records, { record_delimiter: '\r\n', quoted_match: /[\r\n",]/ });
}

/** RFC 4180 CSV (CRLF line ends, quoted as needed) with formula neutralization; header from `columns`. */
export function toCsv(columns: string[], rows: Row[]): string {
  return csvRecords(columns, [Object.fromEntries(columns.map((c) => [c, c]))]) + csvRecords(columns, rows);
}

/**
 * A row as JSON: an integer SQLite returned as a bigint (read with safeIntegers) stays a number where a
 * double holds it exactly and becomes a string where it would not, and a blob becomes `x'<hex>'`, as in
 * CSV: JSON.stringify would give a Buffer as `{"type":"Buffer","data":[…]}`, one number per byte.
 */
export function jsonRow(row: Row): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === 'bigint') {
      out[k] =
        v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
          ? Number(v)
          : v.toString();
    } else out[k] = Buffer.isBuffer(v) ? `x'${v.toString('hex')}'` : v;
  }
  return out;
}

/**
 * Rows as the elements of the array `JSON.stringify(rows, null, 2)` prints, joined by `,\n`, so an array
 * can be written batch by batch between `[\n` and `\n]`. Indenting by replacing line ends is safe: JSON
 * escapes every line end inside a string.
 */
export function jsonArrayElements(rows: Row[]): string {
  return rows.map((r) => `  ${JSON.stringify(jsonRow(r), null, 2).replace(/\n/g, '\n  ')}`).join(',\n');
}

/** One JSON object a line, values as stored (no formula neutralization: JSON is not opened by spreadsheets). */
export function toJsonLines(rows: Row[]): string {
  return rows.map((r) => JSON.stringify(jsonRow(r))).join('\n') + (rows.length ? '\n' : '');
}

/**
 * Control characters shown as `\xNN`, and bidirectional marks and overrides and the Unicode line and
 * paragraph separators as `\u{NNNN}`: a layer's file names are the image author's bytes, and an escape
 * sequence printed raw would drive the researcher's terminal (retitle it, rewrite earlier lines, hide
 * text), an override reorder what a line shows. Tabs and line ends are escaped too, not made spaces: a
 * row stays one line, and a file name holding a newline never looks like one holding a space.
 */
export function terminalSafe(text: string): string {
  return text.replace(
    /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => {
      const code = c.charCodeAt(0);
      return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
    },
  );
}

/**
 * A plain text table for terminals; cells longer than `maxCell` are cut with `…` so a row of a summary stays
 * readable (`query` passes Infinity: its cells are data).
 */
export function toTable(columns: string[], rows: Row[], maxCell = 72): string {
  const cells = rows.map((r) =>
    columns.map((c) => {
      const t = terminalSafe(cellText(r[c]));
      return t.length > maxCell ? `${t.slice(0, maxCell - 1)}…` : t;
    }),
  );
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
  return `${out.join('\n')}\n(${counted(rows.length, 'row')})\n`;
}

/** Rows handed over per write when a result is written as it is read: large writes, flat memory. */
const BATCH_ROWS = 1000;

/**
 * Hands `rows` to `write` in batches as they are read (a fact table can hold tens of millions), and the
 * rest at the end. Stops reading, closing the statement's iterator, once `write` resolves to false. Returns
 * how many rows it read.
 */
export async function inBatches(
  rows: Iterable<Row>,
  write: (batch: Row[]) => Promise<unknown>,
): Promise<number> {
  let batch: Row[] = [];
  let count = 0;
  for (const row of rows) {
    batch.push(row);
    count += 1;
    if (batch.length < BATCH_ROWS) continue;
    const more = await write(batch);
    batch = [];
    // Leaving the loop closes the iterator, and with it the statement.
    if (more === false) return count;
  }
  if (batch.length > 0) await write(batch);
  return count;
}

/**
 * Writes and waits for the stream to accept it (so large outputs don't pile up in memory). Settles on an
 * error too: a stream that fails while full never drains, and its owner, listening for 'error', reports it.
 */
export async function writeOut(stream: Writable, text: string): Promise<void> {
  if (stream.write(text)) return;
  await new Promise<void>((resolve) => {
    const settle = () => {
      stream.off('drain', settle);
      stream.off('error', settle);
      resolve();
    };
    stream.once('drain', settle);
    stream.once('error', settle);
  });
}
