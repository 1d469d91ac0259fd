-- tidemark: table item (snowflake)

-- Replica: same columns and key as upstream.
CREATE TABLE IF NOT EXISTS "ITEM" (
    "I_ID" NUMBER(38,0) NOT NULL,
    "I_IM_ID" NUMBER(38,0),
    "I_NAME" VARCHAR(24),
    "I_PRICE" NUMBER(5,2),
    "I_DATA" VARCHAR(50),
    PRIMARY KEY ("I_ID")
);

-- The raw table the Snowflake Kafka connector appends topic `tidb_tpcc_item` to (its own shape).
CREATE TABLE IF NOT EXISTS "TIDB_TPCC_ITEM" (
    RECORD_METADATA VARIANT,
    RECORD_CONTENT VARIANT
);

-- Per Kafka partition, the last record merged (for records without a commit ts).
CREATE TABLE IF NOT EXISTS "ITEM_TIDEMARK_POSITIONS" (
    TOPIC VARCHAR NOT NULL,
    KAFKA_PARTITION NUMBER(38,0) NOT NULL,
    LAST_OFFSET NUMBER(38,0) NOT NULL,
    LAST_ORDER NUMBER(38,0) NOT NULL,
    PRIMARY KEY (TOPIC, KAFKA_PARTITION)
);

-- What the connector appended since the last run. Run this script before the connector
-- starts writing the topic: rows landed before the stream exists are not in it.
CREATE STREAM IF NOT EXISTS "ITEM_TIDEMARK_STREAM" ON TABLE "TIDB_TPCC_ITEM" APPEND_ONLY = TRUE;

-- The task: the MERGE, the partition positions and the raw-row cleanup, in one transaction,
-- on the table's schedule.
-- Safe cleanup: inside one explicit transaction every statement reads the same stream rows
-- (a stream is repeatable-read within a transaction, and an append-only stream keeps
-- showing rows deleted meanwhile), and only those raw rows are deleted; rows the connector
-- lands meanwhile stay for the next run. The stream's offset moves past exactly what was
-- merged when the transaction commits; a failed run rolls back and leaves it where it was.
CREATE OR REPLACE TASK "ITEM_TIDEMARK_MERGE"
    USER_TASK_MANAGED_INITIAL_WAREHOUSE_SIZE = 'XSMALL'
    SCHEDULE = 'USING CRON * * * * * UTC'
    WHEN SYSTEM$STREAM_HAS_DATA('"ITEM_TIDEMARK_STREAM"')
AS
EXECUTE IMMEDIATE $$
BEGIN
    BEGIN TRANSACTION;
