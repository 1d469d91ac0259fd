{#- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
    PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it. -#}
CREATE TABLE IF NOT EXISTS {{ t.staging | ident }} (
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
)
