import { ConfigError } from '../../core/errors.js';
import { openDatabase } from '../../db/open.js';
import { IS_REMATCH_RUN } from '../../db/run-store.js';
import { runKeyPrefix } from '../../pipeline/keys.js';
import { type CommonOptions, datasetPath } from '../context.js';
import { EXIT } from '../exit.js';
import { type Row, toCsv, toJsonLines } from '../output.js';
import { agreeing, counted } from '../plural.js';
import { writeResult } from '../write-result.js';

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
  // Last, so that readers taking the CSV by position keep their columns (migrations/0006_tag_currency.sql).
  'tag_current',
] as const;

export interface ReportOptions extends CommonOptions {
  format?: string;
  out?: string;
  finalOnly?: boolean;
  currentOnly?: boolean;
}

/** Images with a layer whose analysis failed: matched from their other layers only (docs/limits.md). */
export interface FailedLayerImages {
  /** Every such image. */
  imagesWithFailedLayers: number;
  /** Those with no rows in the report (no evidence from their other layers), yet not known clean. */
  imagesWithFailedLayersNotInReport: number;
  /**
   * Those never matched: a dataset an older hubcrawl wrote (it left them unmatched) before the next
   * `crawl` or `rematch`. Their other layers' evidence is not in the report yet.
   */
  imagesWithFailedLayersUnmatched: number;
}

/**
 * Images a `--debian-only` crawl skipped: their base layer analyzed and not Debian-derived, their upper
 * layers left pending with no frontier item to analyze them (a run that stopped has such items), so they are
 * never matched and have no rows, even for evidence in the base layer.
 */
export interface SkippedImages {
  imagesSkippedNotDebian: number;
}

/** Whether the dataset's latest run finished: an aborted or running one leaves work in its frontier. */
export interface LatestRun {
  latestRunId: number | null;
  latestRunStatus: string | null;
  /** The latest run is a `hubcrawl rematch`: one that did not finish left images with their earlier findings. */
  latestRunIsRematch: boolean;
  /** Frontier items not done: pending, or in progress (a crawl running now, or one killed). */
  unfinishedItems: number;
}

/**
 * The report rows (one per evidence item of an affected image, per tag), how many images have a layer
 * that failed analysis, and the state of the latest run. `finalOnly` keeps the evidence that survives in the final filesystem and the
 * evidence whose survival is unknown because a layer above it failed: leaving that out would drop a
 * possibly backdoored image from the report without a trace. `currentOnly` keeps the rows whose tag still
 * points at the image as of the latest crawl that looked at it, and the rows reached by digest (tag ''),
 * which a pull by that digest still gives: what a pull gives today.
 */
