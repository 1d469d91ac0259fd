{#- Landing on SQLite: multi-row inserts of `rows` rows each. -#}
INSERT INTO {{ t.staging | ident }} (_tm_topic, _tm_partition, _tm_offset, _tm_sub, _tm_commit_ts, _tm_commit_ms, _tm_op, _tm_key, _tm_row)
VALUES {% for i in range(rows) %}(?, ?, ?, ?, ?, ?, ?, ?, ?){% if not loop.last %}, {% endif %}{% endfor %}
