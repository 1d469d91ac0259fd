{#- Instances silent for a week are forgotten. -#}
DELETE FROM _tidemark_instances WHERE julianday(seen_at) < julianday('now') - 7
