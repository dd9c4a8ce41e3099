-- hubcrawl dataset, schema version 6. Forward-only: never edit this file once landed; add 0007_*.sql.

-- Tags move and get deleted, but the views reported every tag ever seen on an image as if it still
-- named it: a scheduled study published `repo:latest` as backdoored after `latest` had moved to a clean
-- image. History stays (tag_observations is still true and still reported); what is new is whether the
-- tag still points at the image as of the latest crawl that looked at the tag.
--
-- A later observation of the tag pointing elsewhere proves it moved. A deletion is proved only by a
-- listing of the repository's tags that was complete (not cut short: listing-cuts.ts) and lacked the tag,
-- confirmed by a manifest HEAD on the tag that answered 404 (an offset-paged listing can skip a tag
-- re-pushed meanwhile), which this table records, dated when the listing started: "in run R, a complete
-- listing of repository X did not hold tag T, and the registry said it has none". The filters (--tags,
-- --max-tags, --pushed-after/--pushed-before) act after the listing, so a tag they leave out was listed
-- and is not absent; and a run that did not list the repository at all (a seed naming a tag, a listing
-- cut short) proves nothing. Written for the tags the dataset had observed whose latest state was
-- present, so a tag that stays deleted adds no row per run. Append-only, like tag_observations.
CREATE TABLE tag_absences (
  id            INTEGER PRIMARY KEY,
  repository_id INTEGER NOT NULL REFERENCES repositories (id),
  tag           TEXT NOT NULL CHECK (tag <> ''),
  seen_at       TEXT NOT NULL,
  run_id        INTEGER NOT NULL REFERENCES crawl_runs (id),
  UNIQUE (run_id, repository_id, tag)
) STRICT;
CREATE INDEX tag_absences_repo_tag ON tag_absences (repository_id, tag);

-- One row per (repository, tag) ever observed with a tag: its state as of the latest crawl that looked
-- at it. `digest` is what the latest observation pointed at, NULL when a complete listing after it lacked
-- the tag (deleted); `last_seen` is that observation's time and `gone_at` the listing's (NULL when not
-- gone). Later wins by time; an observation and a listing at the same instant count the tag as present.
-- Two observations of one tag at the same instant (one run resolving it twice as it moved) give the
-- digest of either, as SQLite takes bare columns from the row max() picked.
CREATE VIEW tag_heads AS
WITH seen AS (
  SELECT repository_id, tag, max(seen_at) AS last_seen, digest
    FROM tag_observations WHERE tag <> '' GROUP BY repository_id, tag
), gone AS (
  SELECT repository_id, tag, max(seen_at) AS gone_at FROM tag_absences GROUP BY repository_id, tag
)
SELECT s.repository_id, s.tag,
       CASE WHEN g.gone_at > s.last_seen THEN NULL ELSE s.digest END AS digest,
       s.last_seen,
       CASE WHEN g.gone_at > s.last_seen THEN g.gone_at END AS gone_at
  FROM seen s LEFT JOIN gone g ON g.repository_id = s.repository_id AND g.tag = s.tag;

-- Dependants of image_tags that gain a column; image_tags and image_observations stay 0003's.
DROP VIEW report_rows;
DROP VIEW affected_images;

-- 0003's, plus `current_tags` after `tags`: those of `tags` that still point at the image as of the
-- latest crawl that looked at them (tag_heads), sorted and comma-joined; '' when none does.
-- A (repository, tag, image) is current when the tag's latest observation reaches the image (directly or
-- through an index): image_tags.last_seen is then the tag's last_seen in tag_heads.
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
), heads AS MATERIALIZED (
  SELECT repository_id, tag, last_seen FROM tag_heads WHERE digest IS NOT NULL
), repo_tags AS (
  SELECT repository_id, image_digest,
         coalesce(group_concat(CASE WHEN tag <> '' THEN tag END, ','), '') AS tags,
         coalesce(group_concat(CASE WHEN is_current THEN tag END, ','), '') AS current_tags,
         max(last_pushed) AS last_pushed, min(first_seen) AS first_seen, max(last_seen) AS last_seen
    FROM (SELECT it.repository_id, it.image_digest, it.tag, it.last_pushed, it.first_seen, it.last_seen,
                 h.last_seen = it.last_seen AS is_current
            FROM image_tags it
            LEFT JOIN heads h ON h.repository_id = it.repository_id AND h.tag = it.tag
           ORDER BY it.repository_id, it.image_digest, it.tag)
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
       coalesce(rt.current_tags, '') AS current_tags,
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

-- 0003's, plus a last column `tag_current`: 'true' when the row's tag still points at the image as of
-- the latest crawl that looked at the tag, 'false' when a later crawl saw it point elsewhere or a later
-- complete listing of the repository lacked it; '' on a row reached by digest (tag ''), which no tag
-- names. Added last so that readers who take the CSV by position keep their columns.
CREATE VIEW report_rows AS
WITH it AS MATERIALIZED (
  SELECT * FROM image_tags
), tagged AS MATERIALIZED (
  SELECT repository_id, image_digest, max(tag <> '') AS any_tag FROM it GROUP BY repository_id, image_digest
), heads AS MATERIALIZED (
  SELECT repository_id, tag, last_seen FROM tag_heads WHERE digest IS NOT NULL
), refs AS MATERIALIZED (
  SELECT it.*,
         CASE WHEN it.tag = '' THEN NULL WHEN h.last_seen = it.last_seen THEN 1 ELSE 0 END AS is_current
    FROM it
    JOIN tagged tg ON tg.repository_id = it.repository_id AND tg.image_digest = it.image_digest
    LEFT JOIN heads h ON h.repository_id = it.repository_id AND h.tag = it.tag
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
       coalesce(t.last_seen, i.last_seen) AS last_seen,
       CASE WHEN t.is_current IS NULL THEN '' WHEN t.is_current THEN 'true' ELSE 'false' END AS tag_current
  FROM findings_final_fs f
  JOIN images i ON i.digest = f.image_digest
  LEFT JOIN refs t ON t.image_digest = f.image_digest
  LEFT JOIN repositories r ON r.id = t.repository_id
  LEFT JOIN registries reg ON reg.id = r.registry_id
 ORDER BY 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 11;
