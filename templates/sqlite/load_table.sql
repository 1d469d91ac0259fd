{#- A table's recorded key, why its merges are stopped (if they are) and its state's version. -#}
SELECT t.key_columns AS key_columns, t.stopped, t.version, t.topic, t.merged_point, t.stopped_ts,
    COALESCE(n.resent, 0) AS resent, n.ordering_warning
FROM _tidemark_tables AS t LEFT JOIN _tidemark_stream_notes AS n ON n.name = t.name
WHERE t.name = ?1
