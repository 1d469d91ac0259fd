{#- The `run` processes heard from in the last day, and seconds since each was last heard. -#}
SELECT instance, host, pid, substr(started_at, 1, 19) AS started_at, state,
       (julianday('now') - julianday(seen_at)) * 86400.0 AS seen_s_ago
FROM _tidemark_instances
WHERE julianday(seen_at) > julianday('now') - 1
ORDER BY started_at
