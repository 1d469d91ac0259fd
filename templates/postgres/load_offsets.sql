SELECT topic, kafka_partition, next_offset, last_commit_ts FROM _tidemark_offsets
