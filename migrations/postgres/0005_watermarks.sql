-- Watermarks are data (TiCDC's resolved ts: every change of a partition with a smaller commit ts
-- has been sent before it). Each partition's highest watermark landed, recorded in the landing
-- transaction of the records before it, and when it last moved.
ALTER TABLE _tidemark_offsets ADD COLUMN IF NOT EXISTS watermark bigint;
ALTER TABLE _tidemark_offsets ADD COLUMN IF NOT EXISTS watermark_at timestamptz;

-- Per topic: how many partitions it has (the consistent point is the minimum watermark over ALL
-- of them, read or not) and whether its stream carries watermarks at all.
CREATE TABLE IF NOT EXISTS _tidemark_topics (
    topic         text PRIMARY KEY,
    partitions    integer,                          -- from the brokers' metadata
    watermarked   boolean NOT NULL DEFAULT false,   -- a watermark has landed from it
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Per table: the point its last merge made it consistent as of (watermark-gated merges) and the
-- commit ts from which an incompatible type change stops it.
ALTER TABLE _tidemark_tables ADD COLUMN IF NOT EXISTS merged_point bigint;
ALTER TABLE _tidemark_tables ADD COLUMN IF NOT EXISTS stopped_ts bigint;

-- What landing noticed of a table's stream: changes dropped as re-sends, and a warning when it
-- cannot be ordered (one key on several partitions, no watermarks). Apart from _tidemark_tables,
-- which merges update: a landing that counted re-sends there would make a concurrent merge's
-- REPEATABLE READ update of the same row fail.
CREATE TABLE IF NOT EXISTS _tidemark_stream_notes (
    name              text PRIMARY KEY,
    resent            bigint NOT NULL DEFAULT 0,
    ordering_warning  text
);

-- A column's change takes effect in the replica with the merge that covers this commit ts (the
-- first change that showed it).
ALTER TABLE _tidemark_columns ADD COLUMN IF NOT EXISTS since_ts bigint;

-- The point each merge made its table consistent as of.
ALTER TABLE _tidemark_merges ADD COLUMN IF NOT EXISTS point bigint;

-- Upstream DDL as the stream carried it, once: canal-json sends it on partition 0, the other
-- protocols on every partition, and TiCDC may replay it; its commit ts and text identify it.
CREATE TABLE IF NOT EXISTS _tidemark_ddl (
    topic         text NOT NULL,
    commit_ts     bigint NOT NULL,
    query         text NOT NULL,
    db            text NOT NULL,
    table_name    text NOT NULL,
    landed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, commit_ts, query)
);
