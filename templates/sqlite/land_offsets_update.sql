{#- Each partition's next offset, the order key before it, and its watermark (the highest one
    landed), `rows` partitions per statement. -#}
INSERT INTO _tidemark_offsets (topic, kafka_partition, next_offset, last_commit_ts, watermark, watermark_at)
VALUES {% for i in range(rows) %}(?, ?, ?, ?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now')){% if not loop.last %}, {% endif %}{% endfor %}
ON CONFLICT (topic, kafka_partition) DO UPDATE
SET next_offset = excluded.next_offset, last_commit_ts = excluded.last_commit_ts,
    updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    watermark = excluded.watermark,
    watermark_at = CASE WHEN excluded.watermark IS NOT _tidemark_offsets.watermark THEN excluded.watermark_at
                        ELSE _tidemark_offsets.watermark_at END
