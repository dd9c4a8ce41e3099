import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  createReadStream,
  createWriteStream,
  mkdirSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError } from '../../core/errors.js';
import { TOOL_VERSION } from '../../core/version.js';
import { FACT_TABLES } from '../../db/layer-store.js';
import { openDatabase } from '../../db/open.js';
import { writeSnapshot } from '../../db/snapshot.js';
import { type CommonOptions, datasetPath } from '../context.js';
import { EXIT } from '../exit.js';
import { csvRecords, inBatches, type Row, toCsv, writeOut } from '../output.js';
import { failedLayersNote, REPORT_COLUMNS, renderReport, reportRows, unfinishedRunNote } from './report.js';

export interface ExportOptions extends CommonOptions {
  out?: string;
}

/**
 * Tables exported as CSV: every table but the frontier. The failures log is in: it says why a layer
 * failed, and so why an image is `unknown` or missing from the report (the report's note points at it).
 * The frontier is the crawl's work queue (payloads, attempts, in-progress marks): what a reader needs of it
 * is MANIFEST.json's unfinishedItems, and hubcrawl.sqlite holds it whole.
 */
const EXPORTED_TABLES = [
  'crawl_runs',
  'run_ioc_sets',
  'registries',
  'repositories',
  'tag_observations',
  // The complete listings that proved a tag gone: the provenance of report.csv's tag_current.
  'tag_absences',
  'manifests',
  'unsupported_manifests',
  'index_children',
  'images',
  'image_layers',
  'layers',
  // What each layers.selection fingerprint chose: a reader of the bundle can tell what was looked for.
  'selections',
  ...FACT_TABLES,
  'ioc_sets',
  'ioc_rules',
  'findings',
  'failures',
] as const;

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * One table as CSV, streamed in batches (a dataset's fact tables can hold tens of millions of rows) and
 * in rowid order, so two exports of the same dataset are byte-identical. Raw manifest bytes are written
 * as hex; the SQLite copy keeps them as they are.
 */
async function exportTable(
  db: ReturnType<typeof openDatabase>,
  table: string,
  path: string,
): Promise<number> {
  const columns = (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map(
    (c) => c.name,
  );
  const stream = createWriteStream(path);
  const done = new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.once('finish', resolve);
  });
  await writeOut(stream, toCsv(columns, []));
  const count = await inBatches(
    db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).iterate() as Iterable<Row>,
    (batch) => writeOut(stream, csvRecords(columns, batch)),
  );
  stream.end();
  await done;
  return count;
}

/** The errno code of a failed fs call, else its message. */
function reasonOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/**
 * Creates the export folder and any missing folders above it, one at a time. Not `mkdirSync(out,
 * { recursive: true })`: where a file system answers ENOENT for a folder whose parent exists (`/proc`
 * does), Node's recursive mkdir creates the parent, gets EEXIST, and retries the child for ever at 100%
 * CPU. So the nearest existing folder above must be a writable directory, and each mkdir that fails
 * is an error naming the folder.
 */
function makeExportFolder(out: string): void {
  const fail = (code: string, detail: string, cause?: unknown): never => {
    throw new ConfigError(
      `cannot create the export folder ${out} (${code}): ${detail}; give a new folder's path`,
      { cause },
    );
  };
  const missing: string[] = [];
  let dir = resolve(out);
  for (;;) {
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(dir);
    } catch (err) {
      // ENOTDIR: a file above is in the way; the walk up finds it and says so.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') fail(reasonOf(err), `cannot look at ${dir}`, err);
    }
    if (st !== undefined) {
      if (!st.isDirectory()) {
        if (missing.length === 0) fail('EEXIST', 'a file of that name is in the way');
        fail('ENOTDIR', `${dir} is not a folder`);
      }
      break;
    }
    missing.unshift(dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  if (missing.length === 0) return;
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    fail(reasonOf(err), `the folder ${dir} is not writable`, err);
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (err) {
      fail(reasonOf(err), `${dirname(d)} does not let a folder be made in it`, err);
    }
  }
}

