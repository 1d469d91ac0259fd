{#- A new snapshot of table $1 from upstream table $2 begins (a new generation): merges apply
    changes up to $3 only until it is done; its rows are ordered at $4 (for now). -#}
INSERT INTO _tidemark_snapshots (name, source, generation, order_key, cap)
VALUES ($1, $2, 1, $4, $3)
ON CONFLICT (name) DO UPDATE SET
    source = excluded.source, generation = _tidemark_snapshots.generation + 1,
    order_key = excluded.order_key, cap = excluded.cap, point = NULL, last_key = NULL,
    rows_landed = 0, chunks = 0, started_at = now(), updated_at = now(), done_at = NULL
