{#- Table ?1 stages rows that leave unchanged columns out (kept once set). -#}
INSERT INTO _tidemark_stream_notes (name, partial_rows) VALUES (?1, 1)
ON CONFLICT (name) DO UPDATE SET partial_rows = 1
