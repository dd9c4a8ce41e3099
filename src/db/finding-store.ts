import type { Database, Statement } from 'better-sqlite3';
import type { EvidenceKind } from '../analyzer/facts.js';
import { type ImageEvidence, nowIso } from './rows.js';
import { writeTransaction } from './sqlite-errors.js';

export interface ReplaceFindingsOptions {
  /**
   * Replace only the findings of these IOC set ids (other sets' findings stay). Default: all findings of
   * the image, which is right when `evidence` comes from matching every loaded set.
   */
  iocSetIds?: readonly string[];
  /** Recorded on the image so ImageStore.needingMatch skips it until facts or IOC sets change. */
  matchFingerprint?: string;
  matchedAt?: string;
}

export interface FindingRow {
  imageDigest: string;
  platform: string;
  iocSetId: string;
  iocSetVersion: string;
  ruleId: string;
  kind: EvidenceKind;
  path: string;
  value: string;
  layerDigest: string;
  layerIndex: number;
  inFinalFs: boolean;
  runId: number | null;
}

/**
 * One piece of evidence per (set, rule, kind, path, value, layer digest), the table's key, which has no
 * layer position. An image that holds the same layer blob twice (a repeated COPY of the same files, a
 * reproducible build step) has that evidence once per copy. Only the topmost copy can survive, as it
 * sits at the same path above the others, so its row is kept: the first row inserted used to win, and
 * that was the lower copy, recorded as removed, while the upper one survived in the image. Within one
 * layer (an archive holding the same file twice) the copy that survives is kept: a later entry replaces
 * the earlier one, and keeping the earlier would record a surviving backdoor as removed.
 */
function topmostCopies(evidence: readonly ImageEvidence[]): ImageEvidence[] {
  const byKey = new Map<string, ImageEvidence>();
  for (const e of evidence) {
    const key = JSON.stringify([e.iocSetId, e.ruleId, e.kind, e.path, e.value, e.layerDigest]);
    const kept = byKey.get(key);
    const better =
      kept === undefined ||
      e.layerIndex > kept.layerIndex ||
      (e.layerIndex === kept.layerIndex && e.inFinalFs && !kept.inFinalFs);
    if (better) byKey.set(key, e);
  }
  return [...byKey.values()];
}

/** Findings: evidence per image, replaced as a whole on every (re)match so the table is always current. */
export class FindingStore {
  private readonly deleteAll: Statement;
  private readonly deleteSet: Statement;
  private readonly insert: Statement;
  private readonly markMatched: Statement;
  private readonly selectForImage: Statement;
  private readonly replaceTx: (
    imageDigest: string,
    platform: string,
    evidence: readonly ImageEvidence[],
    runId: number | null,
    opts: ReplaceFindingsOptions,
  ) => number;

  constructor(db: Database) {
    this.deleteAll = db.prepare('DELETE FROM findings WHERE image_digest = ?');
    this.deleteSet = db.prepare('DELETE FROM findings WHERE image_digest = ? AND ioc_set_id = ?');
    // OR IGNORE: the same evidence twice in one list (e.g. two rules' hooks reporting one file) is one row.
    this.insert = db.prepare(
      `INSERT OR IGNORE INTO findings (image_digest, platform, ioc_set_id, ioc_set_version, rule_id, evidence_kind,
                                       path, value, layer_digest, layer_position, in_final_fs, run_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.markMatched = db.prepare('UPDATE images SET match_fingerprint = ?, matched_at = ? WHERE digest = ?');
    this.selectForImage = db.prepare(
      `SELECT image_digest AS imageDigest, platform, ioc_set_id AS iocSetId, ioc_set_version AS iocSetVersion,
              rule_id AS ruleId, evidence_kind AS kind, path, value, layer_digest AS layerDigest,
              layer_position AS layerIndex, in_final_fs AS inFinalFs, run_id AS runId
         FROM findings WHERE image_digest = ?
        ORDER BY ioc_set_id, rule_id, layer_position, evidence_kind, path, value`,
    );
    this.replaceTx = writeTransaction(db, (imageDigest, platform, evidence, runId, opts) => {
      if (opts.iocSetIds) for (const id of opts.iocSetIds) this.deleteSet.run(imageDigest, id);
      else this.deleteAll.run(imageDigest);
      let added = 0;
      for (const e of topmostCopies(evidence)) {
        if (opts.iocSetIds && !opts.iocSetIds.includes(e.iocSetId)) continue;
        added += this.insert.run(
          imageDigest,
          platform,
          e.iocSetId,
          e.iocSetVersion,
          e.ruleId,
          e.kind,
          e.path,
          e.value,
          e.layerDigest,
          e.layerIndex,
          e.inFinalFs ? 1 : 0,
          runId,
        ).changes;
      }
      if (opts.matchFingerprint !== undefined) {
        this.markMatched.run(opts.matchFingerprint, opts.matchedAt ?? nowIso(), imageDigest);
      }
      return added;
    });
  }

  /**
   * Makes the image's findings exactly `evidence` (idempotent: the same call twice leaves the same rows);
   * returns the number of rows written. The image row must exist.
   */
  replaceForImage(
    imageDigest: string,
    platform: string,
    evidence: readonly ImageEvidence[],
    runId: number | null,
    opts: ReplaceFindingsOptions = {},
  ): number {
    return this.replaceTx(imageDigest, platform, evidence, runId, opts);
  }

  /** The image's findings, in a stable order. */
  forImage(imageDigest: string): FindingRow[] {
    return (
      this.selectForImage.all(imageDigest) as Array<Omit<FindingRow, 'inFinalFs'> & { inFinalFs: number }>
    ).map((r) => ({
      ...r,
      inFinalFs: r.inFinalFs !== 0,
    }));
  }
}
