{#- `tidemark bench`: the freshness probes visible in the replica (warehouse 0), from the lowest
    one not seen yet ($1) on: the poll stays small however many probes the replica holds. -#}
SELECT CAST(ol_o_id AS bigint) AS probe FROM {{ t.name | ident }} WHERE ol_w_id = 0 AND ol_o_id >= $1
