-- tidemark: table item (redshift)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
CREATE TABLE IF NOT EXISTS "_tidemark_stage_item" (
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
CREATE TABLE IF NOT EXISTS "item" (
    "i_id" INTEGER NOT NULL,
    "i_im_id" INTEGER,
    "i_name" VARCHAR(96),
    "i_price" DECIMAL(5,2),
    "i_data" VARCHAR(200),
    PRIMARY KEY ("i_id")
);

-- One merge, in one transaction: the replica changes and the staging cleanup commit together
-- or not at all.
BEGIN;

-- The rows this run consumes, fixed once: rows landed meanwhile are neither merged nor removed.
CREATE TEMP TABLE _tm_batch AS
SELECT * FROM "_tidemark_stage_item";

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties - typed.
CREATE TEMP TABLE _tm_src AS
SELECT x._tm_op AS _tidemark_op,
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_key, 'i_id') AS INTEGER) AS "i_id",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'i_im_id') AS INTEGER) AS "i_im_id",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'i_name') AS "i_name",
    CAST(JSON_EXTRACT_PATH_TEXT(x._tm_row, 'i_price') AS DECIMAL(5,2)) AS "i_price",
    JSON_EXTRACT_PATH_TEXT(x._tm_row, 'i_data') AS "i_data"
FROM (
    SELECT b.*, ROW_NUMBER() OVER (
        PARTITION BY JSON_EXTRACT_PATH_TEXT(b._tm_key, 'i_id')
        ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
    ) AS _tm_rank
    FROM _tm_batch AS b
) AS x
WHERE x._tm_rank = 1;

-- Redshift's MERGE takes no conditions on its WHEN clauses: remove every key the batch touches
-- (a delete of an absent key matches nothing)...
DELETE FROM "item"
USING _tm_src AS s
WHERE "item"."i_id" = s."i_id";

-- ...and insert the ones whose last change is not a delete: no row of NULLs, ever.
INSERT INTO "item" ("i_id", "i_im_id", "i_name", "i_price", "i_data")
SELECT s."i_id", s."i_im_id", s."i_name", s."i_price", s."i_data"
FROM _tm_src AS s
WHERE s._tidemark_op <> 'd';

-- Exactly the staged rows merged, by source position.
DELETE FROM "_tidemark_stage_item"
USING _tm_batch AS b
WHERE b._tm_topic = "_tidemark_stage_item"._tm_topic AND b._tm_partition = "_tidemark_stage_item"._tm_partition
  AND b._tm_offset = "_tidemark_stage_item"._tm_offset AND b._tm_sub = "_tidemark_stage_item"._tm_sub;

COMMIT;

DROP TABLE _tm_src;

DROP TABLE _tm_batch;
