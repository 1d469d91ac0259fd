{#- Each partition's next offset, the order key before it, and its watermark (the highest one
    landed: a watermark that goes backwards, as TiCDC can replay them, never lowers it). -#}
UPDATE _tidemark_offsets AS o
SET next_offset = u.next_offset, last_commit_ts = u.last_commit_ts, updated_at = now(),
    watermark = u.watermark,
    watermark_at = CASE WHEN u.watermark IS DISTINCT FROM o.watermark THEN now() ELSE o.watermark_at END
FROM UNNEST($1::text[], $2::integer[], $3::bigint[], $4::bigint[], $5::bigint[])
     AS u (topic, kafka_partition, next_offset, last_commit_ts, watermark)
WHERE o.topic = u.topic AND o.kafka_partition = u.kafka_partition
