-- tidemark: table every_type (bigquery)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
CREATE TABLE IF NOT EXISTS `_tidemark_stage_every_type` (
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
CREATE TABLE IF NOT EXISTS `every_type` (
    `id` NUMERIC(20) NOT NULL,
    `code` STRING(16) NOT NULL,
    `ti` INT64,
    `si` INT64,
    `mi` INT64,
    `i` INT64,
    `iu` INT64,
    `bi` INT64,
    `d` NUMERIC(10, 4),
    `dbig` BIGNUMERIC(40, 10),
    `dmax` BIGNUMERIC(65, 30),
    `f` FLOAT64,
    `db` FLOAT64,
    `bt` BYTES,
    `c` STRING(4),
    `vc` STRING(300),
    `tx` STRING,
    `bn` BYTES,
    `vb` BYTES,
    `bl` BYTES,
    `dt` DATE,
    `dtm` DATETIME,
    `ts` TIMESTAMP,
    `tm` STRING,
    `y` INT64,
    `e` STRING,
    `st` STRING,
    `j` JSON,
    PRIMARY KEY (`id`, `code`) NOT ENFORCED
);

-- One merge, in one transaction: the replica changes and the staging cleanup commit together
-- or not at all.
BEGIN TRANSACTION;

-- The rows this run consumes, fixed once: rows landed meanwhile are neither merged nor removed.
CREATE TEMP TABLE _tm_batch AS
SELECT * FROM `_tidemark_stage_every_type`;

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties. Delete when it is a delete (a delete of an absent key matches nothing: no
-- row of NULLs), update when matched, insert otherwise.
MERGE INTO `every_type` AS t
USING (
    SELECT x._tm_op AS _tidemark_op,
        CAST(JSON_VALUE(x._tm_key['id']) AS NUMERIC(20)) AS `id`,
        JSON_VALUE(x._tm_key['code']) AS `code`,
        CAST(JSON_VALUE(x._tm_row['ti']) AS INT64) AS `ti`,
        CAST(JSON_VALUE(x._tm_row['si']) AS INT64) AS `si`,
        CAST(JSON_VALUE(x._tm_row['mi']) AS INT64) AS `mi`,
        CAST(JSON_VALUE(x._tm_row['i']) AS INT64) AS `i`,
        CAST(JSON_VALUE(x._tm_row['iu']) AS INT64) AS `iu`,
        CAST(JSON_VALUE(x._tm_row['bi']) AS INT64) AS `bi`,
        CAST(JSON_VALUE(x._tm_row['d']) AS NUMERIC(10, 4)) AS `d`,
        CAST(JSON_VALUE(x._tm_row['dbig']) AS BIGNUMERIC(40, 10)) AS `dbig`,
        CAST(JSON_VALUE(x._tm_row['dmax']) AS BIGNUMERIC(65, 30)) AS `dmax`,
        CAST(JSON_VALUE(x._tm_row['f']) AS FLOAT64) AS `f`,
        CAST(JSON_VALUE(x._tm_row['db']) AS FLOAT64) AS `db`,
        FROM_HEX(JSON_VALUE(x._tm_row['bt'])) AS `bt`,
        JSON_VALUE(x._tm_row['c']) AS `c`,
        JSON_VALUE(x._tm_row['vc']) AS `vc`,
        JSON_VALUE(x._tm_row['tx']) AS `tx`,
        FROM_HEX(JSON_VALUE(x._tm_row['bn'])) AS `bn`,
        FROM_HEX(JSON_VALUE(x._tm_row['vb'])) AS `vb`,
        FROM_HEX(JSON_VALUE(x._tm_row['bl'])) AS `bl`,
        CAST(JSON_VALUE(x._tm_row['dt']) AS DATE) AS `dt`,
        CAST(JSON_VALUE(x._tm_row['dtm']) AS DATETIME) AS `dtm`,
        CAST(JSON_VALUE(x._tm_row['ts']) AS TIMESTAMP) AS `ts`,
        JSON_VALUE(x._tm_row['tm']) AS `tm`,
        CAST(JSON_VALUE(x._tm_row['y']) AS INT64) AS `y`,
        JSON_VALUE(x._tm_row['e']) AS `e`,
        JSON_VALUE(x._tm_row['st']) AS `st`,
        PARSE_JSON(JSON_VALUE(x._tm_row['j'])) AS `j`
    FROM (
        SELECT b.*, ROW_NUMBER() OVER (
            PARTITION BY JSON_VALUE(b._tm_key['id']), JSON_VALUE(b._tm_key['code'])
            ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
        ) AS _tm_rank
        FROM _tm_batch AS b
    ) AS x
    WHERE x._tm_rank = 1
) AS s
ON t.`id` = s.`id` AND t.`code` = s.`code`
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET `ti` = s.`ti`,
               `si` = s.`si`,
               `mi` = s.`mi`,
               `i` = s.`i`,
               `iu` = s.`iu`,
               `bi` = s.`bi`,
               `d` = s.`d`,
               `dbig` = s.`dbig`,
               `dmax` = s.`dmax`,
               `f` = s.`f`,
               `db` = s.`db`,
               `bt` = s.`bt`,
               `c` = s.`c`,
               `vc` = s.`vc`,
               `tx` = s.`tx`,
               `bn` = s.`bn`,
               `vb` = s.`vb`,
               `bl` = s.`bl`,
               `dt` = s.`dt`,
               `dtm` = s.`dtm`,
               `ts` = s.`ts`,
               `tm` = s.`tm`,
               `y` = s.`y`,
               `e` = s.`e`,
               `st` = s.`st`,
               `j` = s.`j`
WHEN NOT MATCHED AND s._tidemark_op <> 'd' THEN
    INSERT (`id`, `code`, `ti`, `si`, `mi`, `i`, `iu`, `bi`, `d`, `dbig`, `dmax`, `f`, `db`, `bt`, `c`, `vc`, `tx`, `bn`, `vb`, `bl`, `dt`, `dtm`, `ts`, `tm`, `y`, `e`, `st`, `j`)
    VALUES (s.`id`, s.`code`, s.`ti`, s.`si`, s.`mi`, s.`i`, s.`iu`, s.`bi`, s.`d`, s.`dbig`, s.`dmax`, s.`f`, s.`db`, s.`bt`, s.`c`, s.`vc`, s.`tx`, s.`bn`, s.`vb`, s.`bl`, s.`dt`, s.`dtm`, s.`ts`, s.`tm`, s.`y`, s.`e`, s.`st`, s.`j`);

-- Exactly the staged rows merged, by source position.
DELETE FROM `_tidemark_stage_every_type` AS s
WHERE EXISTS (
    SELECT 1 FROM _tm_batch AS b
    WHERE b._tm_topic = s._tm_topic AND b._tm_partition = s._tm_partition
      AND b._tm_offset = s._tm_offset AND b._tm_sub = s._tm_sub
);

COMMIT TRANSACTION;

DROP TABLE _tm_batch;
