-- hubcrawl dataset, schema version 1. Forward-only: never edit this file once landed; add 0002_*.sql.
-- Applied by src/db/migrate.ts inside one transaction; PRAGMA user_version records it.
-- Timestamps are ISO 8601 UTC text (`2024-03-29T12:00:00.000Z`); booleans are INTEGER 0/1.
-- Views must stay parseable by the sqlite3 shipped with Debian bookworm (3.40): no ORDER BY inside
-- aggregates, no features newer than that, or `sqlite3 data.db` users cannot open the file.

-- One `hubcrawl crawl` (or `rematch`) invocation. config_json never holds secrets: the caller strips
-- them and RunStore.start redacts token/password/secret keys again as a second line of defence.
CREATE TABLE crawl_runs (
  id               INTEGER PRIMARY KEY,
  started_at       TEXT NOT NULL,
  finished_at      TEXT,
  status           TEXT NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'completed', 'completed-with-failures', 'aborted', 'failed')),
  config_json      TEXT NOT NULL,
  tool_version     TEXT NOT NULL,
  analyzer_version TEXT NOT NULL,
  stats_json       TEXT
) STRICT;

-- Which IOC set versions a run matched with (provenance of its findings).
CREATE TABLE run_ioc_sets (
  run_id          INTEGER NOT NULL REFERENCES crawl_runs (id),
  ioc_set_id      TEXT NOT NULL,
  ioc_set_version TEXT NOT NULL,
  PRIMARY KEY (run_id, ioc_set_id)
) STRICT;

-- A registry host; Docker Hub is `docker.io` (not registry-1.docker.io) so exports read naturally.
CREATE TABLE registries (
  id   INTEGER PRIMARY KEY,
  host TEXT NOT NULL UNIQUE
) STRICT;

-- A repository. `namespace` is everything before the last `/` ('' when none); Docker Hub official
-- images live under `library`. The Hub metadata columns are NULL until the Hub API was asked.
CREATE TABLE repositories (
  id           INTEGER PRIMARY KEY,
  registry_id  INTEGER NOT NULL REFERENCES registries (id),
  namespace    TEXT NOT NULL,
  name         TEXT NOT NULL,
  full_name    TEXT GENERATED ALWAYS AS (CASE WHEN namespace = '' THEN name ELSE namespace || '/' || name END) VIRTUAL,
  pull_count   INTEGER,
  star_count   INTEGER,
  last_updated TEXT,
  is_official  INTEGER,
  description  TEXT,
  fetched_at   TEXT,
  UNIQUE (registry_id, namespace, name)
) STRICT;

-- Append-only history: "in run R, tag T of repository X pointed at digest D". Tags move; rows are never
-- updated or deleted. `digest` is what the tag points to (an index or a single image manifest).
-- tag = '' records a digest reached by digest reference (untagged, e.g. from a published list).
CREATE TABLE tag_observations (
  id            INTEGER PRIMARY KEY,
  repository_id INTEGER NOT NULL REFERENCES repositories (id),
  tag           TEXT NOT NULL,
  digest        TEXT NOT NULL,
  pushed_at     TEXT,
  seen_at       TEXT NOT NULL,
  run_id        INTEGER NOT NULL REFERENCES crawl_runs (id),
  UNIQUE (run_id, repository_id, tag, digest)
) STRICT;
CREATE INDEX tag_observations_digest ON tag_observations (digest);
CREATE INDEX tag_observations_repo_tag ON tag_observations (repository_id, tag);

-- Every manifest fetched, keyed by digest: content-addressed, so fetched once ever and never changed.
CREATE TABLE manifests (
  digest        TEXT PRIMARY KEY,
  media_type    TEXT NOT NULL,
  kind          TEXT NOT NULL CHECK (kind IN ('image', 'index')),
  size          INTEGER NOT NULL,
  raw           BLOB NOT NULL,
  config_digest TEXT,
  fetched_at    TEXT NOT NULL,
  run_id        INTEGER REFERENCES crawl_runs (id)
) STRICT;

