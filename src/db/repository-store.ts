import type { Database, Statement } from 'better-sqlite3';
import { splitRepositoryName } from '../core/repository-name.js';
import { nowIso, toBool, toInt } from './rows.js';
import { guardWrite } from './sqlite-errors.js';

/** Repository metadata from the Docker Hub web API. */
export interface HubMetadata {
  pullCount: number | null;
  starCount: number | null;
  lastUpdated: string | null;
  isOfficial: boolean | null;
  description: string | null;
}

export interface RepositoryRow extends HubMetadata {
  id: number;
  registry: string;
  /** `namespace/name` (`library/debian`); namespace is everything before the last `/`. */
  fullName: string;
  namespace: string;
  name: string;
  fetchedAt: string | null;
}

interface RawRepository {
  id: number;
  registry: string;
  full_name: string;
  namespace: string;
  name: string;
  pull_count: number | null;
  star_count: number | null;
  last_updated: string | null;
  is_official: number | null;
  description: string | null;
  fetched_at: string | null;
}

/**
 * Registries and repositories. Names are stored as the registry API spells them: the caller normalises
 * Docker Hub short names (`debian` → `library/debian`) and hosts (`registry-1.docker.io` → `docker.io`).
 * `splitRepositoryName` gives the stored namespace and name; a name it refuses throws CorruptInputError.
 */
export class RepositoryStore {
  private readonly insertRegistry: Statement;
  private readonly selectRegistry: Statement;
  private readonly insertRepo: Statement;
  private readonly upsertRepoMeta: Statement;
  private readonly selectRepoId: Statement;
  private readonly selectRepo: Statement;
  private readonly selectById: Statement;
  private readonly selectReachingManifest: Statement;
  private readonly selectWithPresentTags: Statement;
  private readonly selectHoldingLayer: Statement;
  private readonly registryIds = new Map<string, number>();

  constructor(private readonly db: Database) {
    this.insertRegistry = db.prepare('INSERT OR IGNORE INTO registries (host) VALUES (?)');
    this.selectRegistry = db.prepare('SELECT id FROM registries WHERE host = ?').pluck();
    this.insertRepo = db.prepare(
      'INSERT OR IGNORE INTO repositories (registry_id, namespace, name) VALUES (?, ?, ?)',
    );
    this.upsertRepoMeta = db.prepare(
      `INSERT INTO repositories (registry_id, namespace, name, pull_count, star_count, last_updated, is_official,
                                 description, fetched_at)
       VALUES (@registryId, @namespace, @name, @pullCount, @starCount, @lastUpdated, @isOfficial, @description,
               @fetchedAt)
       ON CONFLICT (registry_id, namespace, name) DO UPDATE SET
         pull_count = excluded.pull_count, star_count = excluded.star_count, last_updated = excluded.last_updated,
         is_official = excluded.is_official, description = excluded.description, fetched_at = excluded.fetched_at`,
    );
    this.selectRepoId = db
      .prepare('SELECT id FROM repositories WHERE registry_id = ? AND namespace = ? AND name = ?')
      .pluck();
    const select = `SELECT r.id, g.host AS registry, r.full_name, r.namespace, r.name, r.pull_count, r.star_count,
                           r.last_updated, r.is_official, r.description, r.fetched_at
                      FROM repositories r JOIN registries g ON g.id = r.registry_id`;
    this.selectRepo = db.prepare(`${select} WHERE g.host = ? AND r.namespace = ? AND r.name = ?`);
    this.selectById = db.prepare(`${select} WHERE r.id = ?`);
    // A manifest is reachable from a repository whose tag (or digest seed) pointed at it or at an index
    // listing it, at any depth of nesting (the crawler follows indexes of indexes); a layer from a
    // repository holding an image built on it. Named parameters: better-sqlite3 refuses positional values
    // for `?1`-style ones ("Too many parameter values"), which made every refused by-digest manifest fail.
    this.selectReachingManifest = db
      .prepare(
        `WITH RECURSIVE reaching (digest, depth) AS (
           SELECT @digest, 0
           UNION
           SELECT c.index_digest, r.depth + 1 FROM index_children c JOIN reaching r ON c.child_digest = r.digest
            WHERE r.depth < 8 -- a guard only: the crawler follows 4 levels (MAX_INDEX_DEPTH)
         )
         SELECT DISTINCT r.full_name FROM tag_observations t
           JOIN repositories r ON r.id = t.repository_id JOIN registries g ON g.id = r.registry_id
          WHERE g.host = @registry AND t.digest IN (SELECT digest FROM reaching)
          ORDER BY r.full_name`,
      )
      .pluck();
    // As TagStore.absentFrom's present tags: a tag's latest observation is newer than any absence of it.
    this.selectWithPresentTags = db
      .prepare(
        `SELECT r.full_name FROM repositories r JOIN registries g ON g.id = r.registry_id
          WHERE g.host = ?
            AND EXISTS (SELECT 1 FROM tag_observations t
                         WHERE t.repository_id = r.id AND t.tag <> ''
                           AND NOT EXISTS (SELECT 1 FROM tag_absences a
                                            WHERE a.repository_id = r.id AND a.tag = t.tag AND a.seen_at > t.seen_at))
          ORDER BY r.full_name`,
      )
      .pluck();
    this.selectHoldingLayer = db
      .prepare(
        `SELECT DISTINCT r.full_name FROM image_layers il
           JOIN image_observations o ON o.image_digest = il.image_digest
           JOIN repositories r ON r.id = o.repository_id JOIN registries g ON g.id = r.registry_id
          WHERE g.host = ? AND il.layer_digest = ?
          ORDER BY r.full_name`,
      )
      .pluck();
  }

