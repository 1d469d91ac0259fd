{#- The highest staged row this merge will consume (its commit ts at or below the consistent point
    $1), and the upstream commit times of the oldest and the newest change it consumes; whether its staged rows may leave unchanged columns out. -#}
SELECT (SELECT max(_tm_seq) FROM {{ t.staging | ident }} WHERE _tm_commit_ts <= $1) AS watermark,
       (SELECT _tm_commit_ms FROM {{ t.staging | ident }} WHERE _tm_commit_ts <= $1 ORDER BY _tm_seq LIMIT 1) AS oldest_commit_ms,
       (SELECT max(_tm_commit_ms) FROM {{ t.staging | ident }} WHERE _tm_commit_ts <= $1) AS newest_commit_ms,
       COALESCE((SELECT n.partial_rows FROM _tidemark_stream_notes AS n WHERE n.name = {{ t.name | lit }}), false) AS partial_rows
