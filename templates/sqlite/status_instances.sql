{#- The `run` processes heard from in the last day, and seconds since each was last heard. -#}
SELECT instance, host, pid, substr(started_at, 1, 19), state,
       (julianday('now') - julianday(seen_at)) * 86400.0
FROM _tidemark_instances
WHERE julianday(seen_at) > julianday('now') - 1
ORDER BY started_at
