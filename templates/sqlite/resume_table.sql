UPDATE _tidemark_tables SET stopped = NULL WHERE name = ?1
