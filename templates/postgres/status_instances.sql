{#- The `run` processes heard from in the last day, and seconds since each was last heard. -#}
SELECT instance, host, pid, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS started_at, state,
       extract(epoch FROM now() - seen_at)::float8 AS seen_s_ago
FROM _tidemark_instances
WHERE seen_at > now() - interval '1 day'
ORDER BY started_at
