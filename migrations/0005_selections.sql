-- hubcrawl dataset, schema version 5. Forward-only: never edit this file once landed; add 0006_*.sql.

-- What each candidate selection chose: `layers.selection` is a fingerprint (a sha256), and this is the
-- JSON it hashes (the IOC sets named, the path and size selectors of the hashed files, the signature
-- rules scanned with, and whether every file was hashed). Written when a crawl or rematch starts with
-- its selection. With it a crawl can tell that facts analyzed under one selection answer another (the
-- built-in set alone, after a crawl with the built-in set and a set of one's own) and need no new
-- download. Selections used before this migration are given back by the next crawl or rematch from
-- the runs that used them (their IOC sets in ioc_sets, compiled again: src/pipeline/selections.ts).
CREATE TABLE selections (
  fingerprint     TEXT PRIMARY KEY,
  definition_json TEXT NOT NULL
) STRICT;
