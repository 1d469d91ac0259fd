-- tidemark: table every_type (snowflake)

-- Replica: same columns and key as upstream.
CREATE TABLE IF NOT EXISTS "EVERY_TYPE" (
    "ID" NUMBER(20,0) NOT NULL,
    "CODE" VARCHAR(16) NOT NULL,
    "TI" NUMBER(38,0),
    "SI" NUMBER(38,0),
    "MI" NUMBER(38,0),
    "I" NUMBER(38,0),
    "IU" NUMBER(38,0),
    "BI" NUMBER(38,0),
    "D" NUMBER(10,4),
    "DBIG" VARCHAR,
    "DMAX" VARCHAR,
    "F" FLOAT,
    "DB" FLOAT,
    "BT" BINARY,
    "C" VARCHAR(4),
    "VC" VARCHAR(300),
    "TX" VARCHAR,
    "BN" BINARY,
    "VB" BINARY,
    "BL" BINARY,
    "DT" DATE,
    "DTM" TIMESTAMP_NTZ(6),
    "TS" TIMESTAMP_TZ(3),
    "TM" VARCHAR,
    "Y" NUMBER(38,0),
    "E" VARCHAR,
    "ST" VARCHAR,
    "J" VARIANT,
    PRIMARY KEY ("ID", "CODE")
);

-- The raw table the Snowflake Kafka connector appends topic `tidb_tpcc_every_type` to (its own shape).
CREATE TABLE IF NOT EXISTS "TIDB_TPCC_EVERY_TYPE" (
    RECORD_METADATA VARIANT,
    RECORD_CONTENT VARIANT
);

-- Per Kafka partition, the last record merged (for records without a commit ts).
CREATE TABLE IF NOT EXISTS "EVERY_TYPE_TIDEMARK_POSITIONS" (
    TOPIC VARCHAR NOT NULL,
    KAFKA_PARTITION NUMBER(38,0) NOT NULL,
    LAST_OFFSET NUMBER(38,0) NOT NULL,
    LAST_ORDER NUMBER(38,0) NOT NULL,
    PRIMARY KEY (TOPIC, KAFKA_PARTITION)
);

-- What the connector appended since the last run. Run this script before the connector
-- starts writing the topic: rows landed before the stream exists are not in it.
CREATE STREAM IF NOT EXISTS "EVERY_TYPE_TIDEMARK_STREAM" ON TABLE "TIDB_TPCC_EVERY_TYPE" APPEND_ONLY = TRUE;

-- The task: the MERGE, the partition positions and the raw-row cleanup, in one transaction,
-- on the table's schedule.
-- Safe cleanup: inside one explicit transaction every statement reads the same stream rows
-- (a stream is repeatable-read within a transaction, and an append-only stream keeps
-- showing rows deleted meanwhile), and only those raw rows are deleted; rows the connector
-- lands meanwhile stay for the next run. The stream's offset moves past exactly what was
-- merged when the transaction commits; a failed run rolls back and leaves it where it was.
CREATE OR REPLACE TASK "EVERY_TYPE_TIDEMARK_MERGE"
    USER_TASK_MANAGED_INITIAL_WAREHOUSE_SIZE = 'XSMALL'
    SCHEDULE = 'USING CRON * * * * * UTC'
    WHEN SYSTEM$STREAM_HAS_DATA('"EVERY_TYPE_TIDEMARK_STREAM"')
AS
EXECUTE IMMEDIATE $$
BEGIN
    BEGIN TRANSACTION;
