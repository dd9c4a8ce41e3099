import type { Database, Statement } from 'better-sqlite3';
import { nowIso, toBool, toInt } from './rows.js';
import { writeTransaction } from './sqlite-errors.js';

export type ManifestKind = 'image' | 'index';

export interface ManifestInput {
  digest: string;
  mediaType: string;
  kind: ManifestKind;
  /** The exact bytes whose digest is `digest`. */
  raw: Uint8Array;
  configDigest: string | null;
  fetchedAt?: string;
  runId: number | null;
}

export interface ManifestRow {
  digest: string;
  mediaType: string;
  kind: ManifestKind;
  size: number;
  configDigest: string | null;
  fetchedAt: string;
  runId: number | null;
}

/** A manifest whose GET showed content hubcrawl does not read (unsupported_manifests). */
export interface UnsupportedManifest {
  digest: string;
  /** The type it was served as, e.g. `application/vnd.docker.distribution.manifest.v1+prettyjws`. */
  mediaType: string;
  fetchedAt: string;
  /** The run that paid the GET. */
  runId: number | null;
}

/** One entry of an index, in index order. */
export interface IndexChild {
  digest: string;
  mediaType: string | null;
  size: number | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  /** Buildx attestation manifests (`vnd.docker.reference.type: attestation-manifest`) are not images. */
  isAttestation: boolean;
}

interface RawChild {
  digest: string;
  mediaType: string | null;
  size: number | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  isAttestation: number;
}

/** Manifests and index entries. Content-addressed: a digest is written once and never changes. */
export class ManifestStore {
  private readonly selectHas: Statement;
  private readonly insert: Statement;
  private readonly selectRaw: Statement;
  private readonly selectOne: Statement;
  private readonly insertChild: Statement;
  private readonly selectChildren: Statement;
  private readonly selectParents: Statement;
  private readonly insertUnsupported: Statement;
  private readonly selectUnsupported: Statement;
  private readonly putTx: (m: ManifestInput, children: readonly IndexChild[] | undefined) => boolean;
  private readonly unsupportedTx: (m: UnsupportedManifest) => void;
  private readonly childrenTx: (indexDigest: string, children: readonly IndexChild[]) => void;

  constructor(db: Database) {
    this.selectHas = db.prepare('SELECT 1 FROM manifests WHERE digest = ?').pluck();
    this.insert = db.prepare(
      `INSERT OR IGNORE INTO manifests (digest, media_type, kind, size, raw, config_digest, fetched_at, run_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.selectRaw = db.prepare('SELECT raw FROM manifests WHERE digest = ?').pluck();
    this.selectOne = db.prepare(
      `SELECT digest, media_type AS mediaType, kind, size, config_digest AS configDigest, fetched_at AS fetchedAt,
              run_id AS runId FROM manifests WHERE digest = ?`,
    );
    // Same digest ⇒ same entries, so a repeated write (a resumed run, or the Hub API's view followed by the
    // fetched index) keeps the first one.
    this.insertChild = db.prepare(
      `INSERT OR IGNORE INTO index_children (index_digest, position, child_digest, media_type, size, os,
                                             architecture, variant, is_attestation)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.selectChildren = db.prepare(
      `SELECT child_digest AS digest, media_type AS mediaType, size, os, architecture, variant,
              is_attestation AS isAttestation FROM index_children WHERE index_digest = ? ORDER BY position`,
    );
    this.selectParents = db
      .prepare(
        'SELECT DISTINCT index_digest FROM index_children WHERE child_digest = ? ORDER BY index_digest',
      )
      .pluck();
    // The first GET's verdict stands: the digest names the same bytes whoever serves them again.
    this.insertUnsupported = db.prepare(
      `INSERT OR IGNORE INTO unsupported_manifests (digest, media_type, fetched_at, run_id) VALUES (?, ?, ?, ?)`,
    );
    this.selectUnsupported = db.prepare(
      `SELECT digest, media_type AS mediaType, fetched_at AS fetchedAt, run_id AS runId
         FROM unsupported_manifests WHERE digest = ?`,
    );
    this.unsupportedTx = writeTransaction(db, (m: UnsupportedManifest) => {
      this.insertUnsupported.run(m.digest, m.mediaType, m.fetchedAt, m.runId);
    });
    this.childrenTx = writeTransaction(db, (indexDigest: string, children: readonly IndexChild[]) => {
      children.forEach((c, position) => {
        this.insertChild.run(
          indexDigest,
          position,
          c.digest,
          c.mediaType,
          c.size,
          c.os,
          c.architecture,
          c.variant,
          toInt(c.isAttestation),
        );
      });
    });
    this.putTx = writeTransaction(db, (m: ManifestInput, children: readonly IndexChild[] | undefined) => {
      const added =
        this.insert.run(
          m.digest,
          m.mediaType,
          m.kind,
          m.raw.byteLength,
          Buffer.from(m.raw.buffer, m.raw.byteOffset, m.raw.byteLength),
          m.configDigest,
          m.fetchedAt ?? nowIso(),
          m.runId,
        ).changes > 0;
      if (children) this.childrenTx(m.digest, children);
      return added;
    });
  }

  /** True when the manifest was already fetched (then it costs no GET). */
  has(digest: string): boolean {
    return this.selectHas.get(digest) !== undefined;
  }

  /** Stores a manifest (and, for an index, its entries) in one transaction; false if it was already there. */
  put(m: ManifestInput, children?: readonly IndexChild[]): boolean {
    return this.putTx(m, children);
  }

  /** Records the entries of an index (from the fetched index or from the Hub tags API). */
  putIndexChildren(indexDigest: string, children: readonly IndexChild[]): void {
    this.childrenTx(indexDigest, children);
  }

  /** The stored bytes of a manifest. */
  getRaw(digest: string): Buffer | undefined {
    return this.selectRaw.get(digest) as Buffer | undefined;
  }

  /** A manifest's metadata. */
  get(digest: string): ManifestRow | undefined {
    return this.selectOne.get(digest) as ManifestRow | undefined;
  }

  /**
   * Records that a fetched manifest's own bytes are of a kind hubcrawl does not read, so that no later
   * GET is spent on its digest. Call it only with bytes verified against `digest`.
   */
  putUnsupported(m: Omit<UnsupportedManifest, 'fetchedAt'> & { fetchedAt?: string }): void {
    this.unsupportedTx({ ...m, fetchedAt: m.fetchedAt ?? nowIso() });
  }

  /** The record of a manifest known to be unsupported, if any: then it costs no GET. */
  unsupported(digest: string): UnsupportedManifest | undefined {
    return this.selectUnsupported.get(digest) as UnsupportedManifest | undefined;
  }

  /** The entries of an index in index order (empty when unknown). */
  children(indexDigest: string): IndexChild[] {
    return (this.selectChildren.all(indexDigest) as RawChild[]).map((c) => ({
      ...c,
      isAttestation: toBool(c.isAttestation) ?? false,
    }));
  }

  /** The indexes known to list a manifest. */
  parents(childDigest: string): string[] {
    return this.selectParents.all(childDigest) as string[];
  }
}
