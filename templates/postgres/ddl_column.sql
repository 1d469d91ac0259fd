{#- A column as the table's source_ddl declares it: the DDL's type is authoritative. -#}
INSERT INTO _tidemark_columns (table_name, name, ordinal, source_type)
VALUES ($1, $2, (SELECT count(*) FROM _tidemark_columns WHERE table_name = $1), $3)
ON CONFLICT (table_name, name) DO UPDATE SET source_type = excluded.source_type