export function reportRows(
  dbPath: string,
  opts: { finalOnly?: boolean; currentOnly?: boolean } = {},
): { rows: Row[] } & FailedLayerImages & SkippedImages & LatestRun {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const conditions = [
      ...(opts.finalOnly ? [`in_final_fs IN ('true', 'unknown')`] : []),
      ...(opts.currentOnly ? [`tag_current IN ('true', '')`] : []),
    ];
    const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
    const rows = db.prepare(`SELECT ${REPORT_COLUMNS.join(', ')} FROM report_rows${where}`).all() as Row[];
    // The rows the report holds for an image: with --final-only, evidence known removed is not among them.
    const inReport = opts.finalOnly ? ' AND f.in_final_fs IS NOT 0' : '';
    const counts = db
      .prepare(
        `SELECT count(*) AS imagesWithFailedLayers,
                coalesce(sum(NOT EXISTS (SELECT 1 FROM findings_final_fs f
                                          WHERE f.image_digest = x.image_digest${inReport})), 0)
                  AS imagesWithFailedLayersNotInReport,
                -- Never matched though no layer waits: left so by an older hubcrawl (a pending layer makes
                -- rematch wait for it too, so those are not counted here).
                coalesce(sum(i.match_fingerprint IS NULL AND NOT EXISTS (
                  SELECT 1 FROM image_layers pl JOIN layers p ON p.digest = pl.layer_digest
                   WHERE pl.image_digest = x.image_digest AND p.status = 'pending')), 0) AS imagesWithFailedLayersUnmatched
           FROM (SELECT DISTINCT il.image_digest FROM image_layers il
                   JOIN layers l ON l.digest = il.layer_digest WHERE l.status = 'failed') x
           JOIN images i ON i.digest = x.image_digest`,
      )
      .get() as FailedLayerImages;
    // A layer item's key starts with its digest (`<digest>|<analyzer version>|<selection>`).
    const imagesSkippedNotDebian = db
      .prepare(
        `SELECT count(*) FROM images i
          WHERE i.is_debian_derived = 0 AND i.match_fingerprint IS NULL
            AND EXISTS (SELECT 1 FROM image_layers il JOIN layers l ON l.digest = il.layer_digest
                         WHERE il.image_digest = i.digest AND l.status = 'pending'
                           AND NOT EXISTS (SELECT 1 FROM frontier fr
                                            WHERE fr.kind = 'layer' AND fr.key >= l.digest || '|'
                                              AND fr.key < l.digest || '}' AND fr.state <> 'done'))`,
      )
      .pluck()
      .get() as number;
    const latest = db
      .prepare(`SELECT id, status, ${IS_REMATCH_RUN} AS rematch FROM crawl_runs ORDER BY id DESC LIMIT 1`)
      .get() as { id: number; status: string; rematch: number } | undefined;
    // The latest run's own items (keyed by it) and the layers, which no run owns: older runs' leftovers are
    // not this run's work.
    const prefix = latest ? runKeyPrefix(latest.id) : '';
    const unfinishedItems = db
      .prepare(
        `SELECT count(*) FROM frontier WHERE state IN ('pending', 'in-progress')
            AND (kind = 'layer' OR substr(key, 1, ?) = ?)`,
      )
      .pluck()
      .get(prefix.length, prefix) as number;
    return {
      rows,
      ...counts,
      imagesSkippedNotDebian,
      latestRunId: latest?.id ?? null,
      latestRunStatus: latest?.status ?? null,
      latestRunIsRematch: latest?.rematch === 1,
      unfinishedItems,
    };
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

/** What a reader of the report must know about images with a failed layer; null when there are none. */
export function failedLayersNote(failed: FailedLayerImages): string | null {
  if (failed.imagesWithFailedLayers === 0) return null;
  const unmatched =
    failed.imagesWithFailedLayersUnmatched > 0
      ? ` Not matched yet, so without rows from their other layers either: ${failed.imagesWithFailedLayersUnmatched} (a dataset from an older hubcrawl); \`hubcrawl rematch\` matches them.`
      : '';
  return (
    `${counted(failed.imagesWithFailedLayers, 'image')} ${agreeing(failed.imagesWithFailedLayers, 'has', 'have')} a layer that failed analysis: ` +
    `their rows come from their other layers, ` +
    `with in_final_fs 'unknown' below the failed layer. Without a row in this report, though not known clean: ` +
    `${failed.imagesWithFailedLayersNotInReport}.${unmatched} The failures table says why each layer failed.`
  );
}

/** What a reader must know of images --debian-only skipped: they are in no row; null when there are none. */
export function skippedNotDebianNote(skipped: SkippedImages): string | null {
  const n = skipped.imagesSkippedNotDebian;
  if (n === 0) return null;
  return (
    `${counted(n, 'image')} ${agreeing(n, 'was', 'were')} skipped as not Debian-derived (--debian-only): only ` +
    `${agreeing(n, 'its', 'their')} base layer was analyzed and ${agreeing(n, 'it is', 'they are')} not matched, so ` +
    `${agreeing(n, 'it has', 'they have')} no rows, even for evidence in that base layer; a crawl without ` +
    `--debian-only analyzes and matches ${agreeing(n, 'it', 'them')}.`
  );
}

/**
 * What a reader must know when the latest run did not finish (aborted: budget, rate limit, interrupt; or
 * still marked running): images it has not reached, or with a layer its frontier still holds, are not in
 * the report yet; the others are, matched as their last layer completed (RunMatcher). Null otherwise.
 */
export function unfinishedRunNote(run: LatestRun): string | null {
  if (run.latestRunIsRematch) return unfinishedRematchNote(run);
  const resumes = '`hubcrawl crawl` on this dataset resumes it.';
  const state = {
    running: ['is still marked running (a crawl in progress now, or one that was killed)', resumes],
    aborted: [
      'was aborted (pull budget, rate limit, a host that stopped answering, an interrupt or a fatal error)',
      resumes,
    ],
    failed: [
      'failed (its stats say why)',
      'a failed run is not resumed: the next `hubcrawl crawl` starts a new run, and pending layers carry over.',
    ],
  }[run.latestRunStatus ?? ''];
  if (state === undefined) return null;
  const [why, next] = state;
  return (
    `the latest run (${run.latestRunId}) ${why}: ${counted(run.unfinishedItems, 'item')} of its frontier ` +
    `${agreeing(run.unfinishedItems, 'is', 'are')} not done, so ` +
    'images it has not reached yet, and those with a layer still to analyze, are not in this report (an image ' +
    `is matched as soon as its last layer is analyzed); ${next}`
  );
}

/**
 * What a reader must know when the latest run is a rematch not finished (running now, stopped, killed): the
 * images it had not reached keep the findings of their earlier match, with the IOC sets loaded then.
 */
function unfinishedRematchNote(run: LatestRun): string | null {
  if (run.latestRunStatus !== 'running' && run.latestRunStatus !== 'aborted') return null;
  return (
    `the latest run (${run.latestRunId}) is a \`hubcrawl rematch\` that has not finished (running now, stopped, or killed): ` +
    'the images it had not reached keep the findings of their earlier match, so this report may mix findings ' +
    'of the IOC sets it loaded with findings of the sets loaded before; the same `hubcrawl rematch` again re-matches every image.'
  );
}

/** `hubcrawl report`: evidence of affected images as the publication CSV (or JSON lines). */
export async function reportCommand(opts: ReportOptions): Promise<number> {
  const format = opts.format ?? 'csv';
  const dataset = datasetPath(opts);
  const { rows, ...failed } = reportRows(dataset, opts);
  await writeResult(renderReport(rows, format), opts.out, { dataset });
  // On stderr, so the CSV stays exact: a reader of the file alone would take the absent images for clean.
  for (const note of [unfinishedRunNote(failed), failedLayersNote(failed), skippedNotDebianNote(failed)]) {
    if (note) process.stderr.write(`hubcrawl: ${note}\n`);
  }
  return EXIT.ok;
}
