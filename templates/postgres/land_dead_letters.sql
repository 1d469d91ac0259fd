INSERT INTO _tidemark_dead_letters (table_name, topic, kafka_partition, kafka_offset, kafka_key, kafka_value, error)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::bytea[], $6::bytea[], $7::text[])
