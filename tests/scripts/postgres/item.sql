-- tidemark: table item (postgres)

-- Staging: raw change records, appended by landing (COPY / multi-row INSERT).
CREATE TABLE IF NOT EXISTS "_tidemark_stage_item" (
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
CREATE TABLE IF NOT EXISTS "item" (
    "i_id" integer NOT NULL,
    "i_im_id" integer,
    "i_name" varchar(24),
    "i_price" numeric(5,2),
    "i_data" varchar(50),
    PRIMARY KEY ("i_id")
);

-- One merge, in one transaction. The consistent point bounds it: the minimum watermark over
-- the topic's partitions, or the largest bigint for a stream without watermarks. Below, $1
-- is the watermark the first SELECT returns; the merge source's $2 and $3 are the last
-- point merged (the smallest bigint when none) and the point; the cleanup's $2 is the point.
BEGIN ISOLATION LEVEL REPEATABLE READ;

SELECT (SELECT max(_tm_seq) FROM "_tidemark_stage_item" WHERE _tm_commit_ts <= $1) AS watermark,
       (SELECT _tm_commit_ms FROM "_tidemark_stage_item" WHERE _tm_commit_ts <= $1 ORDER BY _tm_seq LIMIT 1) AS oldest_commit_ms,
       (SELECT max(_tm_commit_ms) FROM "_tidemark_stage_item" WHERE _tm_commit_ts <= $1) AS newest_commit_ms,
       COALESCE((SELECT n.partial_rows FROM _tidemark_stream_notes AS n WHERE n.name = 'item'), false) AS partial_rows;

CREATE TEMP TABLE _tm_src ON COMMIT DROP AS
SELECT DISTINCT ON ((s._tm_key ->> 'i_id')::integer)
    s._tm_op AS _tidemark_op,
    (s._tm_key ->> 'i_id')::integer AS "i_id",
    (s._tm_row ->> 'i_im_id')::integer AS "i_im_id",
    (s._tm_row ->> 'i_name') AS "i_name",
    (s._tm_row ->> 'i_price')::numeric(5,2) AS "i_price",
    (s._tm_row ->> 'i_data') AS "i_data"
FROM "_tidemark_stage_item" AS s
WHERE s._tm_seq <= $1 AND s._tm_commit_ts > $2 AND s._tm_commit_ts <= $3
ORDER BY (s._tm_key ->> 'i_id')::integer, s._tm_commit_ts DESC NULLS LAST, s._tm_topic DESC, s._tm_partition DESC, s._tm_offset DESC, s._tm_sub DESC;

-- The replica's insert/update/delete counters before the apply ...
SELECT n_tup_ins, n_tup_upd, n_tup_del
FROM pg_stat_xact_user_tables
WHERE relid = '"item"'::regclass;

MERGE INTO "item" AS t
USING _tm_src AS s
ON t."i_id" = s."i_id"
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET "i_im_id" = s."i_im_id",
               "i_name" = s."i_name",
               "i_price" = s."i_price",
               "i_data" = s."i_data"
WHEN NOT MATCHED AND s._tidemark_op <> 'd' THEN
    INSERT ("i_id", "i_im_id", "i_name", "i_price", "i_data")
    VALUES (s."i_id", s."i_im_id", s."i_name", s."i_price", s."i_data");

-- ... and after: the differences are the rows inserted, updated, deleted.
SELECT n_tup_ins, n_tup_upd, n_tup_del
FROM pg_stat_xact_user_tables
WHERE relid = '"item"'::regclass;

-- Its row count is the number of staged rows consumed.
DELETE FROM "_tidemark_stage_item" WHERE _tm_seq <= $1 AND _tm_commit_ts <= $2;

DROP TABLE IF EXISTS pg_temp._tm_src;

-- The run is recorded in _tidemark_merges in the same transaction.
COMMIT;
