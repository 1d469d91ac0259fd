SELECT key_columns::text FROM _tidemark_tables WHERE name = $1