-- The entries of an index (manifest list). No foreign keys: the Hub tags API reports children before
-- (or instead of) fetching the index, and children of unwanted platforms are never fetched.
CREATE TABLE index_children (
  index_digest   TEXT NOT NULL,
  position       INTEGER NOT NULL,
  child_digest   TEXT NOT NULL,
  media_type     TEXT,
  size           INTEGER,
  os             TEXT,
  architecture   TEXT,
  variant        TEXT,
  is_attestation INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (index_digest, position)
) STRICT;
CREATE INDEX index_children_child ON index_children (child_digest);

-- A layer blob, analyzed once per analyzer version (and candidate selection), however many images share
-- it. Invariant: layer facts rows exist iff status = 'analyzed'.
CREATE TABLE layers (
  digest            TEXT PRIMARY KEY,
  media_type        TEXT,
  compressed_size   INTEGER,
  uncompressed_size INTEGER,
  entry_count       INTEGER,
  compression       TEXT CHECK (compression IN ('gzip', 'zstd', 'none')),
  analyzer_version  TEXT,
  selection         TEXT,
  status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'analyzed', 'failed')),
  error_code        TEXT,
  error_message     TEXT,
  analyzed_at       TEXT,
  attempts          INTEGER NOT NULL DEFAULT 0
) STRICT;

-- A platform image: a manifest whose kind is 'image'. The OS facts come from its layers' facts.
CREATE TABLE images (
  digest            TEXT PRIMARY KEY REFERENCES manifests (digest),
  platform          TEXT NOT NULL,
  os                TEXT,
  architecture      TEXT,
  variant           TEXT,
  config_digest     TEXT,
  is_debian_derived INTEGER,
  os_id             TEXT,
  os_version        TEXT,
  first_seen        TEXT NOT NULL,
  last_seen         TEXT NOT NULL,
  -- Fingerprint of the IOC set versions the findings were last computed with (NULL: never matched).
  match_fingerprint TEXT,
  matched_at        TEXT
) STRICT;

-- Layer order of an image: position 0 is the base layer.
CREATE TABLE image_layers (
  image_digest TEXT NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
  position     INTEGER NOT NULL,
  layer_digest TEXT NOT NULL REFERENCES layers (digest),
  media_type   TEXT,
  size         INTEGER,
  PRIMARY KEY (image_digest, position)
) STRICT;
CREATE INDEX image_layers_layer ON image_layers (layer_digest);

-- Layer facts (src/analyzer/facts.ts). `seq` keeps the analyzer's order so facts round-trip exactly.
CREATE TABLE layer_files (
  layer_digest TEXT NOT NULL REFERENCES layers (digest) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  path         TEXT NOT NULL,
  size         INTEGER NOT NULL,
  mode         INTEGER NOT NULL,
  sha256       TEXT,
  md5          TEXT,
  PRIMARY KEY (layer_digest, seq)
) STRICT;
CREATE INDEX layer_files_sha256 ON layer_files (sha256);
CREATE INDEX layer_files_md5 ON layer_files (md5);
CREATE INDEX layer_files_path ON layer_files (path);

CREATE TABLE layer_packages (
  layer_digest TEXT NOT NULL REFERENCES layers (digest) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  name         TEXT NOT NULL,
  version      TEXT NOT NULL,
  architecture TEXT,
  source       TEXT,
  status       TEXT,
  status_file  TEXT NOT NULL,
  PRIMARY KEY (layer_digest, seq)
) STRICT;
CREATE INDEX layer_packages_name ON layer_packages (name, version);

CREATE TABLE layer_md5sums (
  layer_digest TEXT NOT NULL REFERENCES layers (digest) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  package      TEXT NOT NULL,
  info_file    TEXT NOT NULL,
  md5          TEXT NOT NULL,
  path         TEXT NOT NULL,
  PRIMARY KEY (layer_digest, seq)
) STRICT;
CREATE INDEX layer_md5sums_md5 ON layer_md5sums (md5);

CREATE TABLE layer_os_release (
  layer_digest TEXT NOT NULL REFERENCES layers (digest) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  path         TEXT NOT NULL,
  fields_json  TEXT NOT NULL,
  PRIMARY KEY (layer_digest, seq)
) STRICT;

