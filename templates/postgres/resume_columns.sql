{#- `tidemark resume`: accept the types seen upstream. -#}
UPDATE _tidemark_columns SET source_type = pending_type, pending_type = NULL WHERE table_name = $1 AND pending_type IS NOT NULL
