-- hubcrawl dataset, schema version 4. Forward-only: never edit this file once landed; add 0005_*.sql.

-- A byte-signature hit now keeps the pattern that found it: `hex` (normalized: lowercase, `??` for
-- wildcards, no spaces) and `elf_only` (1 or 0). Matching joins hits to rules by set and rule id, so
-- before this a rule edited to another pattern (a new set version, then `rematch`) still took over the
-- old pattern's hits: a finding for bytes the new rule never looked for. A hit now counts for a rule only
-- when the rule's pattern is the one that found it (and, for an elfOnly rule, it was found in an ELF).
-- Rows from before this migration keep NULL in both columns and count for any pattern of their rule id,
-- as before; `hubcrawl crawl` re-analyzes a layer whose stored selection does not cover the current rules.
ALTER TABLE layer_signature_hits ADD COLUMN hex TEXT;
ALTER TABLE layer_signature_hits ADD COLUMN elf_only INTEGER CHECK (elf_only IN (0, 1));
