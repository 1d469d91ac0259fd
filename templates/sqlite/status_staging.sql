{#- Staged rows and the commit ts of the oldest (first landed) one. -#}
SELECT (SELECT count(*) FROM {{ t.staging | ident }}),
       (SELECT _tm_commit_ts FROM {{ t.staging | ident }} ORDER BY _tm_seq LIMIT 1)
