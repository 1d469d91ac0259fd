{#- A staged row the replica refuses (?1: the table, ?2: the database's error, ?3: its _tm_seq) becomes a
    dead letter: its Kafka position, its key and row image as the key and value. -#}
INSERT INTO _tidemark_dead_letters (table_name, topic, kafka_partition, kafka_offset, kafka_key, kafka_value, error)
SELECT ?1, s._tm_topic, s._tm_partition, s._tm_offset, CAST(s._tm_key AS BLOB), CAST(s._tm_row AS BLOB), ?2
FROM {{ t.staging | ident }} AS s
WHERE s._tm_seq = ?3
