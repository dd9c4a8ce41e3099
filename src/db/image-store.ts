import type { Database, Statement } from 'better-sqlite3';
import { formatPlatform, type Platform } from '../core/platform.js';
import { nowIso, toBool, toInt } from './rows.js';
import { guardWrite, writeTransaction } from './sqlite-errors.js';

/** A layer as listed in an image manifest. */
export interface LayerRef {
  digest: string;
  mediaType: string | null;
  /** Compressed size from the manifest. */
  size: number | null;
}

export interface ImageInput {
  /** The platform image manifest's digest (its manifest row must exist). */
  digest: string;
  platform: Platform;
  configDigest: string | null;
  /**
   * The config's `created`, normalized (normalizeCreated in src/crawler/registry/image-config.ts); null or
   * left out when the config holds no valid date, or could not be read for an index child (the handler
   * reads it for the date alone there). A known image keeps the one it has.
   */
  created?: string | null;
  /** Layers in manifest order, base first. */
  layers: readonly LayerRef[];
  seenAt?: string;
}

/** What the image's layers say about its OS (decided by the pipeline from os-release and dpkg facts). */
export interface OsFacts {
  isDebianDerived: boolean | null;
  osId: string | null;
  osVersion: string | null;
}

export interface ImageRow extends OsFacts {
  digest: string;
  platform: string;
  configDigest: string | null;
  /** The build date its config claims (the builder's word, for display only), or null. */
  created: string | null;
  firstSeen: string;
  lastSeen: string;
  matchFingerprint: string | null;
  matchedAt: string | null;
}

export interface ImageLayerRow {
  position: number;
  digest: string;
  mediaType: string | null;
  size: number | null;
  status: 'pending' | 'analyzed' | 'failed';
}

interface RawImage {
  digest: string;
  platform: string;
  config_digest: string | null;
  created: string | null;
  is_debian_derived: number | null;
  os_id: string | null;
  os_version: string | null;
  first_seen: string;
  last_seen: string;
  match_fingerprint: string | null;
  matched_at: string | null;
}

/** Platform images and their layer order. */
export class ImageStore {
  private readonly upsertImage: Statement;
  private readonly insertLayer: Statement;
  private readonly deleteLayers: Statement;
  private readonly insertImageLayer: Statement;
  private readonly updateOs: Statement;
  private readonly selectOne: Statement;
  private readonly selectLayers: Statement;
  private readonly selectToMatch: Statement;
  private readonly selectAll: Statement;
  private readonly countUpperLayersOnBase: Statement;
  private readonly selectLayerListed: Statement;
  private readonly selectWithoutPlatform: Statement;
  private readonly forgetTx: (digest: string) => void;
  private readonly selectByBase: Statement;
  private readonly selectMatchableWithLayer: Statement;
  private readonly selectMatchable: Statement;
  private readonly selectUndecidedOnBase: Statement;
  private readonly selectUndecided: Statement;
  private readonly selectAllUndecided: Statement;
  private readonly selectLayerInRun: Statement;
  private readonly putTx: (img: ImageInput) => void;

