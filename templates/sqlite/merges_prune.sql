{#- Merge records older than 30 days are forgotten (a merge a second is 2.6 million a month). -#}
DELETE FROM _tidemark_merges WHERE julianday(finished_at) < julianday('now') - 30
