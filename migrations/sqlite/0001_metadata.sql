-- tidemark's metadata tables (SQLite). Same shape and meaning as migrations/postgres.

CREATE TABLE IF NOT EXISTS _tidemark_tables (
    name          TEXT PRIMARY KEY,
    topic         TEXT NOT NULL,
    staging       TEXT NOT NULL,
    key_columns   TEXT,                             -- JSON array, once the stream named them
    stopped       TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TABLE IF NOT EXISTS _tidemark_columns (
    table_name    TEXT NOT NULL REFERENCES _tidemark_tables (name) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    ordinal       INTEGER NOT NULL,
    source_type   TEXT NOT NULL,
    applied_type  TEXT,
    pending_type  TEXT,
    added_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    PRIMARY KEY (table_name, name)
);

CREATE TABLE IF NOT EXISTS _tidemark_offsets (
    topic         TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    next_offset   INTEGER NOT NULL,
    last_commit_ts INTEGER,
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    PRIMARY KEY (topic, kafka_partition)
);

CREATE TABLE IF NOT EXISTS _tidemark_merges (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name    TEXT NOT NULL,
    started_at    TEXT NOT NULL,                    -- UTC, 'YYYY-MM-DD HH:MM:SS.SSS'
    finished_at   TEXT NOT NULL,
    status        TEXT NOT NULL,
    staged_rows   INTEGER NOT NULL DEFAULT 0,
    inserted      INTEGER NOT NULL DEFAULT 0,
    updated       INTEGER NOT NULL DEFAULT 0,
    deleted       INTEGER NOT NULL DEFAULT 0,
    watermark     INTEGER,
    oldest_commit_ms INTEGER,
    error         TEXT
);
CREATE INDEX IF NOT EXISTS _tidemark_merges_by_table ON _tidemark_merges (table_name, id);

CREATE TABLE IF NOT EXISTS _tidemark_dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name    TEXT,
    topic         TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset  INTEGER NOT NULL,
    kafka_key     BLOB,
    kafka_value   BLOB,
    error         TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX IF NOT EXISTS _tidemark_dead_letters_by_table ON _tidemark_dead_letters (table_name, id);
