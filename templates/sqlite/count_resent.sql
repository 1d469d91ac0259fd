{#- ?2 changes of table ?1 arrived below their partition's watermark: re-sends, not staged. -#}
INSERT INTO _tidemark_stream_notes (name, resent) VALUES (?1, ?2)
ON CONFLICT (name) DO UPDATE SET resent = _tidemark_stream_notes.resent + excluded.resent
