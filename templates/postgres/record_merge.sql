INSERT INTO _tidemark_merges
    (table_name, started_at, finished_at, status, staged_rows, inserted, updated, deleted, watermark, oldest_commit_ms, error, newest_commit_ms, point)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
