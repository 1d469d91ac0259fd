-- tidemark's metadata tables. Staging and replica tables are created per configured table
-- from templates/; these hold what tidemark knows and did.

-- One row per replicated table.
CREATE TABLE IF NOT EXISTS _tidemark_tables (
    name          text PRIMARY KEY,                 -- the replica table
    topic         text NOT NULL,                    -- the Kafka topic it is fed from
    staging       text NOT NULL,                    -- its staging table
    key_columns   jsonb,                            -- ["col", ...] once the stream named them
    stopped       text,                             -- why its merges are stopped (an incompatible type change)
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- The columns the stream has shown for each table, in the order they were first seen.
CREATE TABLE IF NOT EXISTS _tidemark_columns (
    table_name    text NOT NULL REFERENCES _tidemark_tables (name) ON DELETE CASCADE,
    name          text NOT NULL,
    ordinal       integer NOT NULL,
    source_type   text NOT NULL,                    -- upstream type text, e.g. `decimal(10, 4)`
    applied_type  text,                             -- the source_type the replica column was last made for
    pending_type  text,                             -- an incompatible type seen upstream, until `tidemark resume`
    added_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, name)
);

-- The next Kafka offset to land, per partition. Updated in the same transaction as the
-- staging rows it covers: the warehouse, not the consumer group, is the record of what
-- has landed, so a re-delivered record is recognised and never staged twice.
CREATE TABLE IF NOT EXISTS _tidemark_offsets (
    topic         text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset   bigint NOT NULL,
    last_commit_ts bigint,                          -- order key of the record at next_offset - 1
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition)
);

-- One row per merge that did something (or failed).
CREATE TABLE IF NOT EXISTS _tidemark_merges (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name    text NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    status        text NOT NULL,                    -- 'ok' | 'failed'
    staged_rows   bigint NOT NULL DEFAULT 0,        -- staging rows consumed
    inserted      bigint NOT NULL DEFAULT 0,
    updated       bigint NOT NULL DEFAULT 0,
    deleted       bigint NOT NULL DEFAULT 0,
    watermark     bigint,                           -- highest staging _tm_seq consumed
    oldest_commit_ms bigint,                        -- upstream commit time (epoch ms) of the first staged change consumed
    error         text
);
CREATE INDEX IF NOT EXISTS _tidemark_merges_by_table ON _tidemark_merges (table_name, id);

-- Records that could not be decoded or keyed, with everything needed to replay them.
CREATE TABLE IF NOT EXISTS _tidemark_dead_letters (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name    text,
    topic         text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset  bigint NOT NULL,
    kafka_key     bytea,
    kafka_value   bytea,
    error         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS _tidemark_dead_letters_by_table ON _tidemark_dead_letters (table_name, id);
