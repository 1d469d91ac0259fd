{#- `tidemark bench`'s landing limit: the staged rows into an identical table, one statement. -#}
INSERT INTO bench_copy (_tm_topic, _tm_partition, _tm_offset, _tm_sub, _tm_commit_ts, _tm_commit_ms, _tm_op, _tm_key, _tm_row)
SELECT _tm_topic, _tm_partition, _tm_offset, _tm_sub, _tm_commit_ts, _tm_commit_ms, _tm_op, _tm_key, _tm_row
FROM {{ t.staging | ident }}
