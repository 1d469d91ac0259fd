{#- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
    PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it. -#}
CREATE TABLE IF NOT EXISTS {{ t.staging | ident }} (
    _tm_topic VARCHAR(255) NOT NULL,
    _tm_partition INTEGER NOT NULL,
    _tm_offset BIGINT NOT NULL,
    _tm_sub SMALLINT NOT NULL,
    _tm_commit_ts BIGINT,
    _tm_commit_ms BIGINT,
    _tm_op CHAR(1) NOT NULL,
    _tm_key VARCHAR(65535) NOT NULL,
    _tm_row VARCHAR(65535),
    _tm_landed_at TIMESTAMPTZ DEFAULT SYSDATE
)
