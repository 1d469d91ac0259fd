{#- Staged rows and the upstream commit time (epoch ms) of the oldest (first landed) one. -#}
SELECT (SELECT count(*) FROM {{ t.staging | ident }}) AS staged_rows,
       (SELECT _tm_commit_ms FROM {{ t.staging | ident }} ORDER BY _tm_seq LIMIT 1) AS oldest_commit_ms