CREATE TABLE layer_whiteouts (
  layer_digest TEXT NOT NULL REFERENCES layers (digest) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  path         TEXT NOT NULL,
  opaque       INTEGER NOT NULL,
  PRIMARY KEY (layer_digest, seq)
) STRICT;

CREATE TABLE layer_signature_hits (
  layer_digest TEXT NOT NULL REFERENCES layers (digest) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  path         TEXT NOT NULL,
  ioc_set_id   TEXT NOT NULL,
  rule_id      TEXT NOT NULL,
  "offset"     INTEGER NOT NULL,
  PRIMARY KEY (layer_digest, seq)
) STRICT;

-- IOC sets as loaded (the whole JSON, so a finding's rule can always be looked up by id and version).
CREATE TABLE ioc_sets (
  id        TEXT NOT NULL,
  version   TEXT NOT NULL,
  title     TEXT,
  json      TEXT NOT NULL,
  loaded_at TEXT NOT NULL,
  PRIMARY KEY (id, version)
) STRICT;

CREATE TABLE ioc_rules (
  ioc_set_id      TEXT NOT NULL,
  ioc_set_version TEXT NOT NULL,
  rule_id         TEXT NOT NULL,
  kind            TEXT NOT NULL,
  json            TEXT NOT NULL,
  PRIMARY KEY (ioc_set_id, ioc_set_version, rule_id),
  FOREIGN KEY (ioc_set_id, ioc_set_version) REFERENCES ioc_sets (id, version) ON DELETE CASCADE
) STRICT;

-- One piece of evidence that an IOC rule matched an image. Replaced per image on every (re)match, so the
-- table always reflects the latest IOC set versions. layer_position 0 is the base layer.
CREATE TABLE findings (
  id              INTEGER PRIMARY KEY,
  image_digest    TEXT NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
  platform        TEXT NOT NULL,
  ioc_set_id      TEXT NOT NULL,
  ioc_set_version TEXT NOT NULL,
  rule_id         TEXT NOT NULL,
  evidence_kind   TEXT NOT NULL
                  CHECK (evidence_kind IN ('file-sha256', 'file-md5', 'dpkg-version', 'dpkg-md5sums', 'byte-signature')),
  path            TEXT NOT NULL,
  value           TEXT NOT NULL,
  layer_digest    TEXT NOT NULL,
  layer_position  INTEGER NOT NULL,
  in_final_fs     INTEGER NOT NULL,
  run_id          INTEGER REFERENCES crawl_runs (id),
  UNIQUE (image_digest, ioc_set_id, rule_id, evidence_kind, path, value, layer_digest)
) STRICT;
CREATE INDEX findings_rule ON findings (ioc_set_id, rule_id);
CREATE INDEX findings_layer ON findings (layer_digest);

-- The durable work queue (src/db/frontier.ts documents the crash-safety invariants).
CREATE TABLE frontier (
  id              INTEGER PRIMARY KEY,
  kind            TEXT NOT NULL,
  key             TEXT NOT NULL,
  payload_json    TEXT NOT NULL,
  parent_id       INTEGER REFERENCES frontier (id),
  state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'in-progress', 'done', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT,
  last_error_code TEXT,
  retryable       INTEGER,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  UNIQUE (kind, key)
) STRICT;
CREATE INDEX frontier_state_kind ON frontier (state, kind, id);
CREATE INDEX frontier_parent ON frontier (parent_id);

-- Every failure of a frontier item, append-only (the frontier row keeps only the last one).
CREATE TABLE failures (
  id          INTEGER PRIMARY KEY,
  frontier_id INTEGER REFERENCES frontier (id),
  kind        TEXT NOT NULL,
  key         TEXT NOT NULL,
  run_id      INTEGER REFERENCES crawl_runs (id),
  error_code  TEXT,
  message     TEXT NOT NULL,
  retryable   INTEGER NOT NULL,
  at          TEXT NOT NULL
) STRICT;
CREATE INDEX failures_frontier ON failures (frontier_id);

-- ---------------------------------------------------------------------------------------------------
-- Views.

-- Every way an image was reached: a tag (or untagged digest, tag = '') pointing at the image itself or
-- at an index that lists it. One row per observation × route.
CREATE VIEW image_observations AS
SELECT t.repository_id, t.tag, t.digest AS observed_digest, i.digest AS image_digest, NULL AS index_digest,
       t.pushed_at, t.seen_at, t.run_id
  FROM tag_observations t JOIN images i ON i.digest = t.digest
UNION ALL
SELECT t.repository_id, t.tag, t.digest, i.digest, c.index_digest, t.pushed_at, t.seen_at, t.run_id
  FROM tag_observations t
  JOIN index_children c ON c.index_digest = t.digest
  JOIN images i ON i.digest = c.child_digest;

-- Performance note: the views below aggregate once in CTEs/subqueries and join the results (SQLite builds
-- automatic indexes for those joins) instead of running correlated subqueries over other views, which
-- re-evaluates them per row and turns quadratic past a few thousand images. Lists are made
-- deterministic by aggregating over a subquery ordered by the GROUP BY keys first, then the listed
-- value: SQLite then streams the groups in that order without re-sorting.

-- One row per (repository, tag, image): when the tag was seen pointing at the image, directly or
-- through an index (index_digests: sorted, comma-joined, '' when direct).
CREATE VIEW image_tags AS
SELECT repository_id, tag, image_digest,
       coalesce(group_concat(index_digest, ','), '') AS index_digests,
       min(first_seen) AS first_seen, max(last_seen) AS last_seen, max(last_pushed) AS last_pushed
  FROM (SELECT repository_id, tag, image_digest, index_digest,
               min(seen_at) AS first_seen, max(seen_at) AS last_seen, max(pushed_at) AS last_pushed
          FROM image_observations
         GROUP BY repository_id, tag, image_digest, index_digest
         ORDER BY repository_id, tag, image_digest, index_digest)
 GROUP BY repository_id, tag, image_digest;

-- One row per affected image × repository × IOC rule (an image in no observed repository still has a
-- row, with NULL registry and repository). tags: every tag ever seen on it, sorted and comma-joined.
-- in_final_fs is 1 when any evidence survives in the final filesystem, 0 when all of it is hidden.
CREATE VIEW affected_images AS
WITH per_rule AS (
  SELECT image_digest, platform, ioc_set_id, ioc_set_version, rule_id,
         group_concat(evidence_kind, ',') AS evidence_kinds, sum(n) AS evidence_count, max(fin) AS in_final_fs
    FROM (SELECT image_digest, platform, ioc_set_id, ioc_set_version, rule_id, evidence_kind,
                 count(*) AS n, max(in_final_fs) AS fin
            FROM findings
           GROUP BY image_digest, platform, ioc_set_id, ioc_set_version, rule_id, evidence_kind
           ORDER BY image_digest, platform, ioc_set_id, ioc_set_version, rule_id, evidence_kind)
   GROUP BY image_digest, platform, ioc_set_id, ioc_set_version, rule_id
), repo_tags AS (
  SELECT repository_id, image_digest,
         coalesce(group_concat(CASE WHEN tag <> '' THEN tag END, ','), '') AS tags,
         max(last_pushed) AS last_pushed, min(first_seen) AS first_seen, max(last_seen) AS last_seen
    FROM (SELECT repository_id, image_digest, tag, last_pushed, first_seen, last_seen
            FROM image_tags ORDER BY repository_id, image_digest, tag)
   GROUP BY repository_id, image_digest
), repo_indexes AS (
  SELECT repository_id, image_digest, group_concat(index_digest, ',') AS index_digests
    FROM (SELECT DISTINCT repository_id, image_digest, index_digest FROM image_observations
           WHERE index_digest IS NOT NULL ORDER BY repository_id, image_digest, index_digest)
   GROUP BY repository_id, image_digest
)
SELECT reg.host AS registry,
       r.full_name AS repository,
       coalesce(rt.tags, '') AS tags,
       coalesce(ri.index_digests, '') AS index_digest,
       p.image_digest AS manifest_digest,
       p.platform,
       p.ioc_set_id AS ioc_set,
       p.ioc_set_version,
       p.rule_id,
       p.evidence_kinds,
       p.evidence_count,
       p.in_final_fs,
       rt.last_pushed,
       r.pull_count,
       coalesce(rt.first_seen, i.first_seen) AS first_seen,
       coalesce(rt.last_seen, i.last_seen) AS last_seen
  FROM per_rule p
  JOIN images i ON i.digest = p.image_digest
  LEFT JOIN repo_tags rt ON rt.image_digest = p.image_digest
  LEFT JOIN repo_indexes ri ON ri.repository_id = rt.repository_id AND ri.image_digest = rt.image_digest
  LEFT JOIN repositories r ON r.id = rt.repository_id
  LEFT JOIN registries reg ON reg.id = r.registry_id;

-- The publication CSV, columns in order: one row per evidence item per (repository, tag). An image
-- reachable by several tags gives one row per tag; an image seen only by digest gives tag ''.
-- ioc_set is `<id>@<version>`; in_final_fs is 'true'/'false'; NULLs become ''.
CREATE VIEW report_rows AS
WITH it AS MATERIALIZED (
  SELECT * FROM image_tags
), tagged AS (
  SELECT DISTINCT repository_id, image_digest FROM it WHERE tag <> ''
), refs AS (
  SELECT it.* FROM it
    LEFT JOIN tagged tg ON tg.repository_id = it.repository_id AND tg.image_digest = it.image_digest
   WHERE it.tag <> '' OR tg.image_digest IS NULL
)
SELECT coalesce(reg.host, '') AS registry,
       coalesce(r.full_name, '') AS repository,
       coalesce(t.tag, '') AS tag,
       f.platform,
       f.image_digest AS manifest_digest,
       coalesce(t.index_digests, '') AS index_digest,
       f.ioc_set_id || '@' || f.ioc_set_version AS ioc_set,
       f.rule_id,
       f.evidence_kind,
       f.path,
       f.value AS evidence,
       f.layer_digest,
       CASE WHEN f.in_final_fs THEN 'true' ELSE 'false' END AS in_final_fs,
       coalesce(t.last_pushed, '') AS last_pushed,
       coalesce(r.pull_count, '') AS pull_count,
       coalesce(t.first_seen, i.first_seen) AS first_seen,
       coalesce(t.last_seen, i.last_seen) AS last_seen
  FROM findings f
  JOIN images i ON i.digest = f.image_digest
  LEFT JOIN refs t ON t.image_digest = f.image_digest
  LEFT JOIN repositories r ON r.id = t.repository_id
  LEFT JOIN registries reg ON reg.id = r.registry_id
 ORDER BY 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 11;

-- One row per layer: how many images use it and how much evidence points at it.
CREATE VIEW layer_summary AS
SELECT l.digest, l.status, l.media_type, l.compression, l.compressed_size, l.uncompressed_size, l.entry_count,
       l.analyzer_version, l.attempts, l.error_code,
       (SELECT count(DISTINCT il.image_digest) FROM image_layers il WHERE il.layer_digest = l.digest) AS image_count,
       (SELECT count(*) FROM findings f WHERE f.layer_digest = l.digest) AS finding_count
  FROM layers l;

-- One row per run with what it observed and fetched.
CREATE VIEW run_summary AS
SELECT cr.id AS run_id, cr.started_at, cr.finished_at, cr.status, cr.tool_version, cr.analyzer_version,
       (SELECT group_concat(s, ',') FROM (
          SELECT ris.ioc_set_id || '@' || ris.ioc_set_version AS s FROM run_ioc_sets ris
           WHERE ris.run_id = cr.id ORDER BY s)) AS ioc_sets,
       (SELECT count(*) FROM tag_observations t WHERE t.run_id = cr.id) AS tag_observations,
       (SELECT count(*) FROM manifests m WHERE m.run_id = cr.id) AS manifests_fetched,
       (SELECT count(*) FROM findings f WHERE f.run_id = cr.id) AS findings,
       (SELECT count(*) FROM failures fl WHERE fl.run_id = cr.id) AS failures,
       cr.stats_json
  FROM crawl_runs cr;

-- Frontier progress: item counts by kind and state.
CREATE VIEW frontier_summary AS
SELECT kind, state, count(*) AS items FROM frontier GROUP BY kind, state;