MERGE INTO "EVERY_TYPE" AS t
USING (
    SELECT
        IFF(s.RECORD_METADATA['key']['id']::NUMBER(38,0) < 0, s.RECORD_METADATA['key']['id']::NUMBER(38,0) + 18446744073709551616, s.RECORD_METADATA['key']['id']::NUMBER(38,0))::NUMBER(20,0) AS "ID",
        s.RECORD_METADATA['key']['code']::VARCHAR AS "CODE",
        s.RECORD_CONTENT['ti']::NUMBER(38,0) AS "TI",
        s.RECORD_CONTENT['si']::NUMBER(38,0) AS "SI",
        s.RECORD_CONTENT['mi']::NUMBER(38,0) AS "MI",
        s.RECORD_CONTENT['i']::NUMBER(38,0) AS "I",
        s.RECORD_CONTENT['iu']::NUMBER(38,0) AS "IU",
        s.RECORD_CONTENT['bi']::NUMBER(38,0) AS "BI",
        TO_DECIMAL(s.RECORD_CONTENT['d']::VARCHAR, 10, 4) AS "D",
        s.RECORD_CONTENT['dbig']::VARCHAR AS "DBIG",
        s.RECORD_CONTENT['dmax']::VARCHAR AS "DMAX",
        s.RECORD_CONTENT['f']::FLOAT AS "F",
        s.RECORD_CONTENT['db']::FLOAT AS "DB",
        TO_BINARY(REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(HEX_ENCODE(s.RECORD_CONTENT['bt']::VARCHAR), '(..)', '\\1 '), 'C2 ([89AB].) ', '\\1 '), 'C3 8(.) ', 'c\\1 '), 'C3 9(.) ', 'd\\1 '), 'C3 A(.) ', 'e\\1 '), 'C3 B(.) ', 'f\\1 '), ' ', ''), 'HEX') AS "BT",
        s.RECORD_CONTENT['c']::VARCHAR AS "C",
        s.RECORD_CONTENT['vc']::VARCHAR AS "VC",
        s.RECORD_CONTENT['tx']::VARCHAR AS "TX",
        TO_BINARY(REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(HEX_ENCODE(s.RECORD_CONTENT['bn']::VARCHAR), '(..)', '\\1 '), 'C2 ([89AB].) ', '\\1 '), 'C3 8(.) ', 'c\\1 '), 'C3 9(.) ', 'd\\1 '), 'C3 A(.) ', 'e\\1 '), 'C3 B(.) ', 'f\\1 '), ' ', ''), 'HEX') AS "BN",
        TO_BINARY(REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(HEX_ENCODE(s.RECORD_CONTENT['vb']::VARCHAR), '(..)', '\\1 '), 'C2 ([89AB].) ', '\\1 '), 'C3 8(.) ', 'c\\1 '), 'C3 9(.) ', 'd\\1 '), 'C3 A(.) ', 'e\\1 '), 'C3 B(.) ', 'f\\1 '), ' ', ''), 'HEX') AS "VB",
        TO_BINARY(REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(HEX_ENCODE(s.RECORD_CONTENT['bl']::VARCHAR), '(..)', '\\1 '), 'C2 ([89AB].) ', '\\1 '), 'C3 8(.) ', 'c\\1 '), 'C3 9(.) ', 'd\\1 '), 'C3 A(.) ', 'e\\1 '), 'C3 B(.) ', 'f\\1 '), ' ', ''), 'HEX') AS "BL",
        TO_DATE(s.RECORD_CONTENT['dt']::VARCHAR) AS "DT",
        TO_TIMESTAMP_NTZ(s.RECORD_CONTENT['dtm']::VARCHAR) AS "DTM",
        TO_TIMESTAMP_TZ(REPLACE(s.RECORD_CONTENT['ts']::VARCHAR, ' ', 'T') || '+08:00') AS "TS",
        s.RECORD_CONTENT['tm']::VARCHAR AS "TM",
        s.RECORD_CONTENT['y']::NUMBER(38,0) AS "Y",
        s.RECORD_CONTENT['e']::VARCHAR AS "E",
        s.RECORD_CONTENT['st']::VARCHAR AS "ST",
        PARSE_JSON(s.RECORD_CONTENT['j']::VARCHAR) AS "J",
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
        FROM "EVERY_TYPE_TIDEMARK_STREAM" AS r
        LEFT JOIN "EVERY_TYPE_TIDEMARK_POSITIONS" AS p
          ON p.TOPIC = r.RECORD_METADATA['topic']::VARCHAR
         AND p.KAFKA_PARTITION = r.RECORD_METADATA['partition']::NUMBER(38,0)
    ) AS s
    QUALIFY ROW_NUMBER() OVER (
        PARTITION BY IFF(s.RECORD_METADATA['key']['id']::NUMBER(38,0) < 0, s.RECORD_METADATA['key']['id']::NUMBER(38,0) + 18446744073709551616, s.RECORD_METADATA['key']['id']::NUMBER(38,0))::NUMBER(20,0), s.RECORD_METADATA['key']['code']::VARCHAR
        ORDER BY s._TIDEMARK_ORDER DESC, s._TIDEMARK_TOPIC DESC, s._TIDEMARK_PARTITION DESC, s._TIDEMARK_OFFSET DESC) = 1
) AS s
ON t."ID" = s."ID" AND t."CODE" = s."CODE"
WHEN MATCHED AND s._TIDEMARK_IS_DELETE THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET "TI" = s."TI",
               "SI" = s."SI",
               "MI" = s."MI",
               "I" = s."I",
               "IU" = s."IU",
               "BI" = s."BI",
               "D" = s."D",
               "DBIG" = s."DBIG",
               "DMAX" = s."DMAX",
               "F" = s."F",
               "DB" = s."DB",
               "BT" = s."BT",
               "C" = s."C",
               "VC" = s."VC",
               "TX" = s."TX",
               "BN" = s."BN",
               "VB" = s."VB",
               "BL" = s."BL",
               "DT" = s."DT",
               "DTM" = s."DTM",
               "TS" = s."TS",
               "TM" = s."TM",
               "Y" = s."Y",
               "E" = s."E",
               "ST" = s."ST",
               "J" = s."J"
WHEN NOT MATCHED AND NOT s._TIDEMARK_IS_DELETE THEN
    INSERT ("ID", "CODE", "TI", "SI", "MI", "I", "IU", "BI", "D", "DBIG", "DMAX", "F", "DB", "BT", "C", "VC", "TX", "BN", "VB", "BL", "DT", "DTM", "TS", "TM", "Y", "E", "ST", "J")
    VALUES (s."ID", s."CODE", s."TI", s."SI", s."MI", s."I", s."IU", s."BI", s."D", s."DBIG", s."DMAX", s."F", s."DB", s."BT", s."C", s."VC", s."TX", s."BN", s."VB", s."BL", s."DT", s."DTM", s."TS", s."TM", s."Y", s."E", s."ST", s."J");
MERGE INTO "EVERY_TYPE_TIDEMARK_POSITIONS" AS p
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
        FROM "EVERY_TYPE_TIDEMARK_STREAM" AS r
        LEFT JOIN "EVERY_TYPE_TIDEMARK_POSITIONS" AS p
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
DELETE FROM "TIDB_TPCC_EVERY_TYPE" AS r
USING (
    SELECT DISTINCT RECORD_METADATA['topic']::VARCHAR AS topic,
           RECORD_METADATA['partition']::NUMBER(38,0) AS kafka_partition,
           RECORD_METADATA['offset']::NUMBER(38,0) AS kafka_offset
    FROM "EVERY_TYPE_TIDEMARK_STREAM"
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
ALTER TASK "EVERY_TYPE_TIDEMARK_MERGE" RESUME;
