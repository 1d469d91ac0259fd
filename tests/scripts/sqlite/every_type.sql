-- tidemark: table every_type (sqlite)

-- Staging: raw change records, appended by landing (COPY / multi-row INSERT).
CREATE TABLE IF NOT EXISTS "_tidemark_stage_every_type" (
    _tm_seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- landing order
    _tm_topic      TEXT    NOT NULL,
    _tm_partition  INTEGER NOT NULL,
    _tm_offset     INTEGER NOT NULL,
    _tm_sub        INTEGER NOT NULL,  -- index of the change within its Kafka record
    _tm_commit_ts  INTEGER,           -- order key: commit TSO (LSN for PostgreSQL sources)
    _tm_commit_ms  INTEGER,           -- upstream commit time, epoch ms, when known
    _tm_op         TEXT    NOT NULL,  -- c | u | d
    _tm_key        TEXT    NOT NULL,  -- JSON: {"key column": "value", ...}
    _tm_row        TEXT,              -- JSON row image; NULL for a delete
    _tm_landed_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

-- Replica: same columns and key as upstream; created on first merge.
CREATE TABLE IF NOT EXISTS "every_type" (
    "id" TEXT NOT NULL,
    "code" TEXT NOT NULL,
    "ti" INTEGER,
    "si" INTEGER,
    "mi" INTEGER,
    "i" INTEGER,
    "iu" INTEGER,
    "bi" INTEGER,
    "d" TEXT,
    "dbig" TEXT,
    "dmax" TEXT,
    "f" REAL,
    "db" REAL,
    "bt" BLOB,
    "c" TEXT,
    "vc" TEXT,
    "tx" TEXT,
    "bn" BLOB,
    "vb" BLOB,
    "bl" BLOB,
    "dt" TEXT,
    "dtm" TEXT,
    "ts" TEXT,
    "tm" TEXT,
    "y" INTEGER,
    "e" TEXT,
    "st" TEXT,
    "j" TEXT,
    PRIMARY KEY ("id", "code")
);

-- One merge, in one transaction. The consistent point bounds it: the minimum watermark over
-- the topic's partitions, or the largest bigint for a stream without watermarks. Below, ?1
-- is the watermark the first SELECT returns; the merge source's ?2 and ?3 are the last
-- point merged (the smallest bigint when none) and the point; the cleanup's ?2 is the point.
BEGIN IMMEDIATE;

SELECT (SELECT max(_tm_seq) FROM "_tidemark_stage_every_type" WHERE _tm_commit_ts <= ?1) AS watermark,
       (SELECT _tm_commit_ms FROM "_tidemark_stage_every_type" WHERE _tm_commit_ts <= ?1 ORDER BY _tm_seq LIMIT 1) AS oldest_commit_ms,
       (SELECT max(_tm_commit_ms) FROM "_tidemark_stage_every_type" WHERE _tm_commit_ts <= ?1) AS newest_commit_ms,
       COALESCE((SELECT n.partial_rows FROM _tidemark_stream_notes AS n WHERE n.name = 'every_type'), 0) AS partial_rows;

DROP TABLE IF EXISTS temp._tm_src;

CREATE TEMP TABLE _tm_src AS
SELECT s._tm_op AS _tidemark_op,
       json_extract(s._tm_key, '$."id"') AS "id",
       json_extract(s._tm_key, '$."code"') AS "code",
       CAST(json_extract(s._tm_row, '$."ti"') AS INTEGER) AS "ti",
       CAST(json_extract(s._tm_row, '$."si"') AS INTEGER) AS "si",
       CAST(json_extract(s._tm_row, '$."mi"') AS INTEGER) AS "mi",
       CAST(json_extract(s._tm_row, '$."i"') AS INTEGER) AS "i",
       CAST(json_extract(s._tm_row, '$."iu"') AS INTEGER) AS "iu",
       CAST(json_extract(s._tm_row, '$."bi"') AS INTEGER) AS "bi",
       json_extract(s._tm_row, '$."d"') AS "d",
       json_extract(s._tm_row, '$."dbig"') AS "dbig",
       json_extract(s._tm_row, '$."dmax"') AS "dmax",
       tidemark_real(json_extract(s._tm_row, '$."f"'), 32) AS "f",
       tidemark_real(json_extract(s._tm_row, '$."db"'), 64) AS "db",
       unhex(json_extract(s._tm_row, '$."bt"')) AS "bt",
       json_extract(s._tm_row, '$."c"') AS "c",
       json_extract(s._tm_row, '$."vc"') AS "vc",
       json_extract(s._tm_row, '$."tx"') AS "tx",
       unhex(json_extract(s._tm_row, '$."bn"')) AS "bn",
       unhex(json_extract(s._tm_row, '$."vb"')) AS "vb",
       unhex(json_extract(s._tm_row, '$."bl"')) AS "bl",
       json_extract(s._tm_row, '$."dt"') AS "dt",
       json_extract(s._tm_row, '$."dtm"') AS "dtm",
       json_extract(s._tm_row, '$."ts"') AS "ts",
       json_extract(s._tm_row, '$."tm"') AS "tm",
       CAST(json_extract(s._tm_row, '$."y"') AS INTEGER) AS "y",
       json_extract(s._tm_row, '$."e"') AS "e",
       json_extract(s._tm_row, '$."st"') AS "st",
       json_extract(s._tm_row, '$."j"') AS "j"
FROM (
    SELECT st.*, row_number() OVER (
        PARTITION BY st._tm_key
        ORDER BY st._tm_commit_ts DESC NULLS LAST, st._tm_topic DESC, st._tm_partition DESC, st._tm_offset DESC, st._tm_sub DESC
    ) AS _tm_rank
    FROM "_tidemark_stage_every_type" AS st
    WHERE st._tm_seq <= ?1 AND st._tm_commit_ts > ?2 AND st._tm_commit_ts <= ?3
) AS s
WHERE s._tm_rank = 1;

-- Its row count is the number of rows deleted.
DELETE FROM "every_type"
WHERE ("id", "code") IN (SELECT "id", "code" FROM temp._tm_src WHERE _tidemark_op = 'd');

-- Its row count is the number of rows updated.
UPDATE "every_type" AS t
SET "ti" = s."ti",
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
FROM temp._tm_src AS s
WHERE t."id" = s."id" AND t."code" = s."code" AND s._tidemark_op <> 'd';

-- Its row count is the number of rows inserted.
INSERT INTO "every_type" ("id", "code", "ti", "si", "mi", "i", "iu", "bi", "d", "dbig", "dmax", "f", "db", "bt", "c", "vc", "tx", "bn", "vb", "bl", "dt", "dtm", "ts", "tm", "y", "e", "st", "j")
SELECT s."id", s."code", s."ti", s."si", s."mi", s."i", s."iu", s."bi", s."d", s."dbig", s."dmax", s."f", s."db", s."bt", s."c", s."vc", s."tx", s."bn", s."vb", s."bl", s."dt", s."dtm", s."ts", s."tm", s."y", s."e", s."st", s."j"
FROM temp._tm_src AS s
WHERE s._tidemark_op <> 'd'
  AND NOT EXISTS (SELECT 1 FROM "every_type" AS t WHERE t."id" = s."id" AND t."code" = s."code");

-- Its row count is the number of staged rows consumed.
DELETE FROM "_tidemark_stage_every_type" WHERE _tm_seq <= ?1 AND _tm_commit_ts <= ?2;

DROP TABLE IF EXISTS temp._tm_src;

-- The run is recorded in _tidemark_merges in the same transaction.
COMMIT;
