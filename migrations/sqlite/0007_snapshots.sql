-- Snapshots of upstream tables: see migrations/postgres/0007_snapshots.sql.
CREATE TABLE IF NOT EXISTS _tidemark_snapshots (
    name         TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    generation   INTEGER NOT NULL DEFAULT 1,
    order_key    INTEGER NOT NULL,
    cap          INTEGER,
    point        TEXT,
    last_key     TEXT,
    rows_landed  INTEGER NOT NULL DEFAULT 0,
    chunks       INTEGER NOT NULL DEFAULT 0,
    started_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    done_at      TEXT
);
