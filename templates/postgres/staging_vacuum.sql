{#- Reclaim the staged rows merges removed, now rather than at autovacuum's next visit (a minute
    or more away): every scan of staging then stays proportional to what is staged, not to what
    was. Outside any transaction; runs alongside landing and merges; never waits for a lock. -#}
VACUUM (SKIP_LOCKED) {{ t.staging | ident }}
