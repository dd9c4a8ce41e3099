import { countLayersFailedForGood } from '../../db/failed-layers.js';
import { openDatabase } from '../../db/open.js';
import { IS_REMATCH_RUN, RUN_COMMAND } from '../../db/run-store.js';
import { AN_OBJECT, parseStoredJson } from '../../db/stored-json.js';
import { type CommonOptions, datasetPath } from '../context.js';
import { EXIT } from '../exit.js';
import { type Row, toTable } from '../output.js';
import { writeResult } from '../write-result.js';

export interface StatsOptions extends CommonOptions {
  json?: boolean;
}

/** Images with findings of one IOC set: any, with evidence that survives, and with none known to. */
interface AffectedImages {
  iocSet: string;
  images: number;
  finalFs: number;
  finalFsUnknown: number;
}

/**
 * SQL, over an image's rows of findings_final_fs: none of its evidence is known to survive, and some sits
 * below a layer that failed analysis (docs/limits.md).
 */
const ONLY_UNKNOWN = 'max(in_final_fs) IS NOT 1 AND sum(in_final_fs IS NULL) > 0';

/** What the dataset holds and what the last run did. */
export function datasetStats(dbPath: string): Record<string, unknown> {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const count = (sql: string) => (db.prepare(sql).pluck().get() as number) ?? 0;
    const holds = {
      runs: count('SELECT count(*) FROM crawl_runs'),
      registries: count('SELECT count(*) FROM registries'),
      repositories: count('SELECT count(*) FROM repositories'),
      tagObservations: count('SELECT count(*) FROM tag_observations'),
      manifests: count('SELECT count(*) FROM manifests'),
      images: count('SELECT count(*) FROM images'),
      debianDerivedImages: count('SELECT count(*) FROM images WHERE is_debian_derived = 1'),
      layers: count('SELECT count(*) FROM layers'),
      layersAnalyzed: count(`SELECT count(*) FROM layers WHERE status = 'analyzed'`),
      layersFailed: count(`SELECT count(*) FROM layers WHERE status = 'failed'`),
      // Of those, the ones the next crawl will not try again: their error was not a network fault (a new
      // run revives those) and their attempts reached the latest crawl's --max-attempts (docs/cli.md); a
      // rematch tries no layer, and its config's value is only the default.
      layersFailedForGood: countLayersFailedForGood(
        db,
        (db
          .prepare(
            `SELECT json_extract(config_json, '$.maxAttempts') FROM crawl_runs
              WHERE NOT (${IS_REMATCH_RUN}) ORDER BY id DESC LIMIT 1`,
          )
          .pluck()
          .get() as number | null) ?? 3,
      ),
      compressedBytesAnalyzed: count(
        `SELECT coalesce(sum(compressed_size), 0) FROM layers WHERE status = 'analyzed'`,
      ),
      findings: count('SELECT count(*) FROM findings'),
      affectedImages: count('SELECT count(DISTINCT image_digest) FROM findings'),
      affectedImagesFinalFs: count(
        'SELECT count(DISTINCT image_digest) FROM findings_final_fs WHERE in_final_fs = 1',
      ),
      // Evidence under a layer that failed analysis, and none known to survive (docs/limits.md).
      affectedImagesFinalFsUnknown: count(
        `SELECT count(*) FROM (SELECT image_digest FROM findings_final_fs GROUP BY image_digest
                                HAVING ${ONLY_UNKNOWN})`,
      ),
      // The three counts above add every IOC set's findings: a broad set of one's own swells them, and the
      // built-in set's own count is only here.
      affectedImagesBySet: db
        .prepare(
          // Every set the dataset holds, as iocSets lists them: one that matched nothing has 0 / 0 / 0.
          `SELECT s.id || '@' || s.version AS iocSet, count(x.image_digest) AS images,
                  coalesce(sum(x.survives), 0) AS finalFs, coalesce(sum(x.unknown), 0) AS finalFsUnknown
             FROM ioc_sets s
             LEFT JOIN (SELECT ioc_set_id, ioc_set_version, image_digest,
                               max(in_final_fs) IS 1 AS survives,
                               ${ONLY_UNKNOWN} AS unknown
                          FROM findings_final_fs GROUP BY ioc_set_id, ioc_set_version, image_digest) x
               ON x.ioc_set_id = s.id AND x.ioc_set_version = s.version
            GROUP BY s.id, s.version ORDER BY iocSet`,
        )
        .all() as AffectedImages[],
      iocSets: db.prepare(`SELECT id || '@' || version AS s FROM ioc_sets ORDER BY s`).pluck().all(),
    };
    const last = db.prepare('SELECT * FROM run_summary ORDER BY run_id DESC LIMIT 1').get() as
      | Row
      | undefined;
    const lastRun = last
      ? {
          id: last.run_id,
          // The command its config_json names (docs/schema.md): null for a crawl or scan recorded before
          // hubcrawl named them.
          command: (db
            .prepare(`SELECT ${RUN_COMMAND} FROM crawl_runs WHERE id = ?`)
            .pluck()
            .get(last.run_id) ?? null) as string | null,
          status: last.status,
          startedAt: last.started_at,
          finishedAt: last.finished_at,
          toolVersion: last.tool_version,
          iocSets: last.ioc_sets,
          // Rows that name this run: what its matching left in the dataset, whatever its invocations.
          findings: last.findings,
          stats: last.stats_json
            ? parseStoredJson(
                String(last.stats_json),
                { row: `crawl_runs row ${last.run_id}`, column: 'stats_json' },
                AN_OBJECT,
              )
            : null,
        }
      : null;
    const frontier = db.prepare('SELECT kind, state, items FROM frontier_summary ORDER BY kind, state').all();
    return { dataset: dbPath, holds, lastRun, frontier };
  } finally {
    db.close();
  }
}

