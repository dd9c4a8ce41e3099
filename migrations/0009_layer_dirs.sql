-- hubcrawl dataset, schema version 9. Forward-only: never edit this file once landed; add 0010_*.sql.

-- Every directory entry of a layer's archive (analyzer version 7): where it landed, once each, the root
-- left out. A directory entry replaces what a lower layer left at its path unless that is a directory: a
-- file there is gone, and so is a symlink, so that the members below it land in the new directory and not
-- through the link (`tar -c` of a tree writes `lib/` before `lib/x`, and over a merged-/usr base's
-- `lib -> usr/lib` the layer's `lib/x` is then at /lib/x). Matching reads this table to know which lower
-- symlinks still stand (src/analyzer/iocs/lower-links.ts). Layers analyzed before version 7 have no rows
-- here, and matching treats their directory entries as unknown, not as absent.
-- `late` = 1: the archive listed the entry after a member below it, which went through whatever was at the
-- path then (a lower symlink, say), or the analyzer could not tell (a directory more than 32 deep, a layer
-- with more than 2^18 folders, a hash collision: src/analyzer/dir-order.ts); matching then does not take
-- the layer's paths for exact. The on-time entries come first in `seq`, then the late ones.
CREATE TABLE layer_dirs (
  layer_digest TEXT NOT NULL REFERENCES layers (digest) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  path         TEXT NOT NULL,
  late         INTEGER NOT NULL CHECK (late IN (0, 1)),
  PRIMARY KEY (layer_digest, seq)
) STRICT;
