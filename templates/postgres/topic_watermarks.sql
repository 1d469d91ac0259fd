{#- Every partition of topic $1 that has landed something: its watermark and since when (UTC). -#}
SELECT kafka_partition, watermark, to_char(watermark_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS watermark_at FROM _tidemark_offsets WHERE topic = $1
ORDER BY kafka_partition
