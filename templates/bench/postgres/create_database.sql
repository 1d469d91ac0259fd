{#- `tidemark bench`: a database of its own (`b`) for one measurement. -#}
CREATE DATABASE {{ b | ident }}
