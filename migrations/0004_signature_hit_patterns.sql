-- hubcrawl dataset, schema version 4. Forward-only: never edit this file once landed; add 0005_*.sql.

-- A byte-signature hit now keeps what it answers: `hex`, the pattern that found it (normalized: lowercase,
-- `??` for wildcards, no spaces); `in_elf`, whether the file is an ELF (1 or 0); and `scanned_path`, the
-- file whose bytes were scanned (a hardlink's hits are its target's: `path` is the link's own). Matching
-- joins hits to rules by set and rule id, so before this a rule edited to another pattern or other paths
-- (a new set version, then `rematch`) still took over the old hits: a finding for bytes the new rule
-- never looked for. A hit now counts for a rule only when the rule's pattern found it, in a file the
-- rule's paths cover, and, for an elfOnly rule, in an ELF. Rows from before this migration keep NULL in
-- all three; they take their pattern from their layer's selection (migration 0005) where it is known,
-- and otherwise count for any rule of their id, as before.
ALTER TABLE layer_signature_hits ADD COLUMN hex TEXT;
ALTER TABLE layer_signature_hits ADD COLUMN in_elf INTEGER CHECK (in_elf IN (0, 1));
ALTER TABLE layer_signature_hits ADD COLUMN scanned_path TEXT;
