{#- The upstream commit time (epoch ms) of the newest change in the replica: that of its last
    successful merge that applied something. -#}
SELECT newest_commit_ms FROM _tidemark_merges
WHERE table_name = ?1 AND status = 'ok' AND newest_commit_ms IS NOT NULL
ORDER BY id DESC LIMIT 1
