{#- Delta has no multi-statement transaction, so every step is safe to repeat: the rows this run
    consumes are fixed once in a table of their own; the MERGE applies the last change per key of
    that set (applying it again after a crash gives the same replica); the cleanup removes exactly
    that set. A crash anywhere leaves the set staged for the next run, never a row removed unmerged. -#}
CREATE OR REPLACE TABLE {{ ("_tidemark_batch_" ~ t.name) | ident }} AS
SELECT * FROM {{ t.staging | ident }}
