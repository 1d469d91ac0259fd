{#- A table stopped because the warehouse refused to land its records ($1) goes on once they land again. -#}
UPDATE _tidemark_tables SET stopped = NULL, stopped_ts = NULL WHERE name = $1 AND stopped LIKE 'landing refused:%'
