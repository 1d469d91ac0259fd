{#- A new snapshot of table ?1 from upstream table ?2 begins: see postgres/snapshot_begin.sql. -#}
INSERT INTO _tidemark_snapshots (name, source, generation, order_key, cap)
VALUES (?1, ?2, 1, ?4, ?3)
ON CONFLICT (name) DO UPDATE SET
    source = excluded.source, generation = _tidemark_snapshots.generation + 1,
    order_key = excluded.order_key, cap = excluded.cap, point = NULL, last_key = NULL,
    rows_landed = 0, chunks = 0, started_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now'), done_at = NULL