  constructor(private readonly db: Database) {
    this.upsertImage = db.prepare(
      // A digest names one config, so a second read of it (two items of a run racing on one image) can only
      // fill a created the first left NULL (its config could not be read then), never change one.
      `INSERT INTO images (digest, platform, os, architecture, variant, config_digest, created, first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (digest) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen),
                                          created = coalesce(created, excluded.created)`,
    );
    this.insertLayer = db.prepare(
      'INSERT OR IGNORE INTO layers (digest, media_type, compressed_size) VALUES (?, ?, ?)',
    );
    this.deleteLayers = db.prepare('DELETE FROM image_layers WHERE image_digest = ?');
    this.insertImageLayer = db.prepare(
      'INSERT INTO image_layers (image_digest, position, layer_digest, media_type, size) VALUES (?, ?, ?, ?, ?)',
    );
    this.updateOs = db.prepare(
      'UPDATE images SET is_debian_derived = ?, os_id = ?, os_version = ? WHERE digest = ?',
    );
    this.selectOne = db.prepare('SELECT * FROM images WHERE digest = ?');
    this.selectLayers = db.prepare(
      `SELECT il.position, il.layer_digest AS digest, il.media_type AS mediaType, il.size, l.status
         FROM image_layers il JOIN layers l ON l.digest = il.layer_digest
        WHERE il.image_digest = ? ORDER BY il.position`,
    );
    this.selectToMatch = db
      .prepare(
        `SELECT i.digest
           FROM images i
          WHERE (i.match_fingerprint IS NULL OR i.match_fingerprint <> ?)
            AND NOT EXISTS (SELECT 1 FROM image_layers il JOIN layers l ON l.digest = il.layer_digest
                             WHERE il.image_digest = i.digest AND l.status = 'pending')
          ORDER BY i.digest`,
      )
      .pluck();
    this.selectAll = db.prepare('SELECT digest FROM images ORDER BY digest').pluck();
    this.selectLayerListed = db.prepare('SELECT 1 FROM image_layers WHERE layer_digest = ? LIMIT 1');
    this.selectWithoutPlatform = db.prepare(
      `SELECT i.digest, m.raw, m.media_type AS mediaType FROM images i JOIN manifests m ON m.digest = i.digest
        WHERE i.platform = 'unknown/unknown'`,
    );
    const layersOf = db.prepare('SELECT layer_digest FROM image_layers WHERE image_digest = ?').pluck();
    const deletes = [
      db.prepare('DELETE FROM findings WHERE image_digest = ?'),
      db.prepare('DELETE FROM image_layers WHERE image_digest = ?'),
      db.prepare('DELETE FROM images WHERE digest = ?'),
    ];
    const deleteOrphanLayer = db.prepare(
      `DELETE FROM layers WHERE digest = ? AND status <> 'analyzed'
          AND NOT EXISTS (SELECT 1 FROM image_layers WHERE layer_digest = ?)`,
    );
    this.forgetTx = writeTransaction(db, (digest: string) => {
      const layers = layersOf.all(digest) as string[];
      for (const d of deletes) d.run(digest);
      for (const l of layers) deleteOrphanLayer.run(l, l);
    });
    this.countUpperLayersOnBase = db
      .prepare(
        // Driven from the base layer's images, and the frontier reached through its (kind, key) index: CROSS
        // JOIN keeps SQLite from scanning every done manifest item instead (tested in layer-store.test.ts).
        `SELECT count(*) FROM image_layers base
           JOIN image_layers il ON il.image_digest = base.image_digest AND il.position > 0
          WHERE base.layer_digest = ? AND base.position = 0
            AND EXISTS (SELECT 1 FROM registries r CROSS JOIN frontier f
                         WHERE f.kind = 'manifest' AND f.key = ? || r.host || '@' || base.image_digest
                           AND f.state = 'done')`,
      )
      .pluck();
    this.selectByBase = db
      .prepare(
        'SELECT image_digest FROM image_layers WHERE position = 0 AND layer_digest = ? ORDER BY image_digest',
      )
      .pluck();
    // An image's layers are all done when none is pending (never attempted: no facts, no failure yet) and
    // none has a layer item still to run (pending or in progress: analysis, re-analysis, a retry). A layer
    // item's key begins with its digest and '|' (keys.ts), so its items are a range of the frontier's
    // (kind, key) index: '}' is the character after '|'.
    const layersDone = (image: string) =>
      `NOT EXISTS (SELECT 1 FROM image_layers o JOIN layers l ON l.digest = o.layer_digest
                    WHERE o.image_digest = ${image}
                      AND (l.status = 'pending'
                           OR EXISTS (SELECT 1 FROM frontier f
                                       WHERE f.kind = 'layer' AND f.key > o.layer_digest || '|'
                                         AND f.key < o.layer_digest || '}'
                                         AND f.state IN ('pending', 'in-progress'))))`;
    const stale = '(i.match_fingerprint IS NULL OR i.match_fingerprint <> @fingerprint)';
    this.selectMatchableWithLayer = db
      .prepare(
        `SELECT DISTINCT il.image_digest FROM image_layers il JOIN images i ON i.digest = il.image_digest
          WHERE il.layer_digest = @layer AND ${stale} AND ${layersDone('il.image_digest')}
          ORDER BY il.image_digest LIMIT @limit`,
      )
      .pluck();
    this.selectMatchable = db
      .prepare(
        `SELECT i.digest FROM images i WHERE i.digest = @image AND ${stale} AND ${layersDone('i.digest')}`,
      )
      .pluck();
    const undecided = `SELECT i.digest, il.layer_digest AS baseLayer FROM images i
           JOIN image_layers il ON il.image_digest = i.digest AND il.position = 0
           JOIN layers l ON l.digest = il.layer_digest
          WHERE i.is_debian_derived IS NULL AND l.status = 'analyzed'`;
    this.selectUndecidedOnBase = db.prepare(`${undecided} AND il.layer_digest = ? ORDER BY i.digest`);
    this.selectUndecided = db.prepare(`${undecided} AND i.digest = ?`);
    this.selectAllUndecided = db.prepare(`${undecided} ORDER BY i.digest`);
    // Like countUpperLayersOnBase: driven from the layer's images, the frontier reached by its (kind, key) index.
    this.selectLayerInRun = db.prepare(
      `SELECT 1 FROM image_layers il
        WHERE il.layer_digest = ? AND il.image_digest <> ?
          AND EXISTS (SELECT 1 FROM registries r CROSS JOIN frontier f
                       WHERE f.kind = 'manifest' AND f.key = ? || r.host || '@' || il.image_digest
                         AND f.state = 'done')
        LIMIT 1`,
    );
    this.putTx = writeTransaction(db, (img: ImageInput) => {
      const seen = img.seenAt ?? nowIso();
      const p = img.platform;
      this.upsertImage.run(
        img.digest,
        formatPlatform(p),
        p.os,
        p.architecture,
        p.variant ?? null,
        img.configDigest,
        img.created ?? null,
        seen,
        seen,
      );
      // The digest names the layer list, so rewriting it for a known image changes nothing; delete and
      // re-insert keeps put() idempotent without comparing lists.
      this.deleteLayers.run(img.digest);
      img.layers.forEach((l, position) => {
        this.insertLayer.run(l.digest, l.mediaType, l.size);
        this.insertImageLayer.run(img.digest, position, l.digest, l.mediaType, l.size);
      });
    });
  }

