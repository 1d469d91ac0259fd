INSERT INTO _tidemark_offsets (topic, kafka_partition, next_offset, last_commit_ts)
VALUES {% for i in range(rows) %}(?, ?, ?, ?){% if not loop.last %}, {% endif %}{% endfor %}
ON CONFLICT (topic, kafka_partition) DO UPDATE
SET next_offset = excluded.next_offset, last_commit_ts = excluded.last_commit_ts, updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
