-- hubcrawl dataset, schema version 10. Forward-only: never edit this file once landed; add 0011_*.sql.

-- The date an image's config says it was built (`created` in the OCI and Docker image config), so a study
-- can ask whether an image was built while the XZ backdoor was live. It is the builder's claim, not a fact:
-- reproducible builds write 1970-01-01 or SOURCE_DATE_EPOCH, and anyone can write any date; it is for
-- display and selection, never evidence. Stored normalized to the dataset's timestamp form (UTC,
-- milliseconds, `2024-03-01T10:00:00.000Z`), not as written, so that it sorts and compares as text like
-- every other timestamp here: as written, an offset (`+02:00`) or a different count of fractional digits
-- puts dates out of order (normalizeCreated in src/crawler/registry/image-config.ts).
-- NULL when the config has no `created`, or one that is no RFC 3339 date-time, and for every image stored
-- before this migration, whose config later crawls do not fetch again to fill it (a new image's config is
-- always read, src/pipeline/handlers/manifest.ts).
-- No view selects images.* (0001, 0003 and 0006 name their columns), so none needs restating.
ALTER TABLE images ADD COLUMN created TEXT;
