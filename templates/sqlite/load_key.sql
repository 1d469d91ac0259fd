SELECT key_columns FROM _tidemark_tables WHERE name = ?1
