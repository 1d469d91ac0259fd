-- tidemark: table every_type (databricks)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
CREATE TABLE IF NOT EXISTS `_tidemark_stage_every_type` (
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
CREATE TABLE IF NOT EXISTS `every_type` (
    `id` DECIMAL(20,0) NOT NULL,
    `code` STRING NOT NULL,
    `ti` SMALLINT,
    `si` INT,
    `mi` INT,
    `i` INT,
    `iu` BIGINT,
    `bi` BIGINT,
    `d` DECIMAL(10,4),
    `dbig` STRING,
    `dmax` STRING,
    `f` FLOAT,
    `db` DOUBLE,
    `bt` BINARY,
    `c` STRING,
    `vc` STRING,
    `tx` STRING,
    `bn` BINARY,
    `vb` BINARY,
    `bl` BINARY,
    `dt` DATE,
    `dtm` TIMESTAMP_NTZ,
    `ts` TIMESTAMP,
    `tm` STRING,
    `y` SMALLINT,
    `e` STRING,
    `st` STRING,
    `j` STRING,
    CONSTRAINT `pk_every_type` PRIMARY KEY (`id`, `code`)
);

-- Delta has no multi-statement transaction, so every step is safe to repeat: the rows this run
-- consumes are fixed once in a table of their own; the MERGE applies the last change per key of
-- that set (applying it again after a crash gives the same replica); the cleanup removes exactly
-- that set. A crash anywhere leaves the set staged for the next run, never a row removed unmerged.
CREATE OR REPLACE TABLE `_tidemark_batch_every_type` AS
SELECT * FROM `_tidemark_stage_every_type`;

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties. Delete when it is a delete (a delete of an absent key matches nothing: no
-- row of NULLs), update when matched, insert otherwise.
MERGE INTO `every_type` AS t
USING (
    SELECT x._tm_op AS _tidemark_op,
        CAST(x._tm_key['id'] AS DECIMAL(20,0)) AS `id`,
        x._tm_key['code'] AS `code`,
        CAST(x._tm_row['ti'] AS SMALLINT) AS `ti`,
        CAST(x._tm_row['si'] AS INT) AS `si`,
        CAST(x._tm_row['mi'] AS INT) AS `mi`,
        CAST(x._tm_row['i'] AS INT) AS `i`,
        CAST(x._tm_row['iu'] AS BIGINT) AS `iu`,
        CAST(x._tm_row['bi'] AS BIGINT) AS `bi`,
        CAST(x._tm_row['d'] AS DECIMAL(10,4)) AS `d`,
        x._tm_row['dbig'] AS `dbig`,
        x._tm_row['dmax'] AS `dmax`,
        CAST(x._tm_row['f'] AS FLOAT) AS `f`,
        CAST(x._tm_row['db'] AS DOUBLE) AS `db`,
        UNHEX(x._tm_row['bt']) AS `bt`,
        x._tm_row['c'] AS `c`,
        x._tm_row['vc'] AS `vc`,
        x._tm_row['tx'] AS `tx`,
        UNHEX(x._tm_row['bn']) AS `bn`,
        UNHEX(x._tm_row['vb']) AS `vb`,
        UNHEX(x._tm_row['bl']) AS `bl`,
        CAST(x._tm_row['dt'] AS DATE) AS `dt`,
        CAST(x._tm_row['dtm'] AS TIMESTAMP_NTZ) AS `dtm`,
        CAST(CONCAT(x._tm_row['ts'], 'Z') AS TIMESTAMP) AS `ts`,
        x._tm_row['tm'] AS `tm`,
        CAST(x._tm_row['y'] AS SMALLINT) AS `y`,
        x._tm_row['e'] AS `e`,
        x._tm_row['st'] AS `st`,
        x._tm_row['j'] AS `j`
    FROM (
        SELECT b.*, ROW_NUMBER() OVER (
            PARTITION BY b._tm_key['id'], b._tm_key['code']
            ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
        ) AS _tm_rank
        FROM `_tidemark_batch_every_type` AS b
    ) AS x
    WHERE x._tm_rank = 1
) AS s
ON t.`id` = s.`id` AND t.`code` = s.`code`
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET t.`ti` = s.`ti`,
               t.`si` = s.`si`,
               t.`mi` = s.`mi`,
               t.`i` = s.`i`,
               t.`iu` = s.`iu`,
               t.`bi` = s.`bi`,
               t.`d` = s.`d`,
               t.`dbig` = s.`dbig`,
               t.`dmax` = s.`dmax`,
               t.`f` = s.`f`,
               t.`db` = s.`db`,
               t.`bt` = s.`bt`,
               t.`c` = s.`c`,
               t.`vc` = s.`vc`,
               t.`tx` = s.`tx`,
               t.`bn` = s.`bn`,
               t.`vb` = s.`vb`,
               t.`bl` = s.`bl`,
               t.`dt` = s.`dt`,
               t.`dtm` = s.`dtm`,
               t.`ts` = s.`ts`,
               t.`tm` = s.`tm`,
               t.`y` = s.`y`,
               t.`e` = s.`e`,
               t.`st` = s.`st`,
               t.`j` = s.`j`
WHEN NOT MATCHED AND s._tidemark_op <> 'd' THEN
    INSERT (`id`, `code`, `ti`, `si`, `mi`, `i`, `iu`, `bi`, `d`, `dbig`, `dmax`, `f`, `db`, `bt`, `c`, `vc`, `tx`, `bn`, `vb`, `bl`, `dt`, `dtm`, `ts`, `tm`, `y`, `e`, `st`, `j`)
    VALUES (s.`id`, s.`code`, s.`ti`, s.`si`, s.`mi`, s.`i`, s.`iu`, s.`bi`, s.`d`, s.`dbig`, s.`dmax`, s.`f`, s.`db`, s.`bt`, s.`c`, s.`vc`, s.`tx`, s.`bn`, s.`vb`, s.`bl`, s.`dt`, s.`dtm`, s.`ts`, s.`tm`, s.`y`, s.`e`, s.`st`, s.`j`);

-- Exactly the staged rows merged, by source position.
DELETE FROM `_tidemark_stage_every_type` AS s
WHERE EXISTS (
    SELECT 1 FROM `_tidemark_batch_every_type` AS b
    WHERE b._tm_topic = s._tm_topic AND b._tm_partition = s._tm_partition
      AND b._tm_offset = s._tm_offset AND b._tm_sub = s._tm_sub
);

DROP TABLE IF EXISTS `_tidemark_batch_every_type`;
