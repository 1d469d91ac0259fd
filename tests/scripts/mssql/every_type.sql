-- tidemark: table every_type (mssql)

-- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
-- PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it.
IF OBJECT_ID(N'[_tidemark_stage_every_type]', 'U') IS NULL
CREATE TABLE [_tidemark_stage_every_type] (
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
IF OBJECT_ID(N'[every_type]', 'U') IS NULL
CREATE TABLE [every_type] (
    [id] DECIMAL(20,0) NOT NULL,
    [code] NVARCHAR(16) NOT NULL,
    [ti] SMALLINT,
    [si] INT,
    [mi] INT,
    [i] INT,
    [iu] BIGINT,
    [bi] BIGINT,
    [d] DECIMAL(10,4),
    [dbig] NVARCHAR(80),
    [dmax] NVARCHAR(80),
    [f] REAL,
    [db] FLOAT,
    [bt] VARBINARY(MAX),
    [c] NVARCHAR(4),
    [vc] NVARCHAR(300),
    [tx] NVARCHAR(MAX),
    [bn] VARBINARY(MAX),
    [vb] VARBINARY(MAX),
    [bl] VARBINARY(MAX),
    [dt] DATE,
    [dtm] DATETIME2(6),
    [ts] DATETIMEOFFSET(3),
    [tm] NVARCHAR(20),
    [y] SMALLINT,
    [e] NVARCHAR(MAX),
    [st] NVARCHAR(MAX),
    [j] NVARCHAR(MAX),
    PRIMARY KEY ([id], [code])
);

-- One merge, in one transaction: the replica changes and the staging cleanup commit together
-- or not at all.
BEGIN TRANSACTION;

-- The rows this run consumes, fixed once (rows landed meanwhile are neither merged nor
-- removed), with each staged value as a column.
SELECT s._tm_topic, s._tm_partition, s._tm_offset, s._tm_sub, s._tm_commit_ts, s._tm_op, k.*, r.*
INTO #tm_batch
FROM [_tidemark_stage_every_type] AS s
OUTER APPLY (
        SELECT MAX(CASE WHEN j.[key] = N'id' THEN j.[value] END) AS _tm_k0,
               MAX(CASE WHEN j.[key] = N'code' THEN j.[value] END) AS _tm_k1
        FROM OPENJSON(s._tm_key) AS j
) AS k
OUTER APPLY (
        SELECT MAX(CASE WHEN j.[key] = N'id' THEN j.[value] END) AS _tm_c0,
               MAX(CASE WHEN j.[key] = N'code' THEN j.[value] END) AS _tm_c1,
               MAX(CASE WHEN j.[key] = N'ti' THEN j.[value] END) AS _tm_c2,
               MAX(CASE WHEN j.[key] = N'si' THEN j.[value] END) AS _tm_c3,
               MAX(CASE WHEN j.[key] = N'mi' THEN j.[value] END) AS _tm_c4,
               MAX(CASE WHEN j.[key] = N'i' THEN j.[value] END) AS _tm_c5,
               MAX(CASE WHEN j.[key] = N'iu' THEN j.[value] END) AS _tm_c6,
               MAX(CASE WHEN j.[key] = N'bi' THEN j.[value] END) AS _tm_c7,
               MAX(CASE WHEN j.[key] = N'd' THEN j.[value] END) AS _tm_c8,
               MAX(CASE WHEN j.[key] = N'dbig' THEN j.[value] END) AS _tm_c9,
               MAX(CASE WHEN j.[key] = N'dmax' THEN j.[value] END) AS _tm_c10,
               MAX(CASE WHEN j.[key] = N'f' THEN j.[value] END) AS _tm_c11,
               MAX(CASE WHEN j.[key] = N'db' THEN j.[value] END) AS _tm_c12,
               MAX(CASE WHEN j.[key] = N'bt' THEN j.[value] END) AS _tm_c13,
               MAX(CASE WHEN j.[key] = N'c' THEN j.[value] END) AS _tm_c14,
               MAX(CASE WHEN j.[key] = N'vc' THEN j.[value] END) AS _tm_c15,
               MAX(CASE WHEN j.[key] = N'tx' THEN j.[value] END) AS _tm_c16,
               MAX(CASE WHEN j.[key] = N'bn' THEN j.[value] END) AS _tm_c17,
               MAX(CASE WHEN j.[key] = N'vb' THEN j.[value] END) AS _tm_c18,
               MAX(CASE WHEN j.[key] = N'bl' THEN j.[value] END) AS _tm_c19,
               MAX(CASE WHEN j.[key] = N'dt' THEN j.[value] END) AS _tm_c20,
               MAX(CASE WHEN j.[key] = N'dtm' THEN j.[value] END) AS _tm_c21,
               MAX(CASE WHEN j.[key] = N'ts' THEN j.[value] END) AS _tm_c22,
               MAX(CASE WHEN j.[key] = N'tm' THEN j.[value] END) AS _tm_c23,
               MAX(CASE WHEN j.[key] = N'y' THEN j.[value] END) AS _tm_c24,
               MAX(CASE WHEN j.[key] = N'e' THEN j.[value] END) AS _tm_c25,
               MAX(CASE WHEN j.[key] = N'st' THEN j.[value] END) AS _tm_c26,
               MAX(CASE WHEN j.[key] = N'j' THEN j.[value] END) AS _tm_c27
        FROM OPENJSON(s._tm_row) AS j
) AS r;

-- One source row per key: the last change by (order key, topic, partition, offset, index in the
-- record) - no ties. Delete when it is a delete (a delete of an absent key matches nothing: no
-- row of NULLs), update when matched, insert otherwise.
MERGE INTO [every_type] AS t
USING (
    SELECT x._tm_op AS _tidemark_op,
        CAST(x._tm_k0 AS DECIMAL(20,0)) AS [id],
        x._tm_k1 AS [code],
        CAST(x._tm_c2 AS SMALLINT) AS [ti],
        CAST(x._tm_c3 AS INT) AS [si],
        CAST(x._tm_c4 AS INT) AS [mi],
        CAST(x._tm_c5 AS INT) AS [i],
        CAST(x._tm_c6 AS BIGINT) AS [iu],
        CAST(x._tm_c7 AS BIGINT) AS [bi],
        CAST(x._tm_c8 AS DECIMAL(10,4)) AS [d],
        x._tm_c9 AS [dbig],
        x._tm_c10 AS [dmax],
        CAST(x._tm_c11 AS REAL) AS [f],
        CAST(x._tm_c12 AS FLOAT) AS [db],
        CONVERT(VARBINARY(MAX), x._tm_c13, 2) AS [bt],
        x._tm_c14 AS [c],
        x._tm_c15 AS [vc],
        x._tm_c16 AS [tx],
        CONVERT(VARBINARY(MAX), x._tm_c17, 2) AS [bn],
        CONVERT(VARBINARY(MAX), x._tm_c18, 2) AS [vb],
        CONVERT(VARBINARY(MAX), x._tm_c19, 2) AS [bl],
        CAST(x._tm_c20 AS DATE) AS [dt],
        CAST(x._tm_c21 AS DATETIME2(6)) AS [dtm],
        CAST(x._tm_c22 AS DATETIMEOFFSET(3)) AS [ts],
        x._tm_c23 AS [tm],
        CAST(x._tm_c24 AS SMALLINT) AS [y],
        x._tm_c25 AS [e],
        x._tm_c26 AS [st],
        x._tm_c27 AS [j]
    FROM (
        SELECT b.*, ROW_NUMBER() OVER (
            PARTITION BY b._tm_k0, b._tm_k1
            ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
        ) AS _tm_rank
        FROM #tm_batch AS b
    ) AS x
    WHERE x._tm_rank = 1
) AS s
ON t.[id] = s.[id] AND t.[code] = s.[code]
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
WHEN MATCHED THEN
    UPDATE SET [ti] = s.[ti],
               [si] = s.[si],
               [mi] = s.[mi],
               [i] = s.[i],
               [iu] = s.[iu],
               [bi] = s.[bi],
               [d] = s.[d],
               [dbig] = s.[dbig],
               [dmax] = s.[dmax],
               [f] = s.[f],
               [db] = s.[db],
               [bt] = s.[bt],
               [c] = s.[c],
               [vc] = s.[vc],
               [tx] = s.[tx],
               [bn] = s.[bn],
               [vb] = s.[vb],
               [bl] = s.[bl],
               [dt] = s.[dt],
               [dtm] = s.[dtm],
               [ts] = s.[ts],
               [tm] = s.[tm],
               [y] = s.[y],
               [e] = s.[e],
               [st] = s.[st],
               [j] = s.[j]
WHEN NOT MATCHED BY TARGET AND s._tidemark_op <> 'd' THEN
    INSERT ([id], [code], [ti], [si], [mi], [i], [iu], [bi], [d], [dbig], [dmax], [f], [db], [bt], [c], [vc], [tx], [bn], [vb], [bl], [dt], [dtm], [ts], [tm], [y], [e], [st], [j])
    VALUES (s.[id], s.[code], s.[ti], s.[si], s.[mi], s.[i], s.[iu], s.[bi], s.[d], s.[dbig], s.[dmax], s.[f], s.[db], s.[bt], s.[c], s.[vc], s.[tx], s.[bn], s.[vb], s.[bl], s.[dt], s.[dtm], s.[ts], s.[tm], s.[y], s.[e], s.[st], s.[j]);

-- Exactly the staged rows merged, by source position.
DELETE s FROM [_tidemark_stage_every_type] AS s
WHERE EXISTS (
    SELECT 1 FROM #tm_batch AS b
    WHERE b._tm_topic = s._tm_topic AND b._tm_partition = s._tm_partition
      AND b._tm_offset = s._tm_offset AND b._tm_sub = s._tm_sub
);

COMMIT TRANSACTION;

DROP TABLE #tm_batch;
