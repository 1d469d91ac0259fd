{#- Dead letters no configured table took (malformed records, unknown tables). -#}
SELECT count(*) FROM _tidemark_dead_letters WHERE table_name IS NULL
