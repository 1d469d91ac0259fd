{#- Before recording what a batch showed of table $1's schema: lock its state and read its
    version, so that a change made meanwhile elsewhere (`tidemark resume`, another instance) is
    seen, never overwritten by a stale cache. -#}
SELECT version FROM _tidemark_tables WHERE name = $1 FOR UPDATE