/**
 * `hubcrawl export --out DIR`: a dataset bundle for publication — the report, one CSV per table, a
 * consistent copy of the SQLite file, and MANIFEST.json with versions, runs, row counts and the sha256
 * of every file, so a reader can cite the dataset and check they hold the same bytes.
 */
export async function exportCommand(opts: ExportOptions): Promise<number> {
  if (!opts.out) throw new ConfigError('export needs --out DIR');
  const dbPath = datasetPath(opts);
  const out = opts.out;
  // Opened first: a dataset that does not exist (or is refused) leaves no empty export folder behind.
  const db = openDatabase(dbPath, { readonly: true });
  try {
    makeExportFolder(out);
    if (readdirSync(out).length > 0) {
      throw new ConfigError(
        `export folder ${out} is not empty; choose a new folder so no file is mixed with an older export`,
      );
    }
  } catch (err) {
    db.close();
    throw err;
  }
  // Everything in the bundle is read from its own hubcrawl.sqlite, one snapshot: while a crawl writes to
  // the dataset, the tables, the report and the SQLite file still agree row for row.
  const snapshotPath = join(out, 'hubcrawl.sqlite');
  try {
    await writeSnapshot(db, snapshotPath);
  } finally {
    db.close();
  }
  const snapshot = openDatabase(snapshotPath, { readonly: true });
  const rowCounts: Record<string, number> = {};
  let runs: Row[];
  let iocSets: Row[];
  try {
    mkdirSync(join(out, 'tables'));
    for (const table of EXPORTED_TABLES) {
      rowCounts[table] = await exportTable(snapshot, table, join(out, 'tables', `${table}.csv`));
    }
    runs = snapshot
      .prepare(
        'SELECT id, started_at, finished_at, status, tool_version, analyzer_version FROM crawl_runs ORDER BY id',
      )
      .all() as Row[];
    iocSets = snapshot.prepare('SELECT id, version, title FROM ioc_sets ORDER BY id, version').all() as Row[];
  } finally {
    snapshot.close();
  }
  const report = reportRows(snapshotPath);
  writeFileSync(join(out, 'report.csv'), renderReport(report.rows, 'csv'));
  rowCounts.report = report.rows.length;

  const files: Record<string, string> = {};
  const walk = (dir: string, prefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      if (entry.isDirectory()) walk(join(dir, entry.name), `${prefix}${entry.name}/`);
      else files[`${prefix}${entry.name}`] = join(dir, entry.name);
    }
  };
  walk(out, '');
  const sha256: Record<string, string> = {};
  for (const [name, path] of Object.entries(files)) sha256[name] = await sha256File(path);
  const manifest = {
    tool: 'hubcrawl',
    toolVersion: TOOL_VERSION,
    exportedAt: new Date().toISOString(),
    source: basename(dbPath),
    reportColumns: REPORT_COLUMNS,
    iocSets,
    runs,
    rowCounts,
    // Images matched without a layer whose analysis failed (docs/limits.md): report.csv alone cannot show
    // them, and those with no rows at all would read as clean.
    imagesWithFailedLayers: report.imagesWithFailedLayers,
    imagesWithFailedLayersNotInReport: report.imagesWithFailedLayersNotInReport,
    imagesWithFailedLayersUnmatched: report.imagesWithFailedLayersUnmatched,
    // Frontier items not done when exported: a bundle of an unfinished crawl says so itself.
    unfinishedItems: report.unfinishedItems,
    sha256,
  };
  writeFileSync(join(out, 'MANIFEST.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  process.stdout.write(`exported ${Object.keys(files).length} files and MANIFEST.json to ${out}\n`);
  for (const note of [unfinishedRunNote(report), failedLayersNote(report)]) {
    if (note) process.stderr.write(`hubcrawl: ${note}\n`);
  }
  return EXIT.ok;
}
