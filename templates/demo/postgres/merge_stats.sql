{#- Successful merges and the worst staleness they saw: milliseconds from the upstream commit
    of the oldest change a merge applied to the merge's own commit. -#}
SELECT count(*) AS merges,
       max((extract(epoch FROM finished_at) * 1000)::bigint - oldest_commit_ms) AS worst_staleness_ms
FROM _tidemark_merges
WHERE status = 'ok'
