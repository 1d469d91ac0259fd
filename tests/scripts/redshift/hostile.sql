-- tidemark: table we\"ird \'tab`le] (redshift)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
CREATE TABLE IF NOT EXISTS "_tidemark_stage_we""ird 'tab`le]" (
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
CREATE TABLE IF NOT EXISTS "we""ird 'tab`le]" (
    "select" INTEGER NOT NULL,
    "Mixed Case" VARCHAR(40) NOT NULL,
    "semi;colon -- x" VARCHAR(65535),
    "naïve ""col""" DECIMAL(5,2),
    "back\\slash" VARBYTE(1024000),
    PRIMARY KEY ("select", "Mixed Case")
);

-- One merge, in one transaction: the replica changes and the staging cleanup commit together
-- or not at all.
BEGIN;

-- The rows this run consumes, fixed once: rows landed meanwhile are neither merged nor removed.
CREATE TEMP TABLE _tm_batch AS
SELECT * FROM "_tidemark_stage_we""ird 'tab`le]";

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties - typed.
CREATE TEMP TABLE _tm_src AS
SELECT x._tm_op AS _tidemark_op,
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_key, 'select') AS INTEGER) AS "select",
    JSON_EXTRACT_PATH_TEXT(x._tm_key, 'Mixed Case') AS "Mixed Case",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'semi;colon -- x') AS "semi;colon -- x",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'naïve "col"') AS DECIMAL(5,2)) AS "naïve ""col""",
    FROM_HEX(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'back\\\\slash')) AS "back\\slash"
FROM (
    SELECT b.*, ROW_NUMBER() OVER (
        PARTITION BY JSON_EXTRACT_PATH_TEXT(b._tm_key, 'select'), JSON_EXTRACT_PATH_TEXT(b._tm_key, 'Mixed Case')
        ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
    ) AS _tm_rank
    FROM _tm_batch AS b
) AS x
WHERE x._tm_rank = 1;

-- Redshift's MERGE takes no conditions on its WHEN clauses: remove every key the batch touches
-- (a delete of an absent key matches nothing)...
DELETE FROM "we""ird 'tab`le]"
USING _tm_src AS s
WHERE "we""ird 'tab`le]"."select" = s."select" AND "we""ird 'tab`le]"."Mixed Case" = s."Mixed Case";

-- ...and insert the ones whose last change is not a delete: no row of NULLs, ever.
INSERT INTO "we""ird 'tab`le]" ("select", "Mixed Case", "semi;colon -- x", "naïve ""col""", "back\\slash")
SELECT s."select", s."Mixed Case", s."semi;colon -- x", s."naïve ""col""", s."back\\slash"
FROM _tm_src AS s
WHERE s._tidemark_op <> 'd';

-- Exactly the staged rows merged, by source position.
DELETE FROM "_tidemark_stage_we""ird 'tab`le]"
USING _tm_batch AS b
WHERE b._tm_topic = "_tidemark_stage_we""ird 'tab`le]"._tm_topic AND b._tm_partition = "_tidemark_stage_we""ird 'tab`le]"._tm_partition
  AND b._tm_offset = "_tidemark_stage_we""ird 'tab`le]"._tm_offset AND b._tm_sub = "_tidemark_stage_we""ird 'tab`le]"._tm_sub;

COMMIT;

DROP TABLE _tm_src;

DROP TABLE _tm_batch;
