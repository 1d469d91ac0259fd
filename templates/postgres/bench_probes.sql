{#- `tidemark bench`: the freshness probes visible in the replica (warehouse 0). -#}
SELECT CAST(ol_o_id AS bigint) FROM {{ t.name | ident }} WHERE ol_w_id = 0
