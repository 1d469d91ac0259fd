-- tidemark: table we\"ird \'tab`le] (postgres)

-- Staging: raw change records, appended by landing (COPY / multi-row INSERT).
CREATE TABLE IF NOT EXISTS "_tidemark_stage_we""ird 'tab`le]" (
    _tm_seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- landing order
    _tm_topic      text        NOT NULL,
    _tm_partition  integer     NOT NULL,
    _tm_offset     bigint      NOT NULL,
    _tm_sub        smallint    NOT NULL,  -- index of the change within its Kafka record
    _tm_commit_ts  bigint,                -- order key: commit TSO (LSN for PostgreSQL sources)
    _tm_commit_ms  bigint,                -- upstream commit time, epoch ms, when known
    _tm_op         char(1)     NOT NULL,  -- c | u | d
    _tm_key        jsonb       NOT NULL,  -- {"key column": "value", ...}
    _tm_row        jsonb,                 -- the row image; NULL for a delete
    _tm_landed_at  timestamptz NOT NULL DEFAULT now()
);

-- Replica: same columns and key as upstream; created on first merge.
CREATE TABLE IF NOT EXISTS "we""ird 'tab`le]" (
    "select" integer NOT NULL,
    "Mixed Case" varchar(10) NOT NULL,
    "semi;colon -- x" text,
    "naïve ""col""" numeric(5,2),
    "back\\slash" bytea,
    PRIMARY KEY ("select", "Mixed Case")
);

-- One merge, in one transaction. The consistent point bounds it: the minimum watermark over
-- the topic's partitions, or the largest bigint for a stream without watermarks. Below, $1
-- is the watermark the first SELECT returns; the merge source's $2 and $3 are the last
-- point merged (the smallest bigint when none) and the point; the cleanup's $2 is the point.
BEGIN ISOLATION LEVEL REPEATABLE READ;

SELECT (SELECT max(_tm_seq) FROM "_tidemark_stage_we""ird 'tab`le]" WHERE _tm_commit_ts <= $1) AS watermark,
       (SELECT _tm_commit_ms FROM "_tidemark_stage_we""ird 'tab`le]" WHERE _tm_commit_ts <= $1 ORDER BY _tm_seq LIMIT 1) AS oldest_commit_ms,
       (SELECT max(_tm_commit_ms) FROM "_tidemark_stage_we""ird 'tab`le]" WHERE _tm_commit_ts <= $1) AS newest_commit_ms,
       COALESCE((SELECT n.partial_rows FROM _tidemark_stream_notes AS n WHERE n.name = 'we"ird ''tab`le]'), false) AS partial_rows;

CREATE TEMP TABLE _tm_src ON COMMIT DROP AS
SELECT DISTINCT ON ((s._tm_key ->> 'select')::integer, (s._tm_key ->> 'Mixed Case'))
    s._tm_op AS _tidemark_op,
    (s._tm_key ->> 'select')::integer AS "select",
    (s._tm_key ->> 'Mixed Case') AS "Mixed Case",
    (s._tm_row ->> 'semi;colon -- x') AS "semi;colon -- x",
    (s._tm_row ->> 'naïve "col"')::numeric(5,2) AS "naïve ""col""",
    decode((s._tm_row ->> 'back\\slash'), 'hex') AS "back\\slash"
FROM "_tidemark_stage_we""ird 'tab`le]" AS s
WHERE s._tm_seq <= $1 AND s._tm_commit_ts > $2 AND s._tm_commit_ts <= $3
ORDER BY (s._tm_key ->> 'select')::integer, (s._tm_key ->> 'Mixed Case'), s._tm_commit_ts DESC NULLS LAST, s._tm_topic DESC, s._tm_partition DESC, s._tm_offset DESC, s._tm_sub DESC;

-- The replica's insert/update/delete counters before the apply ...
SELECT n_tup_ins, n_tup_upd, n_tup_del
FROM pg_stat_xact_user_tables
WHERE relid = '"we""ird ''tab`le]"'::regclass;

MERGE INTO "we""ird 'tab`le]" AS t
USING _tm_src AS s
ON t."select" = s."select" AND t."Mixed Case" = s."Mixed Case"
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET "semi;colon -- x" = s."semi;colon -- x",
               "naïve ""col""" = s."naïve ""col""",
               "back\\slash" = s."back\\slash"
WHEN NOT MATCHED AND s._tidemark_op <> 'd' THEN
    INSERT ("select", "Mixed Case", "semi;colon -- x", "naïve ""col""", "back\\slash")
    VALUES (s."select", s."Mixed Case", s."semi;colon -- x", s."naïve ""col""", s."back\\slash");

-- ... and after: the differences are the rows inserted, updated, deleted.
SELECT n_tup_ins, n_tup_upd, n_tup_del
FROM pg_stat_xact_user_tables
WHERE relid = '"we""ird ''tab`le]"'::regclass;

-- Its row count is the number of staged rows consumed.
DELETE FROM "_tidemark_stage_we""ird 'tab`le]" WHERE _tm_seq <= $1 AND _tm_commit_ts <= $2;

DROP TABLE IF EXISTS pg_temp._tm_src;

-- The run is recorded in _tidemark_merges in the same transaction.
COMMIT;
