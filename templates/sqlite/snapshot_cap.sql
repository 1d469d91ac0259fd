{#- While a snapshot of table ?1 runs: the highest order key its merges may apply. -#}
SELECT cap FROM _tidemark_snapshots WHERE name = ?1 AND done_at IS NULL AND cap IS NOT NULL
