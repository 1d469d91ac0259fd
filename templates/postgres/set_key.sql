UPDATE _tidemark_tables SET key_columns = $2::jsonb WHERE name = $1 AND key_columns IS NULL
