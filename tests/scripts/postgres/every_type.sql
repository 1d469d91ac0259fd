-- tidemark: table every_type (postgres)

-- Staging: raw change records, appended by landing (COPY / multi-row INSERT).
CREATE TABLE IF NOT EXISTS "_tidemark_stage_every_type" (
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
CREATE TABLE IF NOT EXISTS "every_type" (
    "id" numeric(20,0) NOT NULL,
    "code" varchar(16) NOT NULL,
    "ti" smallint,
    "si" integer,
    "mi" integer,
    "i" integer,
    "iu" bigint,
    "bi" bigint,
    "d" numeric(10,4),
    "dbig" numeric(40,10),
    "dmax" numeric(65,30),
    "f" real,
    "db" double precision,
    "bt" bytea,
    "c" varchar(4),
    "vc" varchar(300),
    "tx" text,
    "bn" bytea,
    "vb" bytea,
    "bl" bytea,
    "dt" date,
    "dtm" timestamp(6),
    "ts" timestamptz(3),
    "tm" interval,
    "y" smallint,
    "e" text,
    "st" text,
    "j" jsonb,
    PRIMARY KEY ("id", "code")
);

-- One merge, in one transaction. The consistent point bounds it: the minimum watermark over
-- the topic's partitions, or the largest bigint for a stream without watermarks. Below, $1
-- is the watermark the first SELECT returns; the merge source's $2 and $3 are the last
-- point merged (the smallest bigint when none) and the point; the cleanup's $2 is the point.
BEGIN ISOLATION LEVEL REPEATABLE READ;

SELECT (SELECT max(_tm_seq) FROM "_tidemark_stage_every_type" WHERE _tm_commit_ts <= $1) AS watermark,
       (SELECT _tm_commit_ms FROM "_tidemark_stage_every_type" WHERE _tm_commit_ts <= $1 ORDER BY _tm_seq LIMIT 1) AS oldest_commit_ms,
       (SELECT max(_tm_commit_ms) FROM "_tidemark_stage_every_type" WHERE _tm_commit_ts <= $1) AS newest_commit_ms,
       COALESCE((SELECT n.partial_rows FROM _tidemark_stream_notes AS n WHERE n.name = 'every_type'), false) AS partial_rows;

CREATE TEMP TABLE _tm_src ON COMMIT DROP AS
SELECT DISTINCT ON ((s._tm_key ->> 'id')::numeric(20,0), (s._tm_key ->> 'code'))
    s._tm_op AS _tidemark_op,
    (s._tm_key ->> 'id')::numeric(20,0) AS "id",
    (s._tm_key ->> 'code') AS "code",
    (s._tm_row ->> 'ti')::smallint AS "ti",
    (s._tm_row ->> 'si')::integer AS "si",
    (s._tm_row ->> 'mi')::integer AS "mi",
    (s._tm_row ->> 'i')::integer AS "i",
    (s._tm_row ->> 'iu')::bigint AS "iu",
    (s._tm_row ->> 'bi')::bigint AS "bi",
    (s._tm_row ->> 'd')::numeric(10,4) AS "d",
    (s._tm_row ->> 'dbig')::numeric(40,10) AS "dbig",
    (s._tm_row ->> 'dmax')::numeric(65,30) AS "dmax",
    (s._tm_row ->> 'f')::real AS "f",
    (s._tm_row ->> 'db')::double precision AS "db",
    decode((s._tm_row ->> 'bt'), 'hex') AS "bt",
    (s._tm_row ->> 'c') AS "c",
    (s._tm_row ->> 'vc') AS "vc",
    (s._tm_row ->> 'tx') AS "tx",
    decode((s._tm_row ->> 'bn'), 'hex') AS "bn",
    decode((s._tm_row ->> 'vb'), 'hex') AS "vb",
    decode((s._tm_row ->> 'bl'), 'hex') AS "bl",
    (s._tm_row ->> 'dt')::date AS "dt",
    (s._tm_row ->> 'dtm')::timestamp(6) AS "dtm",
    ((s._tm_row ->> 'ts')::timestamp AT TIME ZONE 'UTC') AS "ts",
    (s._tm_row ->> 'tm')::interval AS "tm",
    (s._tm_row ->> 'y')::smallint AS "y",
    (s._tm_row ->> 'e') AS "e",
    (s._tm_row ->> 'st') AS "st",
    (s._tm_row ->> 'j')::jsonb AS "j"
FROM "_tidemark_stage_every_type" AS s
WHERE s._tm_seq <= $1 AND s._tm_commit_ts > $2 AND s._tm_commit_ts <= $3
ORDER BY (s._tm_key ->> 'id')::numeric(20,0), (s._tm_key ->> 'code'), s._tm_commit_ts DESC NULLS LAST, s._tm_topic DESC, s._tm_partition DESC, s._tm_offset DESC, s._tm_sub DESC;

-- The replica's insert/update/delete counters before the apply ...
SELECT n_tup_ins, n_tup_upd, n_tup_del
FROM pg_stat_xact_user_tables
WHERE relid = '"every_type"'::regclass;

MERGE INTO "every_type" AS t
USING _tm_src AS s
ON t."id" = s."id" AND t."code" = s."code"
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET "ti" = s."ti",
               "si" = s."si",
               "mi" = s."mi",
               "i" = s."i",
               "iu" = s."iu",
               "bi" = s."bi",
               "d" = s."d",
               "dbig" = s."dbig",
               "dmax" = s."dmax",
               "f" = s."f",
               "db" = s."db",
               "bt" = s."bt",
               "c" = s."c",
               "vc" = s."vc",
               "tx" = s."tx",
               "bn" = s."bn",
               "vb" = s."vb",
               "bl" = s."bl",
               "dt" = s."dt",
               "dtm" = s."dtm",
               "ts" = s."ts",
               "tm" = s."tm",
               "y" = s."y",
               "e" = s."e",
               "st" = s."st",
               "j" = s."j"
WHEN NOT MATCHED AND s._tidemark_op <> 'd' THEN
    INSERT ("id", "code", "ti", "si", "mi", "i", "iu", "bi", "d", "dbig", "dmax", "f", "db", "bt", "c", "vc", "tx", "bn", "vb", "bl", "dt", "dtm", "ts", "tm", "y", "e", "st", "j")
    VALUES (s."id", s."code", s."ti", s."si", s."mi", s."i", s."iu", s."bi", s."d", s."dbig", s."dmax", s."f", s."db", s."bt", s."c", s."vc", s."tx", s."bn", s."vb", s."bl", s."dt", s."dtm", s."ts", s."tm", s."y", s."e", s."st", s."j");

-- ... and after: the differences are the rows inserted, updated, deleted.
SELECT n_tup_ins, n_tup_upd, n_tup_del
FROM pg_stat_xact_user_tables
WHERE relid = '"every_type"'::regclass;

-- Its row count is the number of staged rows consumed.
DELETE FROM "_tidemark_stage_every_type" WHERE _tm_seq <= $1 AND _tm_commit_ts <= $2;

DROP TABLE IF EXISTS pg_temp._tm_src;

-- The run is recorded in _tidemark_merges in the same transaction.
COMMIT;
