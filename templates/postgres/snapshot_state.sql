{#- The snapshot of table $1 as recorded (none: never snapshotted). -#}
SELECT name, source, generation, order_key, cap, point, last_key, rows_landed, chunks,
       to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS started_at,
       to_char(done_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS done_at
FROM _tidemark_snapshots WHERE name = $1
