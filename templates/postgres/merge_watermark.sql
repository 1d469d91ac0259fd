{#- The highest staged row this merge will consume, and the commit ts of the oldest. -#}
SELECT (SELECT max(_tm_seq) FROM {{ t.staging | ident }}),
       (SELECT _tm_commit_ts FROM {{ t.staging | ident }} ORDER BY _tm_seq LIMIT 1)
