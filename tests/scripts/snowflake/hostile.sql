-- tidemark: table we\"ird \'tab`le] (snowflake)

-- Replica: same columns and key as upstream.
CREATE TABLE IF NOT EXISTS "we""ird 'tab`le]" (
    "SELECT" NUMBER(38,0) NOT NULL,
    "Mixed Case" VARCHAR(10) NOT NULL,
    "semi;colon -- x" VARCHAR,
    "naïve ""col""" NUMBER(5,2),
    "back\\slash" BINARY,
    PRIMARY KEY ("SELECT", "Mixed Case")
);

-- The raw table the Snowflake Kafka connector appends topic `tidb_tpcc_hostile` to (its own shape).
CREATE TABLE IF NOT EXISTS "TIDB_TPCC_HOSTILE" (
    RECORD_METADATA VARIANT,
    RECORD_CONTENT VARIANT
);

-- Per Kafka partition, the last record merged (for records without a commit ts).
CREATE TABLE IF NOT EXISTS "we""ird 'tab`le]_tidemark_positions" (
    TOPIC VARCHAR NOT NULL,
    KAFKA_PARTITION NUMBER(38,0) NOT NULL,
    LAST_OFFSET NUMBER(38,0) NOT NULL,
    LAST_ORDER NUMBER(38,0) NOT NULL,
    PRIMARY KEY (TOPIC, KAFKA_PARTITION)
);

-- What the connector appended since the last run. Run this script before the connector
-- starts writing the topic: rows landed before the stream exists are not in it.
CREATE STREAM IF NOT EXISTS "we""ird 'tab`le]_tidemark_stream" ON TABLE "TIDB_TPCC_HOSTILE" APPEND_ONLY = TRUE;

-- The task: the MERGE, the partition positions and the raw-row cleanup, in one transaction,
-- on the table's schedule.
-- Safe cleanup: inside one explicit transaction every statement reads the same stream rows
-- (a stream is repeatable-read within a transaction, and an append-only stream keeps
-- showing rows deleted meanwhile), and only those raw rows are deleted; rows the connector
-- lands meanwhile stay for the next run. The stream's offset moves past exactly what was
-- merged when the transaction commits; a failed run rolls back and leaves it where it was.
CREATE OR REPLACE TASK "we""ird 'tab`le]_tidemark_merge"
    USER_TASK_MANAGED_INITIAL_WAREHOUSE_SIZE = 'XSMALL'
    SCHEDULE = 'USING CRON * * * * * UTC'
    WHEN SYSTEM$STREAM_HAS_DATA('"we""ird ''tab`le]_tidemark_stream"')
AS
EXECUTE IMMEDIATE $$
BEGIN
    BEGIN TRANSACTION;
MERGE INTO "we""ird 'tab`le]" AS t
USING (
    SELECT
        s.RECORD_METADATA['key']['select']::NUMBER(38,0) AS "SELECT",
        s.RECORD_METADATA['key']['Mixed Case']::VARCHAR AS "Mixed Case",
        s.RECORD_CONTENT['semi;colon -- x']::VARCHAR AS "semi;colon -- x",
        TO_DECIMAL(s.RECORD_CONTENT['naïve "col"']::VARCHAR, 5, 2) AS "naïve ""col""",
        TO_BINARY(REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(HEX_ENCODE(s.RECORD_CONTENT['back\\\\slash']::VARCHAR), '(..)', '\\1 '), 'C2 ([89AB].) ', '\\1 '), 'C3 8(.) ', 'c\\1 '), 'C3 9(.) ', 'd\\1 '), 'C3 A(.) ', 'e\\1 '), 'C3 B(.) ', 'f\\1 '), ' ', ''), 'HEX') AS "back\\slash",
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
        FROM "we""ird 'tab`le]_tidemark_stream" AS r
        LEFT JOIN "we""ird 'tab`le]_tidemark_positions" AS p
          ON p.TOPIC = r.RECORD_METADATA['topic']::VARCHAR
         AND p.KAFKA_PARTITION = r.RECORD_METADATA['partition']::NUMBER(38,0)
    ) AS s
    QUALIFY ROW_NUMBER() OVER (
        PARTITION BY s.RECORD_METADATA['key']['select']::NUMBER(38,0), s.RECORD_METADATA['key']['Mixed Case']::VARCHAR
        ORDER BY s._TIDEMARK_ORDER DESC, s._TIDEMARK_TOPIC DESC, s._TIDEMARK_PARTITION DESC, s._TIDEMARK_OFFSET DESC) = 1
) AS s
ON t."SELECT" = s."SELECT" AND t."Mixed Case" = s."Mixed Case"
WHEN MATCHED AND s._TIDEMARK_IS_DELETE THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET "semi;colon -- x" = s."semi;colon -- x",
               "naïve ""col""" = s."naïve ""col""",
               "back\\slash" = s."back\\slash"
WHEN NOT MATCHED AND NOT s._TIDEMARK_IS_DELETE THEN
    INSERT ("SELECT", "Mixed Case", "semi;colon -- x", "naïve ""col""", "back\\slash")
    VALUES (s."SELECT", s."Mixed Case", s."semi;colon -- x", s."naïve ""col""", s."back\\slash");
MERGE INTO "we""ird 'tab`le]_tidemark_positions" AS p
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
        FROM "we""ird 'tab`le]_tidemark_stream" AS r
        LEFT JOIN "we""ird 'tab`le]_tidemark_positions" AS p
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
DELETE FROM "TIDB_TPCC_HOSTILE" AS r
USING (
    SELECT DISTINCT RECORD_METADATA['topic']::VARCHAR AS topic,
           RECORD_METADATA['partition']::NUMBER(38,0) AS kafka_partition,
           RECORD_METADATA['offset']::NUMBER(38,0) AS kafka_offset
    FROM "we""ird 'tab`le]_tidemark_stream"
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
ALTER TASK "we""ird 'tab`le]_tidemark_merge" RESUME;
