{#- Remove exactly the staged rows this merge consumed, in the same transaction. -#}
DELETE FROM {{ t.staging | ident }} WHERE _tm_seq <= ?1
