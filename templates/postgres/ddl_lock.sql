{#- Creating tidemark's tables is serialized across processes for the rest of the transaction:
    `CREATE TABLE IF NOT EXISTS` run at the same instant by two sessions can fail in one of them
    (a duplicate catalog row), as two instances starting together on a new warehouse would.
    ($1 = tidemark's lock space, $2 = the DDL lock id.) -#}
SELECT true AS held FROM (SELECT pg_advisory_xact_lock($1, $2)) AS locked
