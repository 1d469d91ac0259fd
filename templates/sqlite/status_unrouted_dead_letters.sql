{#- Dead letters no configured table took (malformed records, unknown tables). -#}
SELECT count(*) AS dead_letters FROM _tidemark_dead_letters WHERE table_name IS NULL
