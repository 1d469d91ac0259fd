{#- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
    PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it. -#}
IF OBJECT_ID({{ t.staging | ident | lit }}, 'U') IS NULL
CREATE TABLE {{ t.staging | ident }} (
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
)
