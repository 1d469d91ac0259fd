-- A table's state (its columns and their types, its key, whether its merges are stopped)
-- changes together with this number: see migrations/postgres/0004_table_versions.sql.
ALTER TABLE _tidemark_tables ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
