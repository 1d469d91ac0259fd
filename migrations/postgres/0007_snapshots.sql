-- Snapshots of upstream tables (`tidemark snapshot`, `tidemark verify --fix`), one row per
-- replica table. A chunk's staging rows and the snapshot's progress land in one transaction, so
-- a snapshot resumes after its last landed chunk: never a chunk twice, never a hole. While one
-- runs (`cap` set), merges of the table apply only changes ordered at or below `cap` — nothing
-- the snapshot's rows could then overwrite with an older image.
CREATE TABLE IF NOT EXISTS _tidemark_snapshots (
    name         text PRIMARY KEY,                 -- the replica table
    source       text NOT NULL,                    -- the upstream table, db.table
    generation   bigint NOT NULL DEFAULT 1,        -- one per snapshot begun; a resumed one keeps it
    order_key    bigint NOT NULL,                  -- the order key of the rows landed last
    cap          bigint,                           -- while it runs: merges apply up to here only
    point        text,                             -- the upstream position it read at, as shown
    last_key     text,                             -- JSON: the last key landed (resume after it)
    rows_landed  bigint NOT NULL DEFAULT 0,
    chunks       bigint NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz
);
