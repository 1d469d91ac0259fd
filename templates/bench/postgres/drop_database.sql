{#- `tidemark bench`: its database `b` gone, whoever is still connected. -#}
DROP DATABASE IF EXISTS {{ b | ident }} WITH (FORCE)
