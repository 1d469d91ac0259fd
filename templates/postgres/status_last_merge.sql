SELECT to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS finished_at, status,
       staged_rows, inserted, updated, deleted,
       (extract(epoch FROM finished_at - started_at) * 1000)::bigint AS duration_ms, error, newest_commit_ms
FROM _tidemark_merges WHERE table_name = $1 ORDER BY id DESC LIMIT 1
