{#- Whether tidemark's metadata tables exist at all: commands that only look check first. -#}
SELECT count(*) > 0 AS present FROM sqlite_master WHERE type = 'table' AND name = '_tidemark_migrations'
