-- tidemark: table item (sqlite)

-- Staging: raw change records, appended by landing (COPY / multi-row INSERT).
CREATE TABLE IF NOT EXISTS "_tidemark_stage_item" (
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
CREATE TABLE IF NOT EXISTS "item" (
    "i_id" INTEGER NOT NULL,
    "i_im_id" INTEGER,
    "i_name" TEXT,
    "i_price" TEXT,
    "i_data" TEXT,
    PRIMARY KEY ("i_id")
);

-- One merge, in one transaction. The consistent point bounds it: the minimum watermark over
-- the topic's partitions, or the largest bigint for a stream without watermarks. Below, ?1
-- is the watermark the first SELECT returns; the merge source's ?2 and ?3 are the last
-- point merged (the smallest bigint when none) and the point; the cleanup's ?2 is the point.
BEGIN IMMEDIATE;

SELECT (SELECT max(_tm_seq) FROM "_tidemark_stage_item" WHERE _tm_commit_ts <= ?1) AS watermark,
       (SELECT _tm_commit_ms FROM "_tidemark_stage_item" WHERE _tm_commit_ts <= ?1 ORDER BY _tm_seq LIMIT 1) AS oldest_commit_ms,
       (SELECT max(_tm_commit_ms) FROM "_tidemark_stage_item" WHERE _tm_commit_ts <= ?1) AS newest_commit_ms,
       COALESCE((SELECT n.partial_rows FROM _tidemark_stream_notes AS n WHERE n.name = 'item'), 0) AS partial_rows;

DROP TABLE IF EXISTS temp._tm_src;

CREATE TEMP TABLE _tm_src AS
SELECT s._tm_op AS _tidemark_op,
       CAST(json_extract(s._tm_key, '$."i_id"') AS INTEGER) AS "i_id",
       CAST(json_extract(s._tm_row, '$."i_im_id"') AS INTEGER) AS "i_im_id",
       json_extract(s._tm_row, '$."i_name"') AS "i_name",
       json_extract(s._tm_row, '$."i_price"') AS "i_price",
       json_extract(s._tm_row, '$."i_data"') AS "i_data"
FROM (
    SELECT st.*, row_number() OVER (
        PARTITION BY st._tm_key
        ORDER BY st._tm_commit_ts DESC NULLS LAST, st._tm_topic DESC, st._tm_partition DESC, st._tm_offset DESC, st._tm_sub DESC
    ) AS _tm_rank
    FROM "_tidemark_stage_item" AS st
    WHERE st._tm_seq <= ?1 AND st._tm_commit_ts > ?2 AND st._tm_commit_ts <= ?3
) AS s
WHERE s._tm_rank = 1;

-- Its row count is the number of rows deleted.
DELETE FROM "item"
WHERE ("i_id") IN (SELECT "i_id" FROM temp._tm_src WHERE _tidemark_op = 'd');

-- Its row count is the number of rows updated.
UPDATE "item" AS t
SET "i_im_id" = s."i_im_id",
    "i_name" = s."i_name",
    "i_price" = s."i_price",
    "i_data" = s."i_data"
FROM temp._tm_src AS s
WHERE t."i_id" = s."i_id" AND s._tidemark_op <> 'd';

-- Its row count is the number of rows inserted.
INSERT INTO "item" ("i_id", "i_im_id", "i_name", "i_price", "i_data")
SELECT s."i_id", s."i_im_id", s."i_name", s."i_price", s."i_data"
FROM temp._tm_src AS s
WHERE s._tidemark_op <> 'd'
  AND NOT EXISTS (SELECT 1 FROM "item" AS t WHERE t."i_id" = s."i_id");

-- Its row count is the number of staged rows consumed.
DELETE FROM "_tidemark_stage_item" WHERE _tm_seq <= ?1 AND _tm_commit_ts <= ?2;

DROP TABLE IF EXISTS temp._tm_src;

-- The run is recorded in _tidemark_merges in the same transaction.
COMMIT;
