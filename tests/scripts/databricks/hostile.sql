-- tidemark: table we\"ird \'tab`le] (databricks)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
CREATE TABLE IF NOT EXISTS `_tidemark_stage_we"ird 'tab``le]` (
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
CREATE TABLE IF NOT EXISTS `we"ird 'tab``le]` (
    `select` INT NOT NULL,
    `Mixed Case` STRING NOT NULL,
    `semi;colon -- x` STRING,
    `naïve "col"` DECIMAL(5,2),
    `back\\slash` BINARY,
    CONSTRAINT `pk_we"ird 'tab``le]` PRIMARY KEY (`select`, `Mixed Case`)
);

-- Delta has no multi-statement transaction, so every step is safe to repeat: the rows this run
-- consumes are fixed once in a table of their own; the MERGE applies the last change per key of
-- that set (applying it again after a crash gives the same replica); the cleanup removes exactly
-- that set. A crash anywhere leaves the set staged for the next run, never a row removed unmerged.
CREATE OR REPLACE TABLE `_tidemark_batch_we"ird 'tab``le]` AS
SELECT * FROM `_tidemark_stage_we"ird 'tab``le]`;

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties. Delete when it is a delete (a delete of an absent key matches nothing: no
-- row of NULLs), update when matched, insert otherwise.
MERGE INTO `we"ird 'tab``le]` AS t
USING (
    SELECT x._tm_op AS _tidemark_op,
        CAST(x._tm_key['select'] AS INT) AS `select`,
        x._tm_key['Mixed Case'] AS `Mixed Case`,
        x._tm_row['semi;colon -- x'] AS `semi;colon -- x`,
        CAST(x._tm_row['naïve "col"'] AS DECIMAL(5,2)) AS `naïve "col"`,
        UNHEX(x._tm_row['back\\\\slash']) AS `back\\slash`
    FROM (
        SELECT b.*, ROW_NUMBER() OVER (
            PARTITION BY b._tm_key['select'], b._tm_key['Mixed Case']
            ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
        ) AS _tm_rank
        FROM `_tidemark_batch_we"ird 'tab``le]` AS b
    ) AS x
    WHERE x._tm_rank = 1
) AS s
ON t.`select` = s.`select` AND t.`Mixed Case` = s.`Mixed Case`
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET t.`semi;colon -- x` = s.`semi;colon -- x`,
               t.`naïve "col"` = s.`naïve "col"`,
               t.`back\\slash` = s.`back\\slash`
WHEN NOT MATCHED AND s._tidemark_op <> 'd' THEN
    INSERT (`select`, `Mixed Case`, `semi;colon -- x`, `naïve "col"`, `back\\slash`)
    VALUES (s.`select`, s.`Mixed Case`, s.`semi;colon -- x`, s.`naïve "col"`, s.`back\\slash`);

-- Exactly the staged rows merged, by source position.
DELETE FROM `_tidemark_stage_we"ird 'tab``le]` AS s
WHERE EXISTS (
    SELECT 1 FROM `_tidemark_batch_we"ird 'tab``le]` AS b
    WHERE b._tm_topic = s._tm_topic AND b._tm_partition = s._tm_partition
      AND b._tm_offset = s._tm_offset AND b._tm_sub = s._tm_sub
);

DROP TABLE IF EXISTS `_tidemark_batch_we"ird 'tab``le]`;
