-- hubcrawl dataset, schema version 3. Forward-only: never edit this file once landed; add 0004_*.sql.

-- An image with a layer whose analysis failed used to get no findings at all, so a backdoored base layer
-- went unreported whenever an upper layer was corrupt or over a limit. Such images are now matched from
-- their analyzed layers (src/db/rematch.ts), the failed layer taken to remove nothing. Whether evidence
-- below a failed layer survives is then not known: that layer may delete or replace it. The views below
-- say so instead of `findings.in_final_fs`, which records only what the analyzed layers show. Computed
-- here, not stored, so it follows `layers.status`: failed means no facts (0001, table `layers`).
--
-- Also: image_observations follows nested indexes (tag → index → index → image), and report_rows no
-- longer runs a quadratic join in Debian's sqlite3; both explained where they are defined.

-- Every findings column, with in_final_fs 1 (survives), 0 (an analyzed layer above removes or replaces
-- it) or NULL (unknown: no analyzed layer above removes it, but a layer above it failed analysis).
CREATE VIEW findings_final_fs AS
SELECT f.id, f.image_digest, f.platform, f.ioc_set_id, f.ioc_set_version, f.rule_id, f.evidence_kind, f.path,
       f.value, f.layer_digest, f.layer_position,
       CASE WHEN f.in_final_fs = 0 THEN 0 WHEN ft.position > f.layer_position THEN NULL ELSE 1 END AS in_final_fs,
       f.run_id
  FROM findings f
  -- From the few failed layers to their images (CROSS JOIN keeps that order), not from every image layer.
  LEFT JOIN (SELECT il.image_digest, max(il.position) AS position
               FROM layers l CROSS JOIN image_layers il ON il.layer_digest = l.digest
              WHERE l.status = 'failed'
              GROUP BY il.image_digest) ft ON ft.image_digest = f.image_digest;

-- Dependants first, then recreated bottom-up: SQLite cannot alter a view.
DROP VIEW report_rows;
DROP VIEW affected_images;
DROP VIEW image_tags;
DROP VIEW image_observations;

-- 0001 followed one index level only, but the crawler follows indexes of indexes (MAX_INDEX_DEPTH, 4):
-- an image below a nested index had findings but no repository or tag in any view, nor a line in `scan`.
-- Same columns as 0001; index_digest stays the digest the tag pointed at (the top index). The direct
-- and one-level arms are 0001's; `nested` walks down only from index entries that are indexes
-- themselves, so a dataset without nesting (Docker Hub serves one level) pays one lookup per entry.
-- UNION, not UNION ALL: an index listing one child many times would multiply the rows at every level.
CREATE VIEW image_observations AS
WITH RECURSIVE nested (index_digest, child_digest, depth) AS (
  SELECT index_digest, child_digest, 1 FROM index_children
   WHERE child_digest IN (SELECT index_digest FROM index_children)
  UNION
  SELECT n.index_digest, c.child_digest, n.depth + 1
    FROM nested n JOIN index_children c ON c.index_digest = n.child_digest
   -- A guard against a cycle or an endless chain in a hostile dataset: the crawler stores 4 levels at most.
   WHERE n.depth < 8
)
SELECT t.repository_id, t.tag, t.digest AS observed_digest, i.digest AS image_digest, NULL AS index_digest,
       t.pushed_at, t.seen_at, t.run_id
  FROM tag_observations t JOIN images i ON i.digest = t.digest
UNION ALL
SELECT t.repository_id, t.tag, t.digest, i.digest, c.index_digest, t.pushed_at, t.seen_at, t.run_id
  FROM tag_observations t
  JOIN index_children c ON c.index_digest = t.digest
  JOIN images i ON i.digest = c.child_digest
UNION ALL
SELECT t.repository_id, t.tag, t.digest, i.digest, n.index_digest, t.pushed_at, t.seen_at, t.run_id
  FROM nested n
  JOIN tag_observations t ON t.digest = n.index_digest
  JOIN images i ON i.digest = n.child_digest
 WHERE n.depth > 1;

-- 0001's, unchanged: dropped above only because it reads image_observations.
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

-- report_rows also drops a quadratic join of 0001: it matched every tag row against the images' tagged
-- rows with a LEFT JOIN that SQLite 3.40 (Debian bookworm's sqlite3) runs without an index, 25 s for
-- 20 000 images against 0.3 s now. `tagged` is now one row per (repository, image), joined on both keys.

-- One row per affected image × repository × IOC rule (an image in no observed repository still has a
-- row, with NULL registry and repository). tags: every tag ever seen on it, sorted and comma-joined.
-- in_final_fs is 1 when any evidence survives in the final filesystem, NULL when none is known to survive
-- and some sits below a layer that failed analysis, 0 when all of it is hidden.
CREATE VIEW affected_images AS
WITH per_rule AS (
  SELECT image_digest, platform, ioc_set_id, ioc_set_version, rule_id,
         group_concat(evidence_kind, ',') AS evidence_kinds, sum(n) AS evidence_count,
         CASE WHEN max(fin) = 1 THEN 1 WHEN sum(unknown) > 0 THEN NULL ELSE 0 END AS in_final_fs
    FROM (SELECT image_digest, platform, ioc_set_id, ioc_set_version, rule_id, evidence_kind,
                 count(*) AS n, max(in_final_fs) AS fin, sum(in_final_fs IS NULL) AS unknown
            FROM findings_final_fs
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
-- ioc_set is `<id>@<version>`; in_final_fs is 'true'/'false'/'unknown'; NULLs become ''.
CREATE VIEW report_rows AS
WITH it AS MATERIALIZED (
  SELECT * FROM image_tags
), tagged AS MATERIALIZED (
  SELECT repository_id, image_digest, max(tag <> '') AS any_tag FROM it GROUP BY repository_id, image_digest
), refs AS MATERIALIZED (
  SELECT it.* FROM it
    JOIN tagged tg ON tg.repository_id = it.repository_id AND tg.image_digest = it.image_digest
   WHERE it.tag <> '' OR NOT tg.any_tag
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
       CASE WHEN f.in_final_fs IS NULL THEN 'unknown' WHEN f.in_final_fs THEN 'true' ELSE 'false' END AS in_final_fs,
       coalesce(t.last_pushed, '') AS last_pushed,
       coalesce(r.pull_count, '') AS pull_count,
       coalesce(t.first_seen, i.first_seen) AS first_seen,
       coalesce(t.last_seen, i.last_seen) AS last_seen
  FROM findings_final_fs f
  JOIN images i ON i.digest = f.image_digest
  LEFT JOIN refs t ON t.image_digest = f.image_digest
  LEFT JOIN repositories r ON r.id = t.repository_id
  LEFT JOIN registries reg ON reg.id = r.registry_id
 ORDER BY 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 11;

