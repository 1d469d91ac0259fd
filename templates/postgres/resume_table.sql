UPDATE _tidemark_tables SET stopped = NULL, stopped_ts = NULL WHERE name = $1
