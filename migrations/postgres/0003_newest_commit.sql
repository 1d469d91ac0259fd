-- The upstream commit time (epoch ms) of the newest change a merge applied: with the time the
-- merge finished, how far behind upstream the replica was; `status` shows the lag since.
ALTER TABLE _tidemark_merges ADD COLUMN IF NOT EXISTS newest_commit_ms bigint;
