{#- The staging table: raw change records as landed, one row per change. -#}
CREATE TABLE IF NOT EXISTS {{ t.staging | ident }} (
    _tm_seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- landing order
    _tm_topic      text        NOT NULL,
    _tm_partition  integer     NOT NULL,
    _tm_offset     bigint      NOT NULL,
    _tm_sub        smallint    NOT NULL,  -- index of the change within its Kafka record
    _tm_commit_ts  bigint,                -- order key: commit TSO (LSN for PostgreSQL sources)
    _tm_commit_ms  bigint,                -- upstream commit time, epoch ms, when known
    _tm_op         char(1)     NOT NULL,  -- c | u | d
    _tm_key        jsonb       NOT NULL,  -- {"key column": "value", ...}
    _tm_row        jsonb,                 -- the row image; NULL for a delete
    _tm_landed_at  timestamptz NOT NULL DEFAULT now()
)
