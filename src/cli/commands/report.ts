import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { ConfigError } from '../../core/errors.js';
import { openDatabase } from '../../db/open.js';
import { type CommonOptions, datasetPath } from '../context.js';
import { EXIT } from '../exit.js';
import { type Row, toCsv, toJsonLines } from '../output.js';

/** The publication CSV header, exactly; part of the contract (README "Report columns"). */
export const REPORT_COLUMNS = [
  'registry',
  'repository',
  'tag',
  'platform',
  'manifest_digest',
  'index_digest',
  'ioc_set',
  'rule_id',
  'evidence_kind',
  'path',
  'evidence',
  'layer_digest',
  'in_final_fs',
  'last_pushed',
  'pull_count',
  'first_seen',
  'last_seen',
] as const;

export interface ReportOptions extends CommonOptions {
  format?: string;
  out?: string;
  finalOnly?: boolean;
}

/**
 * The report rows (one per evidence item of an affected image, per tag), and how many images have a layer
 * that failed analysis: those are not matched at all (docs/limits.md), so they are absent from the rows
 * whatever their other layers hold.
 */
export function reportRows(
  dbPath: string,
  opts: { finalOnly?: boolean } = {},
): { rows: Row[]; imagesWithFailedLayers: number } {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const where = opts.finalOnly ? ` WHERE in_final_fs = 'true'` : '';
    const rows = db.prepare(`SELECT ${REPORT_COLUMNS.join(', ')} FROM report_rows${where}`).all() as Row[];
    const imagesWithFailedLayers = db
      .prepare(
        `SELECT count(DISTINCT il.image_digest) FROM image_layers il
           JOIN layers l ON l.digest = il.layer_digest WHERE l.status = 'failed'`,
      )
      .pluck()
      .get() as number;
    return { rows, imagesWithFailedLayers };
  } finally {
    db.close();
  }
}

/** Renders rows as the report format: RFC 4180 CSV with the exact header, or JSON lines. */
export function renderReport(rows: Row[], format: string): string {
  if (format === 'csv') return toCsv([...REPORT_COLUMNS], rows);
  if (format === 'jsonl') return toJsonLines(rows);
  throw new ConfigError(`report format "${format}" is not one of csv, jsonl`);
}

/** Writes to --out (atomically enough: the file is complete when the command returns) or stdout. */
export async function writeResult(text: string, out: string | undefined): Promise<void> {
  const stream: Writable = out ? createWriteStream(out) : process.stdout;
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    if (out) stream.end(text, () => resolve());
    else stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

/** `hubcrawl report`: evidence of affected images as the publication CSV (or JSON lines). */
export async function reportCommand(opts: ReportOptions): Promise<number> {
  const format = opts.format ?? 'csv';
  const { rows, imagesWithFailedLayers } = reportRows(datasetPath(opts), opts);
  await writeResult(renderReport(rows, format), opts.out);
  // On stderr, so the CSV stays exact: a reader of the file alone would take these images for clean.
  if (imagesWithFailedLayers > 0) {
    process.stderr.write(
      `hubcrawl: ${imagesWithFailedLayers} image(s) are not in this report: a layer of each failed analysis, so none of their layers was matched; \`hubcrawl scan\` lists them as incomplete and the failures table says why\n`,
    );
  }
  return EXIT.ok;
}
