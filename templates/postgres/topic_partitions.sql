{#- Topic $1 has $2 partitions (the brokers' metadata): a consistent point is the minimum
    watermark over all of them. -#}
INSERT INTO _tidemark_topics (topic, partitions) VALUES ($1, $2)
ON CONFLICT (topic) DO UPDATE SET partitions = excluded.partitions
