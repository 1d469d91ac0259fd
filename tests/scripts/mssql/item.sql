-- tidemark: table item (mssql)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
IF OBJECT_ID(N'[_tidemark_stage_item]', 'U') IS NULL
CREATE TABLE [_tidemark_stage_item] (
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
IF OBJECT_ID(N'[item]', 'U') IS NULL
CREATE TABLE [item] (
    [i_id] INT NOT NULL,
    [i_im_id] INT,
    [i_name] NVARCHAR(24),
    [i_price] DECIMAL(5,2),
    [i_data] NVARCHAR(50),
    PRIMARY KEY ([i_id])
);

-- One merge, in one transaction: the replica changes and the staging cleanup commit together
-- or not at all.
BEGIN TRANSACTION;

-- The rows this run consumes, fixed once (rows landed meanwhile are neither merged nor
-- removed), with each staged value as a column.
SELECT s._tm_topic, s._tm_partition, s._tm_offset, s._tm_sub, s._tm_commit_ts, s._tm_op, k.*, r.*
INTO #tm_batch
FROM [_tidemark_stage_item] AS s
OUTER APPLY (
        SELECT MAX(CASE WHEN j.[key] = N'i_id' THEN j.[value] END) AS _tm_k0
        FROM OPENJSON(s._tm_key) AS j
) AS k
OUTER APPLY (
        SELECT MAX(CASE WHEN j.[key] = N'i_id' THEN j.[value] END) AS _tm_c0,
               MAX(CASE WHEN j.[key] = N'i_im_id' THEN j.[value] END) AS _tm_c1,
               MAX(CASE WHEN j.[key] = N'i_name' THEN j.[value] END) AS _tm_c2,
               MAX(CASE WHEN j.[key] = N'i_price' THEN j.[value] END) AS _tm_c3,
               MAX(CASE WHEN j.[key] = N'i_data' THEN j.[value] END) AS _tm_c4
        FROM OPENJSON(s._tm_row) AS j
) AS r;

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties. Delete when it is a delete (a delete of an absent key matches nothing: no
-- row of NULLs), update when matched, insert otherwise.
MERGE INTO [item] AS t
USING (
    SELECT x._tm_op AS _tidemark_op,
        CAST(x._tm_k0 AS INT) AS [i_id],
        CAST(x._tm_c1 AS INT) AS [i_im_id],
        x._tm_c2 AS [i_name],
        CAST(x._tm_c3 AS DECIMAL(5,2)) AS [i_price],
        x._tm_c4 AS [i_data]
    FROM (
        SELECT b.*, ROW_NUMBER() OVER (
            PARTITION BY b._tm_k0
            ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
        ) AS _tm_rank
        FROM #tm_batch AS b
    ) AS x
    WHERE x._tm_rank = 1
) AS s
ON t.[i_id] = s.[i_id]
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET [i_im_id] = s.[i_im_id],
               [i_name] = s.[i_name],
               [i_price] = s.[i_price],
               [i_data] = s.[i_data]
WHEN NOT MATCHED BY TARGET AND s._tidemark_op <> 'd' THEN
    INSERT ([i_id], [i_im_id], [i_name], [i_price], [i_data])
    VALUES (s.[i_id], s.[i_im_id], s.[i_name], s.[i_price], s.[i_data]);

-- Exactly the staged rows merged, by source position.
DELETE s FROM [_tidemark_stage_item] AS s
WHERE EXISTS (
    SELECT 1 FROM #tm_batch AS b
    WHERE b._tm_topic = s._tm_topic AND b._tm_partition = s._tm_partition
      AND b._tm_offset = s._tm_offset AND b._tm_sub = s._tm_sub
);

COMMIT TRANSACTION;

DROP TABLE #tm_batch;
