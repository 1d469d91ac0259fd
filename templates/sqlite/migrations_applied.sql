{#- The metadata versions applied (sqlx records them in _tidemark_migrations). -#}
SELECT version FROM _tidemark_migrations WHERE success
