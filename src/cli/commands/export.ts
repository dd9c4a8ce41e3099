import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ConfigError, FatalError } from '../../core/errors.js';
import { TOOL_VERSION } from '../../core/version.js';
import { FACT_TABLES } from '../../db/layer-store.js';
import { openDatabase } from '../../db/open.js';
import { snapshotWriteFailure, writeSnapshot } from '../../db/snapshot.js';
import { type CommonOptions, datasetPath } from '../context.js';
import { EXIT } from '../exit.js';
import {
  discard,
  type ExportTarget,
  makeWorkFolder,
  prepareExportFolder,
  publish,
} from '../export-folder.js';
import { csvRecords, inBatches, type Row, toCsv, writeOut } from '../output.js';
import { counted } from '../plural.js';
import { onStopSignal } from '../stop-signals.js';
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

/** errno codes of a bundle file that could not be written for lack of room or a failing disk. */
const WRITE_FAILURES: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EFBIG: 'a file grew past the file-size limit',
  EIO: 'an I/O error',
  EROFS: 'the file system is read-only',
  SQLITE_FULL: 'the disk is full or a file reached the file-size limit',
  SQLITE_CANTOPEN: 'the snapshot file could not be created there',
};

/**
 * A failure to write the bundle (a full disk, a file-size limit, an I/O error) as one sentence naming the
 * bundle, not the dataset: nothing of it is left, and running the same command again is all it takes.
 */
function bundleWriteError(err: unknown, target: ExportTarget): unknown {
  const sqlite = snapshotWriteFailure(err);
  const errno = (err as NodeJS.ErrnoException | null)?.code;
  const code =
    sqlite ?? (typeof errno === 'string' && Object.hasOwn(WRITE_FAILURES, errno) ? errno : undefined);
  if (code === undefined) return err;
  const what =
    WRITE_FAILURES[code] ??
    (code.startsWith('SQLITE_READONLY')
      ? 'the snapshot file could not be written'
      : 'an I/O error, as a full disk or a file-size limit also gives');
  const left = target.existing === undefined ? 'not created' : 'left empty as it was';
  return new FatalError(
    `cannot write the export bundle ${target.out} (${code}): ${what}; nothing was written to ${target.out} (${left}); free some space or fix the disk, then run the same command again`,
    { cause: err },
  );
}

/**
 * `hubcrawl export --out DIR`: a dataset bundle for publication — the report, one CSV per table, a
 * consistent copy of the SQLite file, and MANIFEST.json with versions, runs, row counts and the sha256
 * of every file, so a reader can cite the dataset and check they hold the same bytes.
 */
export async function exportCommand(opts: ExportOptions): Promise<number> {
  if (!opts.out) throw new ConfigError('export needs --out <dir>, a new or empty folder for the bundle');
  const dbPath = datasetPath(opts);
  const out = opts.out;
  // Opened first: a dataset that does not exist (or is refused) leaves no folder behind.
  const db = openDatabase(dbPath, { readonly: true });
  let prepared: ExportTarget | undefined;
  // A SIGINT or SIGTERM stops the export and takes its unfinished bundle away (EXIT.aborted, as a crawl).
  // Listened for before any folder is made: until a listener is there, the signal ends the process at
  // once (Node's default), which would leave the work folder behind.
  const stop = (signal: NodeJS.Signals): void => {
    if (prepared !== undefined) discard(prepared);
    process.stderr.write(`hubcrawl: export stopped by ${signal}; nothing was written to ${out}\n`);
    process.exit(EXIT.aborted);
  };
  const release = onStopSignal(stop);
  try {
    prepared = prepareExportFolder(out);
    makeWorkFolder(prepared);
  } catch (err) {
    release();
    // The folders made above --out for a work folder that could not be made go too.
    if (prepared !== undefined) discard(prepared);
    db.close();
    throw err;
  }
  const target = prepared;
  let result: Awaited<ReturnType<typeof writeBundle>>;
  try {
    result = await writeBundle(db, dbPath, target.work);
    publish(target);
  } catch (err) {
    discard(target);
    throw bundleWriteError(err, target);
  } finally {
    release();
  }
  process.stdout.write(`exported ${counted(result.files, 'file')} and MANIFEST.json to ${out}\n`);
  for (const note of [unfinishedRunNote(result.report), failedLayersNote(result.report)]) {
    if (note) process.stderr.write(`hubcrawl: ${note}\n`);
  }
  return EXIT.ok;
}

/**
 * Writes the whole bundle into `dir` (closing `db`), MANIFEST.json last: a folder without it is not a
 * bundle.
 */
async function writeBundle(
  db: ReturnType<typeof openDatabase>,
  dbPath: string,
  dir: string,
): Promise<{ files: number; report: ReturnType<typeof reportRows> }> {
  // Everything in the bundle is read from its own hubcrawl.sqlite, one snapshot: while a crawl writes to
  // the dataset, the tables, the report and the SQLite file still agree row for row.
  const snapshotPath = join(dir, 'hubcrawl.sqlite');
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
    mkdirSync(join(dir, 'tables'));
    for (const table of EXPORTED_TABLES) {
      rowCounts[table] = await exportTable(snapshot, table, join(dir, 'tables', `${table}.csv`));
    }
    runs = snapshot
      .prepare(
        'SELECT id, started_at, finished_at, status, tool_version, analyzer_version FROM crawl_runs ORDER BY id',
      )
      .all() as Row[];
    // Every set version the dataset was ever given; `findings` says which ones its findings come from now.
    iocSets = snapshot
      .prepare(
        `SELECT s.id, s.version, s.title,
                (SELECT count(*) FROM findings f WHERE f.ioc_set_id = s.id AND f.ioc_set_version = s.version)
                  AS findings
           FROM ioc_sets s ORDER BY s.id, s.version`,
      )
      .all() as Row[];
  } finally {
    snapshot.close();
  }
  const report = reportRows(snapshotPath);
  writeFileSync(join(dir, 'report.csv'), renderReport(report.rows, 'csv'));
  rowCounts.report = report.rows.length;

  const files: Record<string, string> = {};
  const walk = (d: string, prefix: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      if (entry.isDirectory()) walk(join(d, entry.name), `${prefix}${entry.name}/`);
      else files[`${prefix}${entry.name}`] = join(d, entry.name);
    }
  };
  walk(dir, '');
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
  writeFileSync(join(dir, 'MANIFEST.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { files: Object.keys(files).length, report };
}
