{#- `tidemark bench`: table `b` back to the copy `a` (staging keeps its landing order). -#}
INSERT INTO {{ b | ident }} SELECT * FROM {{ a | ident }}
