{#- Whether tidemark's metadata tables exist at all: commands that only look check first. -#}
SELECT to_regclass('_tidemark_migrations') IS NOT NULL AS present
