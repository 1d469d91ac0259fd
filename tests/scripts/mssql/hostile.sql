-- tidemark: table we\"ird \'tab`le] (mssql)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
IF OBJECT_ID(N'[_tidemark_stage_we"ird ''tab`le]]]', 'U') IS NULL
CREATE TABLE [_tidemark_stage_we"ird 'tab`le]]] (
    _tm_topic NVARCHAR(255) NOT NULL,
    _tm_partition INT NOT NULL,
    _tm_offset BIGINT NOT NULL,
    _tm_sub SMALLINT NOT NULL,
    _tm_commit_ts BIGINT,
    _tm_commit_ms BIGINT,
    _tm_op NCHAR(1) NOT NULL,
    _tm_key NVARCHAR(MAX) NOT NULL,
    _tm_row NVARCHAR(MAX),
    _tm_landed_at DATETIMEOFFSET NOT NULL DEFAULT SYSDATETIMEOFFSET(),
    PRIMARY KEY (_tm_topic, _tm_partition, _tm_offset, _tm_sub)
);

-- Replica: same columns and key as upstream.
IF OBJECT_ID(N'[we"ird ''tab`le]]]', 'U') IS NULL
CREATE TABLE [we"ird 'tab`le]]] (
    [select] INT NOT NULL,
    [Mixed Case] NVARCHAR(10) NOT NULL,
    [semi;colon -- x] NVARCHAR(MAX),
    [naïve "col"] DECIMAL(5,2),
    [back\\slash] VARBINARY(MAX),
    PRIMARY KEY ([select], [Mixed Case])
);

-- One merge, in one transaction: the replica changes and the staging cleanup commit together
-- or not at all.
BEGIN TRANSACTION;

-- The rows this run consumes, fixed once (rows landed meanwhile are neither merged nor
-- removed), with each staged value as a column.
SELECT s._tm_topic, s._tm_partition, s._tm_offset, s._tm_sub, s._tm_commit_ts, s._tm_op, k.*, r.*
INTO #tm_batch
FROM [_tidemark_stage_we"ird 'tab`le]]] AS s
OUTER APPLY (
        SELECT MAX(CASE WHEN j.[key] = N'select' THEN j.[value] END) AS _tm_k0,
               MAX(CASE WHEN j.[key] = N'Mixed Case' THEN j.[value] END) AS _tm_k1
        FROM OPENJSON(s._tm_key) AS j
) AS k
OUTER APPLY (
        SELECT MAX(CASE WHEN j.[key] = N'select' THEN j.[value] END) AS _tm_c0,
               MAX(CASE WHEN j.[key] = N'Mixed Case' THEN j.[value] END) AS _tm_c1,
               MAX(CASE WHEN j.[key] = N'semi;colon -- x' THEN j.[value] END) AS _tm_c2,
               MAX(CASE WHEN j.[key] = N'naïve "col"' THEN j.[value] END) AS _tm_c3,
               MAX(CASE WHEN j.[key] = N'back\\slash' THEN j.[value] END) AS _tm_c4
        FROM OPENJSON(s._tm_row) AS j
) AS r;

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties. Delete when it is a delete (a delete of an absent key matches nothing: no
-- row of NULLs), update when matched, insert otherwise.
MERGE INTO [we"ird 'tab`le]]] AS t
USING (
    SELECT x._tm_op AS _tidemark_op,
        CAST(x._tm_k0 AS INT) AS [select],
        x._tm_k1 AS [Mixed Case],
        x._tm_c2 AS [semi;colon -- x],
        CAST(x._tm_c3 AS DECIMAL(5,2)) AS [naïve "col"],
        CONVERT(VARBINARY(MAX), x._tm_c4, 2) AS [back\\slash]
    FROM (
        SELECT b.*, ROW_NUMBER() OVER (
            PARTITION BY b._tm_k0, b._tm_k1
            ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
        ) AS _tm_rank
        FROM #tm_batch AS b
    ) AS x
    WHERE x._tm_rank = 1
) AS s
ON t.[select] = s.[select] AND t.[Mixed Case] = s.[Mixed Case]
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET [semi;colon -- x] = s.[semi;colon -- x],
               [naïve "col"] = s.[naïve "col"],
               [back\\slash] = s.[back\\slash]
WHEN NOT MATCHED BY TARGET AND s._tidemark_op <> 'd' THEN
    INSERT ([select], [Mixed Case], [semi;colon -- x], [naïve "col"], [back\\slash])
    VALUES (s.[select], s.[Mixed Case], s.[semi;colon -- x], s.[naïve "col"], s.[back\\slash]);

-- Exactly the staged rows merged, by source position.
DELETE s FROM [_tidemark_stage_we"ird 'tab`le]]] AS s
WHERE EXISTS (
    SELECT 1 FROM #tm_batch AS b
    WHERE b._tm_topic = s._tm_topic AND b._tm_partition = s._tm_partition
      AND b._tm_offset = s._tm_offset AND b._tm_sub = s._tm_sub
);

COMMIT TRANSACTION;

DROP TABLE #tm_batch;
