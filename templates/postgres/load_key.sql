SELECT key_columns::text, stopped FROM _tidemark_tables WHERE name = $1
