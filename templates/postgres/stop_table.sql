UPDATE _tidemark_tables SET stopped = $2, stopped_ts = $3 WHERE name = $1 AND stopped IS NULL
