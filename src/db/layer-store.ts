import type { Database, Statement } from 'better-sqlite3';
import type { Compression, FileFact, LayerFacts } from '../analyzer/facts.js';
import { nowIso } from './rows.js';
import { writeTransaction } from './sqlite-errors.js';
import { AN_OBJECT_OF_STRINGS, parseStoredJson } from './stored-json.js';

export type LayerStatus = 'pending' | 'analyzed' | 'failed';

export interface LayerRow {
  digest: string;
  mediaType: string | null;
  compressedSize: number | null;
  uncompressedSize: number | null;
  entryCount: number | null;
  compression: Compression | null;
  analyzerVersion: string | null;
  selection: string | null;
  status: LayerStatus;
  errorCode: string | null;
  errorMessage: string | null;
  analyzedAt: string | null;
  attempts: number;
}

type FileRow = Omit<FileFact, 'linkTarget'> & { linkTarget: string | null };

const LAYER_COLUMNS = `digest, media_type AS mediaType, compressed_size AS compressedSize,
  uncompressed_size AS uncompressedSize, entry_count AS entryCount, compression, analyzer_version AS analyzerVersion,
  selection, status, error_code AS errorCode, error_message AS errorMessage, analyzed_at AS analyzedAt, attempts`;

/** A stored os-release row's fields: the analyzer writes them as a JSON object of strings. */
function osReleaseFields(digest: string, path: string, json: string): Record<string, string> {
  const where = { row: `layer_os_release row of layer ${digest} (${path})`, column: 'fields_json' };
  return parseStoredJson(json, where, AN_OBJECT_OF_STRINGS) as Record<string, string>;
}

/** The tables that hold a layer's facts, in the order facts are written. */
export const FACT_TABLES = [
  'layer_files',
  'layer_packages',
  'layer_md5sums',
  'layer_os_release',
  'layer_whiteouts',
  'layer_signature_hits',
  'layer_symlinks',
  'layer_dirs',
] as const;

/** The analyzer version from which a layer's symlinks are stored (LayerFacts.symlinks). */
const SYMLINKS_SINCE_ANALYZER = 6;
/** The analyzer version from which a layer's directory entries are stored (LayerFacts.dirs). */
const DIRS_SINCE_ANALYZER = 7;

/**
 * Layers and their facts. Invariant: fact rows exist iff `status = 'analyzed'`, and they are exactly the
 * facts of the last successful analysis (markAnalyzed replaces them in one transaction). Whenever a
 * layer's facts change, images using it lose their match fingerprint so they get re-matched.
 */
export class LayerStore {
  private readonly selectOne: Statement;
  private readonly insertPending: Statement;
  private readonly deleteFacts: Statement[];
  private readonly updateAnalyzed: Statement;
  private readonly updateFailed: Statement;
  private readonly noteFailedReanalysis: Statement;
  private readonly countOtherSelection: Statement;
  private readonly staleImages: Statement;
  private readonly ins: Record<(typeof FACT_TABLES)[number], Statement>;
  private readonly sel: Record<(typeof FACT_TABLES)[number], Statement>;
  private readonly analyzedTx: (
    digest: string,
    facts: LayerFacts,
    analyzerVersion: string,
    at: string,
  ) => void;
  private readonly failedTx: (digest: string, code: string, message: string, at: string) => void;

