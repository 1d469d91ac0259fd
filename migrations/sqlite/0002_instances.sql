-- One row per `tidemark run` process: its heartbeat and what it is waiting for, so that
-- `status` shows whether the service runs and why it might not progress.
CREATE TABLE IF NOT EXISTS _tidemark_instances (
    instance      TEXT PRIMARY KEY,                 -- host:pid:start
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    TEXT NOT NULL,                    -- UTC, 'YYYY-MM-DD HH:MM:SS.SSS'
    seen_at       TEXT NOT NULL,
    state         TEXT NOT NULL
);
