{#- `tidemark bench`: the staged rows, in the columns and binary form landing COPYs them. -#}
COPY (SELECT _tm_topic, _tm_partition, _tm_offset, _tm_sub, _tm_commit_ts, _tm_commit_ms, _tm_op, _tm_key, _tm_row
      FROM {{ t.staging | ident }}) TO STDOUT (FORMAT binary)
