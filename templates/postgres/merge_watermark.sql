{#- The highest staged row this merge will consume, and the upstream commit times of the oldest
    and the newest change it consumes (it sees nothing above the watermark). -#}
SELECT (SELECT max(_tm_seq) FROM {{ t.staging | ident }}) AS watermark,
       (SELECT _tm_commit_ms FROM {{ t.staging | ident }} ORDER BY _tm_seq LIMIT 1) AS oldest_commit_ms,
       (SELECT max(_tm_commit_ms) FROM {{ t.staging | ident }}) AS newest_commit_ms
