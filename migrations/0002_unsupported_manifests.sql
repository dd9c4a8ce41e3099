-- hubcrawl dataset, schema version 2. Forward-only: never edit this file once landed; add 0003_*.sql.

-- Manifests whose GET showed content hubcrawl does not read (today: Docker schema1), keyed by digest.
-- A digest names the same bytes everywhere, so the verdict holds in every registry and every run: a
-- manifest GET is a counted pull on Docker Hub, and this row is what stops later runs paying it again.
-- Written only when the bytes the digest names say so themselves (a schema1 body, checked against the
-- digest), never on a Content-Type alone, which a registry could get wrong for a usable manifest.
-- `media_type` is the schema1 type it was served as; `run_id` is the run that paid the GET.
CREATE TABLE unsupported_manifests (
  digest     TEXT PRIMARY KEY,
  media_type TEXT NOT NULL,
  fetched_at TEXT NOT NULL,
  run_id     INTEGER REFERENCES crawl_runs (id)
) STRICT;
