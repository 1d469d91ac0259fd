{#- The snapshot of table ?1 as recorded (none: never snapshotted). -#}
SELECT name, source, generation, order_key, cap, point, last_key, rows_landed, chunks,
       substr(started_at, 1, 19) AS started_at, substr(done_at, 1, 19) AS done_at
FROM _tidemark_snapshots WHERE name = ?1
