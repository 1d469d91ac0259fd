SELECT name, source_type, applied_type, pending_type, since_ts FROM _tidemark_columns WHERE table_name = ?1 ORDER BY ordinal