  /** Records a platform image and its ordered layers (new layers start as `pending`), in one transaction. */
  put(img: ImageInput): void {
    this.putTx(img);
  }

  /** Records what the layers say about the OS. */
  setOsFacts(digest: string, os: OsFacts): void {
    guardWrite(this.db, () => this.updateOs.run(toInt(os.isDebianDerived), os.osId, os.osVersion, digest));
  }

  /** One image. */
  get(digest: string): ImageRow | undefined {
    const r = this.selectOne.get(digest) as RawImage | undefined;
    if (!r) return undefined;
    return {
      digest: r.digest,
      platform: r.platform,
      configDigest: r.config_digest,
      created: r.created,
      isDebianDerived: toBool(r.is_debian_derived),
      osId: r.os_id,
      osVersion: r.os_version,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      matchFingerprint: r.match_fingerprint,
      matchedAt: r.matched_at,
    };
  }

  /** The image's layers, base first, with their analysis status. */
  layers(digest: string): ImageLayerRow[] {
    return this.selectLayers.all(digest) as ImageLayerRow[];
  }

  /**
   * Digests of the images whose findings are stale: never matched, matched with another IOC fingerprint,
   * or a layer was (re)analyzed since (LayerStore clears the fingerprint then). Images with a pending
   * layer wait.
   */
  needingMatch(fingerprint: string): string[] {
    return this.selectToMatch.all(fingerprint) as string[];
  }

