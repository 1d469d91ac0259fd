{#- Landing on PostgreSQL: one binary COPY per table and batch. -#}
COPY {{ t.staging | ident }} (_tm_topic, _tm_partition, _tm_offset, _tm_sub, _tm_commit_ts, _tm_commit_ms, _tm_op, _tm_key, _tm_row)
FROM STDIN (FORMAT binary)
