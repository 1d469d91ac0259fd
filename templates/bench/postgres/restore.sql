{#- `tidemark bench`: table `b` back to the copy `a` (staging keeps its landing order). -#}
INSERT INTO {{ b | ident }} OVERRIDING SYSTEM VALUE SELECT * FROM {{ a | ident }}