  constructor(db: Database) {
    this.selectOne = db.prepare(`SELECT ${LAYER_COLUMNS} FROM layers WHERE digest = ?`);
    this.countOtherSelection = db.prepare(
      `SELECT selection, count(*) AS layers FROM layers
        WHERE status = 'analyzed' AND (selection IS NULL OR selection NOT IN (SELECT value FROM json_each(?)))
        GROUP BY selection`,
    );
    this.insertPending = db.prepare(
      'INSERT OR IGNORE INTO layers (digest, media_type, compressed_size) VALUES (?, ?, ?)',
    );
    this.deleteFacts = FACT_TABLES.map((t) => db.prepare(`DELETE FROM ${t} WHERE layer_digest = ?`));
    this.updateAnalyzed = db.prepare(
      `UPDATE layers SET status = 'analyzed', compression = @compression, compressed_size = @compressedBytes,
              uncompressed_size = @uncompressedBytes, entry_count = @entryCount, selection = @selection,
              analyzer_version = @analyzerVersion, analyzed_at = @at, error_code = NULL, error_message = NULL,
              attempts = attempts + 1
        WHERE digest = @digest`,
    );
    this.noteFailedReanalysis = db.prepare(
      `UPDATE layers SET error_code = ?, error_message = ?, attempts = attempts + 1
        WHERE digest = ? AND status = 'analyzed'`,
    );
    this.updateFailed = db.prepare(
      `UPDATE layers SET status = 'failed', error_code = ?, error_message = ?, analyzed_at = ?, attempts = attempts + 1
        WHERE digest = ?`,
    );
    this.staleImages = db.prepare(
      `UPDATE images SET match_fingerprint = NULL
        WHERE digest IN (SELECT image_digest FROM image_layers WHERE layer_digest = ?)`,
    );
    this.ins = {
      layer_files: db.prepare(
        `INSERT INTO layer_files (layer_digest, seq, path, size, mode, sha256, md5, link_target)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      layer_packages: db.prepare(
        `INSERT INTO layer_packages (layer_digest, seq, name, version, architecture, source, status, status_file)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      layer_md5sums: db.prepare(
        'INSERT INTO layer_md5sums (layer_digest, seq, package, info_file, md5, path) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      layer_os_release: db.prepare(
        'INSERT INTO layer_os_release (layer_digest, seq, path, fields_json) VALUES (?, ?, ?, ?)',
      ),
      layer_whiteouts: db.prepare(
        'INSERT INTO layer_whiteouts (layer_digest, seq, path, opaque) VALUES (?, ?, ?, ?)',
      ),
      layer_signature_hits: db.prepare(
        `INSERT INTO layer_signature_hits (layer_digest, seq, path, ioc_set_id, rule_id, "offset", hex, in_elf, scanned_path)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      layer_symlinks: db.prepare(
        'INSERT INTO layer_symlinks (layer_digest, seq, path, target) VALUES (?, ?, ?, ?)',
      ),
      layer_dirs: db.prepare('INSERT INTO layer_dirs (layer_digest, seq, path, late) VALUES (?, ?, ?, ?)'),
    };
    const order = 'WHERE layer_digest = ? ORDER BY seq';
    this.sel = {
      layer_files: db.prepare(
        `SELECT path, size, mode, sha256, md5, link_target AS linkTarget FROM layer_files ${order}`,
      ),
      layer_packages: db.prepare(
        `SELECT name, version, architecture, source, status, status_file AS statusFile FROM layer_packages ${order}`,
      ),
      layer_md5sums: db.prepare(
        `SELECT package, info_file AS infoFile, md5, path FROM layer_md5sums ${order}`,
      ),
      layer_os_release: db.prepare(`SELECT path, fields_json FROM layer_os_release ${order}`),
      layer_whiteouts: db.prepare(`SELECT path, opaque FROM layer_whiteouts ${order}`),
      // A hit stored before schema 4 has no pattern; the definition of the selection its layer was analyzed
      // under (`selections`, recorded or given back by backfillSelections) names the pattern that found it,
      // and an elfOnly one says the file was an ELF. Without that row the hit stays as it was stored.
      layer_signature_hits: db.prepare(
        `SELECT h.path, h.ioc_set_id AS iocSetId, h.rule_id AS ruleId, h."offset",
                coalesce(h.hex, d.hex) AS hex,
                coalesce(h.in_elf, CASE WHEN d.elf_only = 1 THEN 1 END) AS inElf,
                h.scanned_path AS scannedPath
           FROM layer_signature_hits h
           LEFT JOIN (SELECT json_extract(sig.value, '$[0]') AS set_id, json_extract(sig.value, '$[1]') AS rule_id,
                             json_extract(sig.value, '$[2]') AS hex, json_extract(sig.value, '$[3]') AS elf_only
                        FROM layers l
                        JOIN selections s ON s.fingerprint = l.selection,
                             json_each(s.definition_json, '$.signatures') sig
                       WHERE l.digest = @digest) d
             ON h.hex IS NULL AND d.set_id = h.ioc_set_id AND d.rule_id = h.rule_id
          WHERE h.layer_digest = @digest
          ORDER BY h.seq`,
      ),
      layer_symlinks: db.prepare(`SELECT path, target FROM layer_symlinks ${order}`),
      layer_dirs: db.prepare(`SELECT path, late FROM layer_dirs ${order}`),
    };

    this.analyzedTx = writeTransaction(
      db,
      (digest: string, f: LayerFacts, analyzerVersion: string, at: string) => {
        this.insertPending.run(digest, null, f.compressedBytes);
        for (const d of this.deleteFacts) d.run(digest);
        for (const [i, x] of f.files.entries()) {
          this.ins.layer_files.run(digest, i, x.path, x.size, x.mode, x.sha256, x.md5, x.linkTarget ?? null);
        }
        for (const [i, x] of f.packages.entries()) {
          this.ins.layer_packages.run(
            digest,
            i,
            x.name,
            x.version,
            x.architecture,
            x.source,
            x.status,
            x.statusFile,
          );
        }
        for (const [i, x] of f.md5sums.entries()) {
          this.ins.layer_md5sums.run(digest, i, x.package, x.infoFile, x.md5, x.path);
        }
        for (const [i, x] of f.osRelease.entries()) {
          this.ins.layer_os_release.run(digest, i, x.path, JSON.stringify(x.fields));
        }
        for (const [i, x] of f.whiteouts.entries()) {
          this.ins.layer_whiteouts.run(digest, i, x.path, x.opaque ? 1 : 0);
        }
        for (const [i, x] of f.signatureHits.entries()) {
          const inElf = x.inElf === null ? null : x.inElf ? 1 : 0;
          const hit = [x.path, x.iocSetId, x.ruleId, x.offset, x.hex, inElf, x.scannedPath] as const;
          this.ins.layer_signature_hits.run(digest, i, ...hit);
        }
        for (const [i, x] of (f.symlinks ?? []).entries()) {
          this.ins.layer_symlinks.run(digest, i, x.path, x.target);
        }
        const dirs = [...(f.dirs ?? []).map((p) => [p, 0]), ...(f.lateDirs ?? []).map((p) => [p, 1])];
        for (const [i, [path, late]] of dirs.entries()) this.ins.layer_dirs.run(digest, i, path, late);
        this.updateAnalyzed.run({
          digest,
          compression: f.compression,
          compressedBytes: f.compressedBytes,
          uncompressedBytes: f.uncompressedBytes,
          entryCount: f.entryCount,
          selection: f.selection,
          analyzerVersion,
          at,
        });
        this.staleImages.run(digest);
      },
    );
    this.failedTx = writeTransaction(db, (digest: string, code: string, message: string, at: string) => {
      // A failed re-analysis (new IOC selection, new analyzer version) keeps the facts it would have
      // replaced: they are still true of the layer, and may be the only copy once the blob is gone.
      if (this.noteFailedReanalysis.run(code, message, digest).changes > 0) return;
      this.insertPending.run(digest, null, null);
      for (const d of this.deleteFacts) d.run(digest);
      this.updateFailed.run(code, message, at, digest);
      this.staleImages.run(digest);
    });
  }

  /**
   * Analyzed layers whose candidate files were chosen by none of `selections` (CompiledRules.coveredBy),
   * counted per selection they were analyzed under (null: before selections were recorded).
   */
  countByOtherSelection(selections: readonly string[]): Array<{ selection: string | null; layers: number }> {
    return this.countOtherSelection.all(JSON.stringify(selections)) as Array<{
      selection: string | null;
      layers: number;
    }>;
  }

  /** The layer row (status, sizes, error, attempts). */
  get(digest: string): LayerRow | undefined {
    return this.selectOne.get(digest) as LayerRow | undefined;
  }

  /**
   * True unless the layer was analyzed by this analyzer version with one of `selections` (the current
   * one and those whose facts cover it, CompiledRules.coveredBy): a layer is analyzed once per (analyzer
   * version, selection), however many images share it. A failed layer needs analysis too; the frontier's
   * attempt limit decides whether to try again.
   */
  needsAnalysis(digest: string, analyzerVersion: string, selections: readonly string[]): boolean {
    const row = this.get(digest);
    return !(
      row?.status === 'analyzed' &&
      row.analyzerVersion === analyzerVersion &&
      row.selection !== null &&
      selections.includes(row.selection)
    );
  }

  /** Replaces the layer's facts with `facts` and marks it analyzed, in one transaction. */
  markAnalyzed(digest: string, facts: LayerFacts, analyzerVersion: string, at: string = nowIso()): void {
    this.analyzedTx(digest, facts, analyzerVersion, at);
  }

  /**
   * Records a failed analysis. A layer never analyzed becomes `failed` (no facts); a layer analyzed
   * before keeps its status and facts and only notes the error, so a failed re-download loses nothing.
   */
  markFailed(digest: string, errorCode: string, errorMessage: string, at: string = nowIso()): void {
    this.failedTx(digest, errorCode, errorMessage, at);
  }

  /** The stored facts of an analyzed layer, exactly as given to markAnalyzed; undefined otherwise. */
  loadFacts(digest: string): LayerFacts | undefined {
    const row = this.get(digest);
    if (row?.status !== 'analyzed') return undefined;
    return {
      compression: row.compression ?? 'none',
      compressedBytes: row.compressedSize ?? 0,
      uncompressedBytes: row.uncompressedSize ?? 0,
      entryCount: row.entryCount ?? 0,
      // linkTarget is set only on the rows that have one (FileFact): NULL gives no key at all.
      files: (this.sel.layer_files.all(digest) as Array<FileRow>).map(({ linkTarget, ...f }) =>
        linkTarget === null ? f : { ...f, linkTarget },
      ),
      packages: this.sel.layer_packages.all(digest) as LayerFacts['packages'],
      md5sums: this.sel.layer_md5sums.all(digest) as LayerFacts['md5sums'],
      osRelease: (this.sel.layer_os_release.all(digest) as Array<{ path: string; fields_json: string }>).map(
        (r) => ({ path: r.path, fields: osReleaseFields(digest, r.path, r.fields_json) }),
      ),
      whiteouts: (this.sel.layer_whiteouts.all(digest) as Array<{ path: string; opaque: number }>).map(
        (r) => ({
          path: r.path,
          opaque: r.opaque !== 0,
        }),
      ),
      signatureHits: (
        this.sel.layer_signature_hits.all({ digest }) as Array<
          Omit<LayerFacts['signatureHits'][number], 'inElf'> & { inElf: number | null }
        >
      ).map((r) => ({ ...r, inElf: r.inElf === null ? null : r.inElf !== 0 })),
      selection: row.selection ?? '',
      // An older analyzer kept no symlinks: none known, rather than none there.
      ...(Number(row.analyzerVersion) >= SYMLINKS_SINCE_ANALYZER
        ? { symlinks: this.sel.layer_symlinks.all(digest) as NonNullable<LayerFacts['symlinks']> }
        : {}),
      // Nor its directory entries: unknown, which matching must not read as none.
      ...(Number(row.analyzerVersion) >= DIRS_SINCE_ANALYZER ? this.loadDirs(digest) : {}),
    };
  }

  private loadDirs(digest: string): Pick<LayerFacts, 'dirs' | 'lateDirs'> {
    const rows = this.sel.layer_dirs.all(digest) as Array<{ path: string; late: number }>;
    return {
      dirs: rows.filter((r) => r.late === 0).map((r) => r.path),
      lateDirs: rows.filter((r) => r.late !== 0).map((r) => r.path),
    };
  }
}
