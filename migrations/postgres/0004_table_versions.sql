-- A table's state (its columns and their types, its key, whether its merges are stopped)
-- changes together with this number. Every process that caches it (each instance's landing)
-- reloads it when the number has moved: `tidemark resume` run elsewhere, or a column another
-- instance recorded, takes effect everywhere.
ALTER TABLE _tidemark_tables ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0;
