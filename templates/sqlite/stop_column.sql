{#- An incompatible type upstream: keep it aside until `tidemark resume` accepts it. -#}
UPDATE _tidemark_columns SET pending_type = ?3 WHERE table_name = ?1 AND name = ?2 AND source_type <> ?3
