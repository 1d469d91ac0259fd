{#- Record a column the stream showed for the first time (1: table, 2: name, 3: type). -#}
INSERT INTO _tidemark_columns (table_name, name, ordinal, source_type, since_ts)
VALUES (?1, ?2, (SELECT count(*) FROM _tidemark_columns WHERE table_name = ?1), ?3, ?4)
ON CONFLICT (table_name, name) DO NOTHING
