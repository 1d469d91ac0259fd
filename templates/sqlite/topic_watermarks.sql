{#- Every partition of topic ?1 that has landed something: its watermark and since when (UTC). -#}
SELECT kafka_partition, watermark, substr(watermark_at, 1, 19) AS watermark_at FROM _tidemark_offsets WHERE topic = ?1
ORDER BY kafka_partition