  /** Repositories of `registry` known to reach manifest `digest` (directly or through an index). */
  reachingManifest(registry: string, digest: string): string[] {
    return this.selectReachingManifest.all({ registry, digest }) as string[];
  }

  /** Repositories of `registry` known to hold an image with layer `digest`. */
  holdingLayer(registry: string, digest: string): string[] {
    return this.selectHoldingLayer.all(registry, digest) as string[];
  }

  /** The id of a registry host, created on first use. */
  upsertRegistry(host: string): number {
    const cached = this.registryIds.get(host);
    if (cached !== undefined) return cached;
    const id = guardWrite(this.db, () => {
      this.insertRegistry.run(host);
      return this.selectRegistry.get(host) as number;
    });
    this.registryIds.set(host, id);
    return id;
  }

  /**
   * The id of a repository, created on first use. With `hub`, the Hub metadata is replaced by the given
   * values (a fresh API answer); without it, existing metadata is left alone.
   */
  upsertRepository(
    registry: string,
    fullName: string,
    hub?: HubMetadata,
    fetchedAt: string = nowIso(),
  ): number {
    const { namespace, name } = splitRepositoryName(fullName);
    const registryId = this.upsertRegistry(registry);
    return guardWrite(this.db, () => {
      if (hub) {
        this.upsertRepoMeta.run({
          registryId,
          namespace,
          name,
          pullCount: hub.pullCount,
          starCount: hub.starCount,
          lastUpdated: hub.lastUpdated,
          isOfficial: toInt(hub.isOfficial),
          description: hub.description,
          fetchedAt,
        });
      } else {
        this.insertRepo.run(registryId, namespace, name);
      }
      return this.selectRepoId.get(registryId, namespace, name) as number;
    });
  }

  /** A repository by registry host and full name. */
  get(registry: string, fullName: string): RepositoryRow | undefined {
    const { namespace, name } = splitRepositoryName(fullName);
    const raw = this.selectRepo.get(registry, namespace, name) as RawRepository | undefined;
    return raw && toRow(raw);
  }

  /**
   * The full names of `registry`'s repositories that have a tag the dataset holds as present (observed,
   * and not recorded absent since), by name.
   */
  withPresentTags(registry: string): string[] {
    return this.selectWithPresentTags.all(registry) as string[];
  }

  /** A repository by id. */
  getById(id: number): RepositoryRow | undefined {
    const raw = this.selectById.get(id) as RawRepository | undefined;
    return raw && toRow(raw);
  }
}

function toRow(r: RawRepository): RepositoryRow {
  return {
    id: r.id,
    registry: r.registry,
    fullName: r.full_name,
    namespace: r.namespace,
    name: r.name,
    pullCount: r.pull_count,
    starCount: r.star_count,
    lastUpdated: r.last_updated,
    isOfficial: toBool(r.is_official),
    description: r.description,
    fetchedAt: r.fetched_at,
  };
}
