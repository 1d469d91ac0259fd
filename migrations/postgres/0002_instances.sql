-- One row per `tidemark run` process: its heartbeat and what it is waiting for, so that
-- `status` shows from any machine whether the service runs and why it might not progress.
CREATE TABLE IF NOT EXISTS _tidemark_instances (
    instance      text PRIMARY KEY,                 -- host:pid:start
    host          text NOT NULL,
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL,
    seen_at       timestamptz NOT NULL,             -- last heartbeat
    state         text NOT NULL                     -- 'running', 'waiting for …', 'stopped'
);
