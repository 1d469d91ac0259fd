UPDATE _tidemark_offsets AS o
SET next_offset = u.next_offset, last_commit_ts = u.last_commit_ts, updated_at = now()
FROM UNNEST($1::text[], $2::integer[], $3::bigint[], $4::bigint[]) AS u (topic, kafka_partition, next_offset, last_commit_ts)
WHERE o.topic = u.topic AND o.kafka_partition = u.kafka_partition
