-- A table whose staged rows may leave columns out: Debezium's placeholder for an unchanged
-- TOASTed column of PostgreSQL. Landing sets it in the transaction that stages the first such
-- row; its merges then keep the replica's value of a column a change left out.
ALTER TABLE _tidemark_stream_notes ADD COLUMN partial_rows INTEGER NOT NULL DEFAULT 0;
