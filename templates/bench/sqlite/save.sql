{#- `tidemark bench`: a copy of table `a` as `b`. -#}
CREATE TABLE {{ b | ident }} AS SELECT * FROM {{ a | ident }}
