{#- Lock (creating where new) the offset rows of every partition in a landing batch and read
    them: a record below next_offset has landed already. Concurrent landers of the same
    partition (a rebalance, a second instance) queue here: rows are taken in (topic, partition)
    order, so that two landers of overlapping partitions can never wait for each other in a
    cycle. -#}
INSERT INTO _tidemark_offsets AS o (topic, kafka_partition, next_offset)
SELECT u.topic, u.kafka_partition, 0 FROM UNNEST($1::text[], $2::integer[]) AS u (topic, kafka_partition)
ORDER BY u.topic, u.kafka_partition
ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = o.next_offset
RETURNING o.topic, o.kafka_partition, o.next_offset, o.last_commit_ts, o.watermark
