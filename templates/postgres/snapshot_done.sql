{#- Snapshot generation $2 of table $1 has landed every row: merges apply everything again. -#}
UPDATE _tidemark_snapshots SET cap = NULL, done_at = now(), updated_at = now() WHERE name = $1 AND generation = $2
