-- hubcrawl dataset, schema version 8. Forward-only: never edit this file once landed; add 0009_*.sql.

-- Every symlink a layer leaves (analyzer version 6): where it landed and its target as the archive wrote
-- it. A member of an upper layer written through a lower layer's symlink (`lib/x/liblzma.so.5.6.1` over
-- `lib -> usr/lib`) lands at the link's target; its tar name is not where the image holds it. Matching
-- resolves every layer's paths through the symlinks the layers below it leave (src/analyzer/iocs/
-- lower-links.ts), so a later `.wh.lib`, or the same link written again, no longer seems to remove a file
-- that is in fact under /usr/lib. Layers analyzed before version 6 have no rows here: matching knows of no
-- symlink in them, as before, until a crawl analyzes them again.
CREATE TABLE layer_symlinks (
  layer_digest TEXT NOT NULL REFERENCES layers (digest) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  path         TEXT NOT NULL,
  target       TEXT NOT NULL,
  PRIMARY KEY (layer_digest, seq)
) STRICT;
