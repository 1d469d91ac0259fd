{#- Remove exactly the staged rows this merge consumed (up to the watermark $1 and the
    consistent point $2, re-sends below the last point included), in the same transaction. -#}
DELETE FROM {{ t.staging | ident }} WHERE _tm_seq <= $1 AND _tm_commit_ts <= $2
