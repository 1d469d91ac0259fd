UPDATE _tidemark_tables SET stopped = $2 WHERE name = $1 AND stopped IS NULL
