-- tidemark: table item (databricks)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
CREATE TABLE IF NOT EXISTS `_tidemark_stage_item` (
    _tm_topic STRING NOT NULL,
    _tm_partition INT NOT NULL,
    _tm_offset BIGINT NOT NULL,
    _tm_sub SMALLINT NOT NULL,
    _tm_commit_ts BIGINT,
    _tm_commit_ms BIGINT,
    _tm_op STRING NOT NULL,
    _tm_key MAP<STRING, STRING> NOT NULL,
    _tm_row MAP<STRING, STRING>,
    _tm_landed_at TIMESTAMP
);

-- Replica: same columns and key as upstream.
CREATE TABLE IF NOT EXISTS `item` (
    `i_id` INT NOT NULL,
    `i_im_id` INT,
    `i_name` STRING,
    `i_price` DECIMAL(5,2),
    `i_data` STRING,
    CONSTRAINT `pk_item` PRIMARY KEY (`i_id`)
);

-- Delta has no multi-statement transaction, so every step is safe to repeat: the rows this run
-- consumes are fixed once in a table of their own; the MERGE applies the last change per key of
-- that set (applying it again after a crash gives the same replica); the cleanup removes exactly
-- that set. A crash anywhere leaves the set staged for the next run, never a row removed unmerged.
CREATE OR REPLACE TABLE `_tidemark_batch_item` AS
SELECT * FROM `_tidemark_stage_item`;

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties. Delete when it is a delete (a delete of an absent key matches nothing: no
-- row of NULLs), update when matched, insert otherwise.
MERGE INTO `item` AS t
USING (
    SELECT x._tm_op AS _tidemark_op,
        CAST(x._tm_key['i_id'] AS INT) AS `i_id`,
        CAST(x._tm_row['i_im_id'] AS INT) AS `i_im_id`,
        x._tm_row['i_name'] AS `i_name`,
        CAST(x._tm_row['i_price'] AS DECIMAL(5,2)) AS `i_price`,
        x._tm_row['i_data'] AS `i_data`
    FROM (
        SELECT b.*, ROW_NUMBER() OVER (
            PARTITION BY b._tm_key['i_id']
            ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
        ) AS _tm_rank
        FROM `_tidemark_batch_item` AS b
    ) AS x
    WHERE x._tm_rank = 1
) AS s
ON t.`i_id` = s.`i_id`
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET t.`i_im_id` = s.`i_im_id`,
               t.`i_name` = s.`i_name`,
               t.`i_price` = s.`i_price`,
               t.`i_data` = s.`i_data`
WHEN NOT MATCHED AND s._tidemark_op <> 'd' THEN
    INSERT (`i_id`, `i_im_id`, `i_name`, `i_price`, `i_data`)
    VALUES (s.`i_id`, s.`i_im_id`, s.`i_name`, s.`i_price`, s.`i_data`);

-- Exactly the staged rows merged, by source position.
DELETE FROM `_tidemark_stage_item` AS s
WHERE EXISTS (
    SELECT 1 FROM `_tidemark_batch_item` AS b
    WHERE b._tm_topic = s._tm_topic AND b._tm_partition = s._tm_partition
      AND b._tm_offset = s._tm_offset AND b._tm_sub = s._tm_sub
);

DROP TABLE IF EXISTS `_tidemark_batch_item`;
