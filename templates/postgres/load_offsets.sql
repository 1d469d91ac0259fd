SELECT topic, kafka_partition, next_offset, last_commit_ts, watermark FROM _tidemark_offsets
