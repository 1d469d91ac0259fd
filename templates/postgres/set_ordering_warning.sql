{#- Why table $1's stream cannot be ordered exactly (the first reason is kept). -#}
INSERT INTO _tidemark_stream_notes (name, ordering_warning) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET ordering_warning = COALESCE(_tidemark_stream_notes.ordering_warning, excluded.ordering_warning)
