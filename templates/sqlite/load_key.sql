SELECT key_columns, stopped FROM _tidemark_tables WHERE name = ?1
