{#- Successful merges and the worst staleness they saw: milliseconds from the upstream commit
    of the oldest change a merge applied to the merge's own commit. -#}
SELECT count(*) AS merges,
       max(CAST(round((julianday(finished_at) - 2440587.5) * 86400000) AS INTEGER) - oldest_commit_ms) AS worst_staleness_ms
FROM _tidemark_merges
WHERE status = 'ok'
