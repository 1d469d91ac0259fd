{#- TiDB: later reads of this session see the database as of TSO ? (`tidemark snapshot --at`;
    `verify` reads upstream as of the replica's consistent point). Needs the TSO within TiDB's
    GC life time (error 8055 otherwise). -#}
SET @@tidb_snapshot = ?
