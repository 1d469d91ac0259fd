{#- An upstream DDL (1 topic, 2 commit ts, 3 query, 4 db, 5 table): recorded once, whichever
    partition carried it and however often TiCDC replays it. -#}
INSERT INTO _tidemark_ddl (topic, commit_ts, query, db, table_name) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (topic, commit_ts, query) DO NOTHING