  /**
   * Images listing layer `layerDigest` that are matchable now: stale under `fingerprint` (never matched,
   * matched with other IOC sets, or a layer's facts changed since) and with every layer done, analyzed or
   * failed for good, none pending nor waiting for its layer item (analysis, re-analysis or a retry). When a
   * layer item ends, exactly the images it completes: a shared base layer finishing matches only those of
   * its images whose other layers are done, found through the layer's index, never by a scan of all images.
   */
  matchableWithLayer(layerDigest: string, fingerprint: string, limit?: number): string[] {
    return this.selectMatchableWithLayer.all({
      layer: layerDigest,
      fingerprint,
      limit: limit ?? -1,
    }) as string[];
  }

  /** Whether image `digest` is matchable now (as matchableWithLayer says). */
  isMatchable(digest: string, fingerprint: string): boolean {
    return this.selectMatchable.get({ image: digest, fingerprint }) !== undefined;
  }

  /**
   * Whether a manifest item of a run (frontier keys `<runKeyPrefix><registry>@<digest>`) that is done
   * recorded an image other than `exceptImage` listing this layer: whether the run reached the layer before.
   */
  layerReachedInRun(layerDigest: string, runKeyPrefix: string, exceptImage: string): boolean {
    return this.selectLayerInRun.get(layerDigest, exceptImage, runKeyPrefix) !== undefined;
  }

  /**
   * Upper layers (all but the base) of the images on base layer `baseDigest` whose manifest item of a run
   * is done (frontier keys `<runKeyPrefix><registry>@<digest>`): when a debianOnly verdict against that base
   * comes, exactly the images that waited for it. An image whose manifest item comes later counts itself.
   */
  upperLayersOnBase(baseDigest: string, runKeyPrefix: string): number {
    return this.countUpperLayersOnBase.get(baseDigest, runKeyPrefix) as number;
  }

  /**
   * Removes an image row that is no image (an OCI artifact an older hubcrawl recorded as one), with its
   * findings and layer list, and its layers that nothing else uses and that hold no facts (a failed
   * download of a signature's JSON). Its manifest row stays: it is what spares later runs the GET.
   */
  forget(digest: string): void {
    this.forgetTx(digest);
  }

  /** Images recorded with platform `unknown/unknown`, with their stored manifests (what an artifact gives). */
  withoutPlatform(): Array<{ digest: string; raw: Buffer; mediaType: string }> {
    return this.selectWithoutPlatform.all() as Array<{ digest: string; raw: Buffer; mediaType: string }>;
  }

  /** Whether any recorded image lists this layer: one that none does is no one's to download. */
  isLayerListed(layerDigest: string): boolean {
    return this.selectLayerListed.get(layerDigest) !== undefined;
  }

  /** Images whose base (position 0) layer is `layerDigest`. */
  withBaseLayer(layerDigest: string): string[] {
    return this.selectByBase.all(layerDigest) as string[];
  }

  /** Every image digest, sorted. */
  allDigests(): string[] {
    return this.selectAll.all() as string[];
  }

  /**
   * Images with no OS verdict yet (never matched: some layer pending) whose base layer is analyzed, with
   * that layer's digest: every such image, or those on base layer `opts.baseLayer`, or image `opts.image`.
   */
  undecidedWithAnalyzedBase(
    opts: { baseLayer?: string; image?: string } = {},
  ): Array<{ digest: string; baseLayer: string }> {
    type Row = { digest: string; baseLayer: string };
    if (opts.image !== undefined) return this.selectUndecided.all(opts.image) as Row[];
    if (opts.baseLayer !== undefined) return this.selectUndecidedOnBase.all(opts.baseLayer) as Row[];
    return this.selectAllUndecided.all() as Row[];
  }
}
