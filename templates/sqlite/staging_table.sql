{#- The staging table: raw change records as landed, one row per change. -#}
CREATE TABLE IF NOT EXISTS {{ t.staging | ident }} (
    _tm_seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- landing order
    _tm_topic      TEXT    NOT NULL,
    _tm_partition  INTEGER NOT NULL,
    _tm_offset     INTEGER NOT NULL,
    _tm_sub        INTEGER NOT NULL,  -- index of the change within its Kafka record
    _tm_commit_ts  INTEGER,           -- order key: commit TSO (LSN for PostgreSQL sources)
    _tm_commit_ms  INTEGER,           -- upstream commit time, epoch ms, when known
    _tm_op         TEXT    NOT NULL,  -- c | u | d
    _tm_key        TEXT    NOT NULL,  -- JSON: {"key column": "value", ...}
    _tm_row        TEXT,              -- JSON row image; NULL for a delete
    _tm_landed_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
)
