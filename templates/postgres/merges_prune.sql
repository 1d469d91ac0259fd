{#- Merge records older than 30 days are forgotten (a merge a second is 2.6 million a month). -#}
DELETE FROM _tidemark_merges WHERE finished_at < now() - interval '30 days'
