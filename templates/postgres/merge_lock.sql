{#- A table's merges never overlap, across processes: a session advisory lock on
    ($1 = tidemark's lock space, $2 = the table's lock id). Waits; returns true. -#}
SELECT true AS held FROM (SELECT pg_advisory_lock($1, $2)) AS locked
