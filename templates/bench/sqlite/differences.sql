{#- `tidemark bench`: rows in one of `a` and `b` but not the other. -#}
SELECT (SELECT count(*) FROM (SELECT * FROM {{ a | ident }} EXCEPT SELECT * FROM {{ b | ident }}) AS x)
     + (SELECT count(*) FROM (SELECT * FROM {{ b | ident }} EXCEPT SELECT * FROM {{ a | ident }}) AS y) AS differences
