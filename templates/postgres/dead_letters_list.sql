{#- The newest dead letters, of table $1 (all when NULL; '' for records no table took), at
    most $2. -#}
SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS created_at, table_name, topic, kafka_partition,
       kafka_offset, error, kafka_key, kafka_value
FROM _tidemark_dead_letters
WHERE $1::text IS NULL OR coalesce(table_name, '') = $1
ORDER BY id DESC
LIMIT $2
