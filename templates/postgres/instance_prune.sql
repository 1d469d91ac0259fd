{#- Instances silent for a week are forgotten. -#}
DELETE FROM _tidemark_instances WHERE seen_at < now() - interval '7 days'
