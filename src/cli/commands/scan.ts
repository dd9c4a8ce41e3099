import { ConfigError } from '../../core/errors.js';
import { parsePayload } from '../../db/frontier.js';
import { openDatabase } from '../../db/open.js';
import { AN_OBJECT } from '../../db/stored-json.js';
import { runKeyPrefix } from '../../pipeline/keys.js';
import { type Row, toTable } from '../output.js';
import { writeResult } from '../write-result.js';
import { type CrawlFlags, crawlExitCode, crawlWith } from './crawl.js';
import { REPORT_COLUMNS, renderReport } from './report.js';

export interface ScanOptions extends CrawlFlags {
  format?: string;
  out?: string;
}

/**
 * The references and manifests of the run that failed for good (a tag that does not exist, a host that
 * is down, an unsupported manifest): they reach no image, so the image table alone would not show them.
 */
function failedReferences(db: ReturnType<typeof openDatabase>, runId: number): Row[] {
  const prefix = runKeyPrefix(runId);
  const items = db
    .prepare(
      `SELECT id, kind, key, payload_json, coalesce(last_error_code, '') AS code, coalesce(last_error, '') AS message FROM frontier
        WHERE state = 'failed' AND kind IN ('reference', 'manifest') AND substr(key, 1, ?) = ?
        ORDER BY id`,
    )
    .all(prefix.length, prefix) as Array<
    Parameters<typeof parsePayload>[0] & { code: string; message: string }
  >;
  return items.map((item) => {
    const p = parsePayload(item, AN_OBJECT) as {
      registry: string;
      repository: string;
      tag?: string | null;
      digest?: string | null;
    };
    const reference = `${p.registry}/${p.repository}${p.tag ? `:${p.tag}` : ''}${p.digest ? `@${p.digest}` : ''}`;
    return { reference, error: item.code, message: item.message };
  });
}

/**
 * The references of the run that were resolved but reached no platform image, and why: an OCI artifact (a
 * cosign signature, an SBOM), skipped as no image, or an index none of whose platforms was selected.
 * Without them a scan of such a reference would print "(0 rows)" and leave the reader guessing.
 *
 * Reached means a manifest item of this run: image_observations links a tag to every child of its index
 * that the dataset holds, those an earlier scan with another --platform analyzed too, whatever this
 * run's platform filter selected. A child item of this run, done, failed or waiting, is reached (a
 * failed one is named under "Failed").
 */
function imagelessReferences(db: ReturnType<typeof openDatabase>, runId: number): Row[] {
  const prefix = runKeyPrefix(runId);
  return db
    .prepare(
      `SELECT DISTINCT reg.host || '/' || r.full_name || CASE WHEN t.tag <> '' THEN ':' || t.tag ELSE '' END
                AS reference,
              CASE m.kind WHEN 'index' THEN 'an index: none of its platforms was selected (--platform)'
                          ELSE 'an OCI artifact (a signature, an SBOM, a chart), not an image: skipped' END AS why
         FROM tag_observations t
         JOIN repositories r ON r.id = t.repository_id
         JOIN registries reg ON reg.id = r.registry_id
         JOIN manifests m ON m.digest = t.digest
        WHERE t.run_id = ?
          AND NOT EXISTS (SELECT 1 FROM image_observations o
                           WHERE o.run_id = t.run_id AND o.repository_id = t.repository_id AND o.tag = t.tag
                             AND EXISTS (SELECT 1 FROM frontier fr
                                          WHERE fr.kind = 'manifest' AND fr.key = ? || reg.host || '@' || o.image_digest))
          AND NOT EXISTS (SELECT 1 FROM index_children c
                           JOIN frontier fr ON fr.kind = 'manifest' AND fr.key = ? || reg.host || '@' || c.child_digest
                          WHERE c.index_digest = t.digest)
        ORDER BY reference`,
    )
    .all(runId, prefix, prefix) as Row[];
}