MERGE INTO "ITEM" AS t
USING (
    SELECT
        s.RECORD_METADATA['key']['i_id']::NUMBER(38,0) AS "I_ID",
        s.RECORD_CONTENT['i_im_id']::NUMBER(38,0) AS "I_IM_ID",
        s.RECORD_CONTENT['i_name']::VARCHAR AS "I_NAME",
        TO_DECIMAL(s.RECORD_CONTENT['i_price']::VARCHAR, 5, 2) AS "I_PRICE",
        s.RECORD_CONTENT['i_data']::VARCHAR AS "I_DATA",
        s._TIDEMARK_IS_DELETE
    FROM (
        SELECT r.*,
               (r.RECORD_CONTENT IS NULL OR IS_NULL_VALUE(r.RECORD_CONTENT)
                OR (IS_OBJECT(r.RECORD_CONTENT) AND ARRAY_SIZE(OBJECT_KEYS(r.RECORD_CONTENT)) = 0)) AS _TIDEMARK_IS_DELETE,
               r.RECORD_METADATA['topic']::VARCHAR AS _TIDEMARK_TOPIC,
               r.RECORD_METADATA['partition']::NUMBER(38,0) AS _TIDEMARK_PARTITION,
               r.RECORD_METADATA['offset']::NUMBER(38,0) AS _TIDEMARK_OFFSET,
               COALESCE(
                   NULLIF(r.RECORD_CONTENT['_tidb_commit_ts']::NUMBER(38,0), 0),
                   LAST_VALUE(NULLIF(r.RECORD_CONTENT['_tidb_commit_ts']::NUMBER(38,0), 0)) IGNORE NULLS OVER (
                       PARTITION BY r.RECORD_METADATA['topic'], r.RECORD_METADATA['partition']
                       ORDER BY r.RECORD_METADATA['offset']::NUMBER(38,0)
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                   IFF(p.LAST_OFFSET < r.RECORD_METADATA['offset']::NUMBER(38,0), p.LAST_ORDER, NULL),
                   0) AS _TIDEMARK_ORDER
        FROM "ITEM_TIDEMARK_STREAM" AS r
        LEFT JOIN "ITEM_TIDEMARK_POSITIONS" AS p
          ON p.TOPIC = r.RECORD_METADATA['topic']::VARCHAR
         AND p.KAFKA_PARTITION = r.RECORD_METADATA['partition']::NUMBER(38,0)
    ) AS s
    QUALIFY ROW_NUMBER() OVER (
        PARTITION BY s.RECORD_METADATA['key']['i_id']::NUMBER(38,0)
        ORDER BY s._TIDEMARK_ORDER DESC, s._TIDEMARK_TOPIC DESC, s._TIDEMARK_PARTITION DESC, s._TIDEMARK_OFFSET DESC) = 1
) AS s
ON t."I_ID" = s."I_ID"
WHEN MATCHED AND s._TIDEMARK_IS_DELETE THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET "I_IM_ID" = s."I_IM_ID",
               "I_NAME" = s."I_NAME",
               "I_PRICE" = s."I_PRICE",
               "I_DATA" = s."I_DATA"
WHEN NOT MATCHED AND NOT s._TIDEMARK_IS_DELETE THEN
    INSERT ("I_ID", "I_IM_ID", "I_NAME", "I_PRICE", "I_DATA")
    VALUES (s."I_ID", s."I_IM_ID", s."I_NAME", s."I_PRICE", s."I_DATA");
MERGE INTO "ITEM_TIDEMARK_POSITIONS" AS p
USING (
    SELECT s._TIDEMARK_TOPIC AS TOPIC, s._TIDEMARK_PARTITION AS KAFKA_PARTITION,
           s._TIDEMARK_OFFSET AS LAST_OFFSET, s._TIDEMARK_ORDER AS LAST_ORDER
    FROM (
        SELECT r.*,
               (r.RECORD_CONTENT IS NULL OR IS_NULL_VALUE(r.RECORD_CONTENT)
                OR (IS_OBJECT(r.RECORD_CONTENT) AND ARRAY_SIZE(OBJECT_KEYS(r.RECORD_CONTENT)) = 0)) AS _TIDEMARK_IS_DELETE,
               r.RECORD_METADATA['topic']::VARCHAR AS _TIDEMARK_TOPIC,
               r.RECORD_METADATA['partition']::NUMBER(38,0) AS _TIDEMARK_PARTITION,
               r.RECORD_METADATA['offset']::NUMBER(38,0) AS _TIDEMARK_OFFSET,
               COALESCE(
                   NULLIF(r.RECORD_CONTENT['_tidb_commit_ts']::NUMBER(38,0), 0),
                   LAST_VALUE(NULLIF(r.RECORD_CONTENT['_tidb_commit_ts']::NUMBER(38,0), 0)) IGNORE NULLS OVER (
                       PARTITION BY r.RECORD_METADATA['topic'], r.RECORD_METADATA['partition']
                       ORDER BY r.RECORD_METADATA['offset']::NUMBER(38,0)
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                   IFF(p.LAST_OFFSET < r.RECORD_METADATA['offset']::NUMBER(38,0), p.LAST_ORDER, NULL),
                   0) AS _TIDEMARK_ORDER
        FROM "ITEM_TIDEMARK_STREAM" AS r
        LEFT JOIN "ITEM_TIDEMARK_POSITIONS" AS p
          ON p.TOPIC = r.RECORD_METADATA['topic']::VARCHAR
         AND p.KAFKA_PARTITION = r.RECORD_METADATA['partition']::NUMBER(38,0)
    ) AS s
    QUALIFY ROW_NUMBER() OVER (PARTITION BY s._TIDEMARK_TOPIC, s._TIDEMARK_PARTITION ORDER BY s._TIDEMARK_OFFSET DESC) = 1
) AS s
ON p.TOPIC = s.TOPIC AND p.KAFKA_PARTITION = s.KAFKA_PARTITION
WHEN MATCHED AND s.LAST_OFFSET > p.LAST_OFFSET THEN
    UPDATE SET LAST_OFFSET = s.LAST_OFFSET, LAST_ORDER = s.LAST_ORDER
WHEN NOT MATCHED THEN
    INSERT (TOPIC, KAFKA_PARTITION, LAST_OFFSET, LAST_ORDER)
    VALUES (s.TOPIC, s.KAFKA_PARTITION, s.LAST_OFFSET, s.LAST_ORDER);
DELETE FROM "TIDB_TPCC_ITEM" AS r
USING (
    SELECT DISTINCT RECORD_METADATA['topic']::VARCHAR AS topic,
           RECORD_METADATA['partition']::NUMBER(38,0) AS kafka_partition,
           RECORD_METADATA['offset']::NUMBER(38,0) AS kafka_offset
    FROM "ITEM_TIDEMARK_STREAM"
) AS c
WHERE r.RECORD_METADATA['topic']::VARCHAR = c.topic
  AND r.RECORD_METADATA['partition']::NUMBER(38,0) = c.kafka_partition
  AND r.RECORD_METADATA['offset']::NUMBER(38,0) = c.kafka_offset;
    COMMIT;
EXCEPTION
    WHEN OTHER THEN
        ROLLBACK;
        RAISE;
END;
$$;

-- Tasks are created suspended.
ALTER TASK "ITEM_TIDEMARK_MERGE" RESUME;
