-- hubcrawl dataset, schema version 7. Forward-only: never edit this file once landed; add 0008_*.sql.

-- A hardlink whose data was not recorded (its target is a lower layer's file, which unpacking links to,
-- or data this layer stored under a name that was not a candidate) is a layer_files row with size 0 and
-- NULL hashes. Matching counted it as a new file at its path, replacing lower layers' evidence there
-- (in_final_fs = 0), yet its bytes may be that very evidence: a link from liblzma.so.5.6.1 to a lower
-- layer's backdoored copy kept the backdoor and hid its finding. `link_target` is the normalized path
-- such a link names; a row with it does not replace what was at its path (docs/schema.md, "Hardlinks"),
-- its ancestors still count as directories. NULL on every other row, and on rows written before this
-- migration, which keep the old reading (a replacement) until their layer is analyzed again.
ALTER TABLE layer_files ADD COLUMN link_target TEXT;