/** `hubcrawl stats`: a human summary, or the same as JSON with --json. */
export async function statsCommand(opts: StatsOptions): Promise<number> {
  const stats = datasetStats(datasetPath(opts));
  if (opts.json) {
    await writeResult(`${JSON.stringify(stats, null, 2)}\n`, undefined);
    return EXIT.ok;
  }
  const { affectedImagesBySet, ...holds } = stats.holds as Record<string, unknown>;
  const rows = [
    ...Object.entries(holds).map(([k, v]) => ({ what: k, value: Array.isArray(v) ? v.join(', ') : v })),
    ...(affectedImagesBySet as AffectedImages[]).map((a) => ({
      what: `affected images of ${a.iocSet} (any / surviving / unknown)`,
      value: `${a.images} / ${a.finalFs} / ${a.finalFsUnknown}`,
    })),
  ];
  let text = `Dataset ${stats.dataset}\n${toTable(['what', 'value'], rows)}`;
  const last = stats.lastRun as Record<string, unknown> | null;
  if (last) text += `\nLast run\n${toTable(['what', 'value'], lastRunLines(last))}`;
  await writeResult(text, undefined);
  return EXIT.ok;
}

/** The "Last run" table: what any run records, then a crawl's (or scan's) counters or a rematch's. */
function lastRunLines(last: Record<string, unknown>): Row[] {
  const recorded = (last.stats ?? {}) as Record<string, unknown>;
  const rematch = last.command === 'rematch';
  // A resumed run's record holds the whole run's counts beside its last invocation's (run-totals.ts).
  const s = (recorded.wholeRun ?? recorded) as Record<string, unknown>;
  const lines = [
    ['run', last.id],
    ['command', last.command ?? 'crawl or scan (recorded before hubcrawl named it)'],
    ['status', last.status],
    ['started', last.startedAt],
    ['finished', last.finishedAt ?? ''],
    ['tool version', last.toolVersion],
    ...(typeof s.invocations === 'number' ? [['invocations (resumed)', s.invocations]] : []),
    ['IOC sets', last.iocSets],
    ...(rematch ? rematchLines(recorded) : crawlLines(recorded, s)),
    ['findings (rows of this run)', last.findings],
  ];
  return lines.map(([what, value]) => ({ what, value }));
}

/** A crawl's or scan's counters: what it listed, fetched and analyzed. */
function crawlLines(recorded: Record<string, unknown>, s: Record<string, unknown>): unknown[][] {
  const http = (s.http ?? {}) as Record<string, unknown>;
  return [
    ['repositories', s.repositories],
    ['tags resolved', s.tags],
    ['manifests fetched / reused', `${s.manifestsFetched ?? 0} / ${s.manifestsReused ?? 0}`],
    // Signatures, SBOMs, charts: manifests that are no image, skipped without a failure (docs/schema.md).
    ['OCI artifacts skipped', s.artifactsSkipped ?? 0],
    // An index none of whose platforms --platform selects: analyzed nothing, and so found nothing.
    ['indexes with no platform --platform selects', s.indexesWithoutSelectedPlatform ?? 0],
    ['layers analyzed / already known', `${s.layersAnalyzed ?? 0} / ${s.layersReused ?? 0}`],
    // README: with --debian-only, the upper layers of an image whose base is not Debian are not analyzed.
    ['layers skipped as not Debian (--debian-only)', s.layersSkippedNotDebian ?? 0],
    ['layer bytes downloaded', s.layerBytes],
    [
      'requests / retries / counted pulls',
      `${http.requests ?? 0} / ${http.retries ?? 0} / ${http.countedPulls ?? 0}`,
    ],
    ['rate-limit pauses (ms)', `${http.rateLimitPauses ?? 0} (${http.rateLimitPauseMs ?? 0})`],
    // A resumed run's outcome also counts what its earlier invocations failed for good (run.ts).
    // Items, not attempts: an item failed in an earlier invocation and again after the resume is one.
    [
      'failed items (whole run)',
      typeof recorded.itemsFailedBeforeResume === 'number' && recorded.itemsFailedBeforeResume > 0
        ? `${Number(recorded.itemsFailed ?? 0) + recorded.itemsFailedBeforeResume} (${recorded.itemsFailedBeforeResume} before the resume)`
        : recorded.itemsFailed,
    ],
  ];
}

/**
 * A rematch's counters (rematch.ts): it fetches and analyzes nothing, it matches images. Only those it
 * recorded: a stopped one has no layersWithOtherSelection, a killed one recorded nothing.
 */
function rematchLines(recorded: Record<string, unknown>): unknown[][] {
  const lines: Array<[string, unknown]> = [
    ['images re-matched', recorded.imagesMatched],
    ['of them with a layer that failed analysis', recorded.imagesWithFailedLayers],
    ['images waiting for a pending layer', recorded.imagesIncomplete],
    ['images not reached (left with earlier findings)', recorded.imagesNotReached],
    ['stopped by', recorded.stoppedBy],
    ['layers analyzed with another selection', recorded.layersWithOtherSelection],
    ['findings removed of IOC sets not loaded', recorded.findingsRemovedOfUnloadedSets],
  ];
  return lines.filter(([, value]) => value !== undefined && value !== null);
}
