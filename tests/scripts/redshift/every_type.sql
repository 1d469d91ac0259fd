-- tidemark: table every_type (redshift)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
CREATE TABLE IF NOT EXISTS "_tidemark_stage_every_type" (
    _tm_topic VARCHAR(255) NOT NULL,
    _tm_partition INTEGER NOT NULL,
    _tm_offset BIGINT NOT NULL,
    _tm_sub SMALLINT NOT NULL,
    _tm_commit_ts BIGINT,
    _tm_commit_ms BIGINT,
    _tm_op CHAR(1) NOT NULL,
    _tm_key VARCHAR(65535) NOT NULL,
    _tm_row VARCHAR(65535),
    _tm_landed_at TIMESTAMPTZ DEFAULT SYSDATE
);

-- Replica: same columns and key as upstream.
CREATE TABLE IF NOT EXISTS "every_type" (
    "id" DECIMAL(20,0) NOT NULL,
    "code" VARCHAR(64) NOT NULL,
    "ti" SMALLINT,
    "si" INTEGER,
    "mi" INTEGER,
    "i" INTEGER,
    "iu" BIGINT,
    "bi" BIGINT,
    "d" DECIMAL(10,4),
    "dbig" VARCHAR(80),
    "dmax" VARCHAR(80),
    "f" REAL,
    "db" DOUBLE PRECISION,
    "bt" VARBYTE(1024000),
    "c" VARCHAR(16),
    "vc" VARCHAR(1200),
    "tx" VARCHAR(65535),
    "bn" VARBYTE(1024000),
    "vb" VARBYTE(1024000),
    "bl" VARBYTE(1024000),
    "dt" DATE,
    "dtm" TIMESTAMP,
    "ts" TIMESTAMPTZ,
    "tm" VARCHAR(20),
    "y" SMALLINT,
    "e" VARCHAR(65535),
    "st" VARCHAR(65535),
    "j" SUPER,
    PRIMARY KEY ("id", "code")
);

-- One merge, in one transaction: the replica changes and the staging cleanup commit together
-- or not at all.
BEGIN;

-- The rows this run consumes, fixed once: rows landed meanwhile are neither merged nor removed.
CREATE TEMP TABLE _tm_batch AS
SELECT * FROM "_tidemark_stage_every_type";

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties - typed.
CREATE TEMP TABLE _tm_src AS
SELECT x._tm_op AS _tidemark_op,
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_key, 'id') AS DECIMAL(20,0)) AS "id",
    JSON_EXTRACT_PATH_TEXT(x._tm_key, 'code') AS "code",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'ti') AS SMALLINT) AS "ti",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'si') AS INTEGER) AS "si",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'mi') AS INTEGER) AS "mi",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'i') AS INTEGER) AS "i",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'iu') AS BIGINT) AS "iu",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'bi') AS BIGINT) AS "bi",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'd') AS DECIMAL(10,4)) AS "d",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'dbig') AS "dbig",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'dmax') AS "dmax",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'f') AS REAL) AS "f",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'db') AS DOUBLE PRECISION) AS "db",
    FROM_HEX(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'bt')) AS "bt",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'c') AS "c",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'vc') AS "vc",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'tx') AS "tx",
    FROM_HEX(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'bn')) AS "bn",
    FROM_HEX(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'vb')) AS "vb",
    FROM_HEX(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'bl')) AS "bl",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'dt') AS DATE) AS "dt",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'dtm') AS TIMESTAMP) AS "dtm",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'ts') || '+00' AS TIMESTAMPTZ) AS "ts",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'tm') AS "tm",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'y') AS SMALLINT) AS "y",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'e') AS "e",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'st') AS "st",
    JSON_PARSE(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'j')) AS "j"
FROM (
    SELECT b.*, ROW_NUMBER() OVER (
        PARTITION BY JSON_EXTRACT_PATH_TEXT(b._tm_key, 'id'), JSON_EXTRACT_PATH_TEXT(b._tm_key, 'code')
        ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
    ) AS _tm_rank
    FROM _tm_batch AS b
) AS x
WHERE x._tm_rank = 1;

-- Redshift's MERGE takes no conditions on its WHEN clauses: remove every key the batch touches
-- (a delete of an absent key matches nothing)...
DELETE FROM "every_type"
USING _tm_src AS s
WHERE "every_type"."id" = s."id" AND "every_type"."code" = s."code";

-- ...and insert the ones whose last change is not a delete: no row of NULLs, ever.
INSERT INTO "every_type" ("id", "code", "ti", "si", "mi", "i", "iu", "bi", "d", "dbig", "dmax", "f", "db", "bt", "c", "vc", "tx", "bn", "vb", "bl", "dt", "dtm", "ts", "tm", "y", "e", "st", "j")
SELECT s."id", s."code", s."ti", s."si", s."mi", s."i", s."iu", s."bi", s."d", s."dbig", s."dmax", s."f", s."db", s."bt", s."c", s."vc", s."tx", s."bn", s."vb", s."bl", s."dt", s."dtm", s."ts", s."tm", s."y", s."e", s."st", s."j"
FROM _tm_src AS s
WHERE s._tidemark_op <> 'd';

-- Exactly the staged rows merged, by source position.
DELETE FROM "_tidemark_stage_every_type"
USING _tm_batch AS b
WHERE b._tm_topic = "_tidemark_stage_every_type"._tm_topic AND b._tm_partition = "_tidemark_stage_every_type"._tm_partition
  AND b._tm_offset = "_tidemark_stage_every_type"._tm_offset AND b._tm_sub = "_tidemark_stage_every_type"._tm_sub;

COMMIT;

DROP TABLE _tm_src;

DROP TABLE _tm_batch;
