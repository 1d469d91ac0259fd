{#- Is anything staged at or below commit ts $1 (not merged up to that point yet)? -#}
SELECT EXISTS (SELECT 1 FROM {{ t.staging | ident }} WHERE _tm_commit_ts <= $1) AS staged
