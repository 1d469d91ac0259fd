{#- Exactly the raw rows the MERGE read: the stream's rows, which inside one explicit
    transaction are the same for both statements (a stream is repeatable-read within a
    transaction). Rows the connector lands meanwhile are not in the stream's snapshot, so they
    are neither merged nor deleted here: the next run takes them. Not a TRUNCATE. -#}
DELETE FROM {{ raw | ident }} AS r
USING (
    SELECT DISTINCT RECORD_METADATA['topic']::VARCHAR AS topic,
           RECORD_METADATA['partition']::NUMBER(38,0) AS kafka_partition,
           RECORD_METADATA['offset']::NUMBER(38,0) AS kafka_offset
    FROM {{ stream | ident }}
) AS c
WHERE r.RECORD_METADATA['topic']::VARCHAR = c.topic
  AND r.RECORD_METADATA['partition']::NUMBER(38,0) = c.kafka_partition
  AND r.RECORD_METADATA['offset']::NUMBER(38,0) = c.kafka_offset
