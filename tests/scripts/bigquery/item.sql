-- tidemark: table item (bigquery)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
CREATE TABLE IF NOT EXISTS `_tidemark_stage_item` (
    _tm_topic STRING NOT NULL,
    _tm_partition INT64 NOT NULL,
    _tm_offset INT64 NOT NULL,
    _tm_sub INT64 NOT NULL,
    _tm_commit_ts INT64,
    _tm_commit_ms INT64,
    _tm_op STRING NOT NULL,
    _tm_key JSON NOT NULL,
    _tm_row JSON,
    _tm_landed_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP()
);

-- Replica: same columns and key as upstream.
CREATE TABLE IF NOT EXISTS `item` (
    `i_id` INT64 NOT NULL,
    `i_im_id` INT64,
    `i_name` STRING(24),
    `i_price` NUMERIC(5, 2),
    `i_data` STRING(50),
    PRIMARY KEY (`i_id`) NOT ENFORCED
);

-- One merge, in one transaction: the replica changes and the staging cleanup commit together
-- or not at all.
BEGIN TRANSACTION;

-- The rows this run consumes, fixed once: rows landed meanwhile are neither merged nor removed.
CREATE TEMP TABLE _tm_batch AS
SELECT * FROM `_tidemark_stage_item`;

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties. Delete when it is a delete (a delete of an absent key matches nothing: no
-- row of NULLs), update when matched, insert otherwise.
MERGE INTO `item` AS t
USING (
    SELECT x._tm_op AS _tidemark_op,
        CAST(JSON_VALUE(x._tm_key['i_id']) AS INT64) AS `i_id`,
        CAST(JSON_VALUE(x._tm_row['i_im_id']) AS INT64) AS `i_im_id`,
        JSON_VALUE(x._tm_row['i_name']) AS `i_name`,
        CAST(JSON_VALUE(x._tm_row['i_price']) AS NUMERIC(5, 2)) AS `i_price`,
        JSON_VALUE(x._tm_row['i_data']) AS `i_data`
    FROM (
        SELECT b.*, ROW_NUMBER() OVER (
            PARTITION BY JSON_VALUE(b._tm_key['i_id'])
            ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
        ) AS _tm_rank
        FROM _tm_batch AS b
    ) AS x
    WHERE x._tm_rank = 1
) AS s
ON t.`i_id` = s.`i_id`
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET `i_im_id` = s.`i_im_id`,
               `i_name` = s.`i_name`,
               `i_price` = s.`i_price`,
               `i_data` = s.`i_data`
WHEN NOT MATCHED AND s._tidemark_op <> 'd' THEN
    INSERT (`i_id`, `i_im_id`, `i_name`, `i_price`, `i_data`)
    VALUES (s.`i_id`, s.`i_im_id`, s.`i_name`, s.`i_price`, s.`i_data`);

-- Exactly the staged rows merged, by source position.
DELETE FROM `_tidemark_stage_item` AS s
WHERE EXISTS (
    SELECT 1 FROM _tm_batch AS b
    WHERE b._tm_topic = s._tm_topic AND b._tm_partition = s._tm_partition
      AND b._tm_offset = s._tm_offset AND b._tm_sub = s._tm_sub
);

COMMIT TRANSACTION;

DROP TABLE _tm_batch;
