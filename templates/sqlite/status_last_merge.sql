SELECT finished_at, status, staged_rows, inserted, updated, deleted,
       CAST(round((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER) AS duration_ms, error, newest_commit_ms
FROM _tidemark_merges WHERE table_name = ?1 ORDER BY id DESC LIMIT 1