/** One line per scanned platform image: what it is and whether any rule matched. */
function scanSummary(
  dbPath: string,
  runId: number,
  debianOnly: boolean,
): { images: Row[]; evidence: Row[]; failed: Row[]; imageless: Row[] } {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const images = db
      .prepare(
        `SELECT reg.host || '/' || r.full_name || CASE WHEN o.tag <> '' THEN ':' || o.tag ELSE '' END AS reference,
                i.platform, i.digest AS manifest_digest, coalesce(i.os_id, '') AS os,
                CASE i.is_debian_derived WHEN 1 THEN 'yes' WHEN 0 THEN 'no' ELSE '' END AS debian,
                CASE WHEN EXISTS (SELECT 1 FROM findings_final_fs f WHERE f.image_digest = i.digest AND f.in_final_fs = 1)
                     THEN 'AFFECTED'
                     WHEN EXISTS (SELECT 1 FROM findings_final_fs f
                                   WHERE f.image_digest = i.digest AND f.in_final_fs IS NULL)
                     THEN 'possibly AFFECTED'
                     WHEN EXISTS (SELECT 1 FROM findings f WHERE f.image_digest = i.digest)
                     THEN CASE WHEN EXISTS (SELECT 1 FROM image_layers il JOIN layers l ON l.digest = il.layer_digest
                                             WHERE il.image_digest = i.digest AND l.status <> 'analyzed')
                               THEN 'lower layer only, incomplete' ELSE 'lower layer only' END
                     -- --debian-only analyzed the base, found it not Debian and left the upper layers pending.
                     WHEN @debianOnly = 1 AND i.is_debian_derived = 0
                          AND NOT EXISTS (SELECT 1 FROM image_layers il JOIN layers l ON l.digest = il.layer_digest
                                           WHERE il.image_digest = i.digest AND l.status = 'failed')
                          AND EXISTS (SELECT 1 FROM image_layers il JOIN layers l ON l.digest = il.layer_digest
                                       WHERE il.image_digest = i.digest AND l.status = 'pending')
                     THEN 'not Debian, skipped'
                     WHEN EXISTS (SELECT 1 FROM image_layers il JOIN layers l ON l.digest = il.layer_digest
                                   WHERE il.image_digest = i.digest AND l.status <> 'analyzed') THEN 'incomplete'
                     ELSE 'clean' END AS verdict,
                coalesce((SELECT group_concat(DISTINCT f.rule_id) FROM findings f WHERE f.image_digest = i.digest), '') AS rules
           FROM (SELECT DISTINCT repository_id, tag, image_digest FROM image_observations WHERE run_id = @runId) o
           JOIN images i ON i.digest = o.image_digest
           JOIN repositories r ON r.id = o.repository_id
           JOIN registries reg ON reg.id = r.registry_id
          -- Only images this run reached (a manifest item of its own, done): an index's other platforms,
          -- analyzed by an earlier scan with another --platform, are in the dataset but were not scanned now,
          -- and an image whose item failed or waits has only an older verdict.
          WHERE EXISTS (SELECT 1 FROM frontier fr
                         WHERE fr.kind = 'manifest' AND fr.state = 'done' AND fr.key = @prefix || reg.host || '@' || i.digest)
          ORDER BY reference, i.platform`,
      )
      .all({ runId, prefix: runKeyPrefix(runId), debianOnly: debianOnly ? 1 : 0 }) as Row[];
    const evidence = db
      .prepare(
        `SELECT ${REPORT_COLUMNS.join(', ')} FROM report_rows
          WHERE manifest_digest IN (SELECT image_digest FROM image_observations WHERE run_id = ?)
            AND EXISTS (SELECT 1 FROM frontier fr
                         WHERE fr.kind = 'manifest' AND fr.state = 'done'
                           AND fr.key = ? || registry || '@' || manifest_digest)`,
      )
      .all(runId, runKeyPrefix(runId)) as Row[];
    return {
      images,
      evidence,
      failed: failedReferences(db, runId),
      imageless: imagelessReferences(db, runId),
    };
  } finally {
    db.close();
  }
}

/** `hubcrawl scan REF...`: analyze these images now (recorded in the dataset like any crawl) and print verdicts. */
export async function scanCommand(refs: string[], opts: ScanOptions): Promise<number> {
  if (refs.length === 0) throw new ConfigError('scan needs at least one image reference');
  const format = opts.format ?? 'table';
  if (!['table', 'csv', 'jsonl'].includes(format)) {
    throw new ConfigError(`scan format "${format}" is not one of table, csv, jsonl`);
  }
  // Not `fresh`: an interrupted scan of the same references resumes its run (refuseUnfinishedRun lets it).
  const { outcome, dbPath, config } = await crawlWith(
    opts,
    {
      seeds: {
        images: refs,
        repos: [],
        namespaces: [],
        searches: [],
        catalogs: [],
        files: [],
      },
    },
    {
      refuseUnfinished: true,
      // The layers of these images only: the dataset's backlog is a crawl's to work through.
      layerScope: 'run',
      command: 'scan',
      ...(opts.out !== undefined ? { outputFile: opts.out } : {}),
    },
  );
  const { images, evidence, failed, imageless } = scanSummary(dbPath, outcome.runId, config.debianOnly);
  let text =
    format === 'table'
      ? toTable(['reference', 'platform', 'manifest_digest', 'os', 'debian', 'verdict', 'rules'], images, 100)
      : renderReport(evidence, format);
  if (format === 'table' && failed.length > 0) {
    text += `\nFailed, so not scanned (the failures table has every attempt):\n${toTable(['reference', 'error', 'message'], failed, 160)}`;
  }
  if (format === 'table' && imageless.length > 0) {
    text += `\nReached no image:\n${toTable(['reference', 'why'], imageless, 160)}`;
  }
  await writeResult(text, opts.out, { dataset: dbPath });
  // CSV and JSON lines carry evidence only: the references that reached no image are named beside them.
  if (format !== 'table') {
    for (const f of failed)
      process.stderr.write(`hubcrawl: not scanned: ${f.reference}: ${f.error} ${f.message}\n`);
    for (const r of imageless) process.stderr.write(`hubcrawl: reached no image: ${r.reference}: ${r.why}\n`);
  }
  return crawlExitCode(outcome);
}
