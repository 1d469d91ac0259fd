SELECT topic, kafka_partition, next_offset FROM _tidemark_offsets
