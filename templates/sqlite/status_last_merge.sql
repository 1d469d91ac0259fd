SELECT finished_at, status, staged_rows, inserted, updated, deleted,
       CAST(round((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER), error
FROM _tidemark_merges WHERE table_name = ?1 ORDER BY id DESC LIMIT 1
