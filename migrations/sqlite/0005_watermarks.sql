-- Watermarks and consistent points: see migrations/postgres/0005_watermarks.sql.
ALTER TABLE _tidemark_offsets ADD COLUMN watermark INTEGER;
ALTER TABLE _tidemark_offsets ADD COLUMN watermark_at TEXT;

CREATE TABLE IF NOT EXISTS _tidemark_topics (
    topic         TEXT PRIMARY KEY,
    partitions    INTEGER,
    watermarked   INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

ALTER TABLE _tidemark_tables ADD COLUMN merged_point INTEGER;
ALTER TABLE _tidemark_tables ADD COLUMN stopped_ts INTEGER;
CREATE TABLE IF NOT EXISTS _tidemark_stream_notes (
    name              TEXT PRIMARY KEY,
    resent            INTEGER NOT NULL DEFAULT 0,
    ordering_warning  TEXT
);

ALTER TABLE _tidemark_columns ADD COLUMN since_ts INTEGER;

ALTER TABLE _tidemark_merges ADD COLUMN point INTEGER;

CREATE TABLE IF NOT EXISTS _tidemark_ddl (
    topic         TEXT NOT NULL,
    commit_ts     INTEGER NOT NULL,
    query         TEXT NOT NULL,
    db            TEXT NOT NULL,
    table_name    TEXT NOT NULL,
    landed_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    PRIMARY KEY (topic, commit_ts, query)
);
