{#- tidemark's staging contract: one row per change record, as `tidemark run` lands it on
    PostgreSQL and SQLite (see the README, "Staging"). Whatever loads it here must keep it. -#}
CREATE TABLE IF NOT EXISTS {{ t.staging | ident }} (
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
)
